import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// Replays of real input streams recorded by `podstart agent --record-inputs` on the local
/// containerd (scripts/record-fixtures.sh): each `Fixtures/NAME.jsonl` holds the inputs, in the
/// agent's order, and `Fixtures/NAME.traces.json` the timelines the agent produced from them
/// (its /v1/pods answer). How they were made: Fixtures/README.md.
@Suite("Recorded streams")
struct RecordedStreamTests {
    static let directory = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "Fixtures").path

    struct Fixture {
        var name: String
        var recording: CorrelatorInputCodec.Recording
        var clock: WallClock
        var expected: [PodStartTrace]
        /// Path → the lower-layer file holding its pages (NAME.files.json).
        var dataFiles: [String: FileKey]
    }

    static let names = ["reader-cold", "reader-warm", "slow-ready-cold", "slow-ready-warm", "lazy-cold"]

    static func load(_ name: String) throws -> Fixture {
        let text = try String(contentsOfFile: "\(directory)/\(name).jsonl", encoding: .utf8)
        let recording = CorrelatorInputCodec.read(text)
        #expect(recording.problems.isEmpty, "\(name): \(recording.problems.prefix(3))")
        let clock = try #require(recording.clock, "\(name): no header")
        let traces = try JSON.parse(String(contentsOfFile: "\(directory)/\(name).traces.json", encoding: .utf8))
        let items = try #require(traces["items"]?.arrayValue, "\(name).traces.json: no items")
        let files = try JSON.parse(String(contentsOfFile: "\(directory)/\(name).files.json", encoding: .utf8))
        var dataFiles: [String: FileKey] = [:]
        for f in try #require(files["files"]?.arrayValue, "\(name).files.json: no files") {
            let path = try #require(f["path"]?.stringValue), dev = try #require(f["dev"]?.int64Value), ino = try #require(f["ino"]?.int64Value)
            dataFiles[path] = FileKey(device: DeviceNumber(rawValue: UInt32(dev)), inode: UInt64(ino))
        }
        return Fixture(name: name, recording: recording, clock: clock, expected: try items.map(PodStartTrace.init(json:)), dataFiles: dataFiles)
    }

    /// The agent ran without a kubelet log: ready when the containers run (AgentCommand).
    static var configuration: Correlator.Configuration {
        var c = Correlator.Configuration()
        c.readyWhenRunning = true
        return c
    }

    /// What the agent's resolver answered from the container's overlay mounts (I/O the
    /// correlator does not do): the layer of each path, taken from the agent's own timelines, and
    /// the lower-layer file, from the image's snapshots when the fixture was recorded.
    static func resolver(_ fixture: Fixture) -> Correlator.AccessResolver {
        var layers: [String: String] = [:]
        for t in fixture.expected { for c in t.containers { for a in c.accesses { if let d = a.layerDigest { layers[a.path] = d } } } }
        let dataFiles = fixture.dataFiles
        return { _, path, file in layers[path].map { LayerLocation(layerDigest: $0, dataFile: dataFiles[path] ?? file.dataKey) } }
    }

    static func replay(_ inputs: [CorrelatorInput], fixture: Fixture) -> [PodStartTrace] {
        var c = Correlator(configuration: configuration, clock: fixture.clock)
        let resolve = resolver(fixture)
        var out: [PodStartTrace] = []
        for input in inputs { out += c.ingest(input, resolve: resolve) }
        out += c.flush(resolve: resolve).filter { $0.outcome == .ready }  // as the agent's hub does at stop
        return out.sorted { $0.created < $1.created }
    }

    @Test(arguments: names) func theRecordedStreamReplaysToTheAgentsTimelines(name: String) throws {
        let fixture = try Self.load(name)
        let replayed = Self.replay(fixture.recording.inputs, fixture: fixture)
        let expected = fixture.expected.sorted { $0.created < $1.created }
        #expect(replayed.count == expected.count)
        #expect(!expected.isEmpty)
        for (r, e) in zip(replayed, expected) {
            #expect(r.pod == e.pod)
            #expect(r.runtime == e.runtime)
            #expect(r.outcome == e.outcome)
            #expect(r.failureReason == e.failureReason)
            #expect(Self.near(r.created, e.created), "\(name): created \(r.created) vs \(e.created)")
            #expect(Self.near(r.ready ?? 0, e.ready ?? 0), "\(name): ready")
            // top-level phases exactly as the agent had them
            let (rTop, eTop) = (r.phases.filter { $0.parent == nil }, e.phases.filter { $0.parent == nil })
            #expect(rTop.map(\.name) == eTop.map(\.name), "\(name): phases")
            #expect(rTop.map(\.source) == eTop.map(\.source), "\(name): phase sources")
            for (rp, ep) in zip(rTop, eTop) {
                #expect(Self.near(rp.start, ep.start) && Self.near(rp.end, ep.end), "\(name): \(rp) vs \(ep)")
            }
            // The pull's parts changed after these were recorded (#17.1: a blob's download and a
            // layer's unpack each run first write to last, where the agent then took only the
            // instants of writing): the parts still tile the pull, every instant the agent called
            // download still is, and every instant it called download or decompress still is one.
            let parts = r.phases.filter { $0.parent == .pull }
            guard let pull = r.phases.first(where: { $0.name == .pull }) else {
                #expect(!e.phases.contains { $0.name == .pull }, "\(name): the pull is gone")
                continue
            }
            #expect(parts.reduce(Int64(0)) { $0 + $1.end - $1.start } == pull.end - pull.start, "\(name): parts do not tile the pull")
            func covered(_ span: PhaseSpan, by names: Set<PhaseName>) -> Bool {
                let (a, b) = (span.start, span.end)
                var at = a
                // within a microsecond, as `near`: the recorded times went through the clock's conversion
                for p in parts.filter({ names.contains($0.name) }).sorted(by: { $0.start < $1.start })
                where p.end > at && p.start <= at + 1_000 { at = p.end }
                return b - at <= 1_000
            }
            for ep in e.phases where ep.name == .download { #expect(covered(ep, by: [.download]), "\(name): \(ep) is no longer download") }
            for ep in e.phases where ep.name == .download || ep.name == .decompress {
                #expect(covered(ep, by: [.download, .decompress]), "\(name): \(ep) is pull_other now")
            }
            // accesses: paths, order, opens, exact bytes and ranges, first access (monotonic, exact);
            // the recorded timelines predate `firstExec`, which every container with accesses has now
            // (lazy-cold is newer and has it: it must replay too)
            func withoutFirstExec(_ cs: [PodStartTrace.Container]) -> [PodStartTrace.Container] { cs.map { var c = $0; c.firstExec = nil; return c } }
            #expect(withoutFirstExec(r.containers) == withoutFirstExec(e.containers), "\(name): containers and their accesses")
            for (rc, ec) in zip(r.containers, e.containers) where ec.firstExec != nil {
                #expect(Self.near(rc.firstExec ?? 0, ec.firstExec ?? 0), "\(name): first exec \(rc.firstExec as Any) vs \(ec.firstExec as Any)")
            }
            #expect(r.containers.allSatisfy { $0.accesses.isEmpty || $0.firstExec != nil }, "\(name): first exec of a container with accesses")
        }
        // a real start: a kernel-measured start phase, and the files it read, with exact bytes
        #expect(expected.contains { t in t.phases.contains { $0.name == .start && $0.source == .kernel } })
        #expect(expected.contains { t in t.containers.contains { !$0.accesses.isEmpty } })
    }

    /// The reader image reads one.txt whole (1000 B), the first 8 KiB of two.bin (64 KiB) and
    /// three.txt whole (3000 B): the replayed accesses say exactly that.
    @Test(arguments: ["reader-cold", "reader-warm"]) func theReaderReadsExactlyItsBytes(name: String) throws {
        let fixture = try Self.load(name)
        let trace = try #require(Self.replay(fixture.recording.inputs, fixture: fixture).first)
        let accesses = try #require(trace.containers.first?.accesses)
        func bytes(_ path: String) -> [[UInt64]]? { accesses.first { $0.path == path }?.ranges }
        #expect(bytes("/data/one.txt") == [[0, 1000]])
        #expect(bytes("/data/two.bin") == [[0, 8192]])
        #expect(bytes("/data/three.txt") == [[0, 3000]])
        #expect(bytes("/data/unread.txt") == nil)
        #expect(accesses.first?.path == "/reader")
    }

    /// A lazy start on the stargz snapshotter (busybox reading 1 MiB of /data/random.bin through
    /// FUSE): every FUSE read the kernel recorded is named by the file it filled, joined through
    /// the layer's copy of the path (NAME.files.json: each layer's FUSE mount numbers its files
    /// from 1, so both files are inode 7, on two devices), with the layer that holds it.
    @Test func aLazyStartsFuseReadsReplayNamedByFileAndLayer() throws {
        let fixture = try Self.load("lazy-cold")
        let trace = try #require(Self.replay(fixture.recording.inputs, fixture: fixture).first)
        let container = try #require(trace.containers.first)
        let reads = container.lazyFetches.filter { $0.operation == "read" }
        #expect(!reads.isEmpty && reads.allSatisfy { $0.path != nil }, "\(container.lazyFetches)")
        let random = try #require(reads.first { $0.path == "/data/random.bin" }, "\(reads)")
        #expect(random.bytes >= 1 << 20 && random.requests > 0 && random.waitSeconds > 0, "\(random)")
        let busybox = try #require(reads.first { $0.path == "/bin/busybox" }, "\(reads)")
        // each named with the layer its access has, and the two layers differ
        for fetch in [random, busybox] {
            let access = container.accesses.first { $0.path == fetch.path }
            #expect(fetch.layerDigest != nil && fetch.layerDigest == access?.layerDigest, "\(fetch) vs \(access as Any)")
        }
        #expect(random.layerDigest != busybox.layerDigest)
        #expect(fixture.dataFiles["/data/random.bin"]?.inode == fixture.dataFiles["/bin/busybox"]?.inode
                && fixture.dataFiles["/data/random.bin"]?.device != fixture.dataFiles["/bin/busybox"]?.device)
    }

    /// The sources deliver independently: CRI every poll, log lines when the file is read, kernel
    /// records in batches. Any input other than a kernel record or a tick arriving up to 1 s late
    /// (less than the 2 s grace after ready) must give the same timelines.
    @Test(arguments: names) func lateAndReorderedSourcesGiveTheSameTimelines(name: String) throws {
        let fixture = try Self.load(name)
        let reference = Self.replay(fixture.recording.inputs, fixture: fixture)
        for seed in 1...5 as ClosedRange<UInt64> {
            var rng = SplitMix(seed: seed)
            let shuffled = Self.delayed(fixture.recording.inputs, clock: fixture.clock, maxDelayNs: 1_000_000_000, rng: &rng)
            #expect(shuffled != fixture.recording.inputs, "the shuffle moved something")
            let replayed = Self.replay(shuffled, fixture: fixture)
            #expect(replayed == reference, "\(name), seed \(seed)")
        }
        // every log line (containerd's) late by a full second, in order
        var late = SplitMix(seed: 0)
        let logsLate = Self.delayed(fixture.recording.inputs, clock: fixture.clock, maxDelayNs: 0, rng: &late) { input in
            Self.source(of: input) == .containerd ? 1_000_000_000 : nil
        }
        #expect(Self.replay(logsLate, fixture: fixture) == reference, "\(name): containerd log lines 1 s late")
    }

    /// The same start under other ids and at another time is the same start.
    @Test func aRelabeledCopyReplaysToTheSameTimelineUnderItsNewIds() throws {
        let fixture = try Self.load("reader-cold")
        let reference = Self.replay(fixture.recording.inputs, fixture: fixture)
        let r = InputRelabeling(suffix: "-copy", shiftNs: 3_600_000_000_000, namespaceOffset: 1000, pidOffset: 4_194_304)
        let copy = Self.replay(fixture.recording.inputs.map(r.apply), fixture: fixture)
        #expect(copy.count == reference.count)
        for (c, e) in zip(copy, reference) {
            #expect(c.pod.uid == e.pod.uid + "-copy")
            #expect(c.created == e.created + 3_600_000_000_000)
            #expect(c.phases.map { $0.end - $0.start } == e.phases.map { $0.end - $0.start })
            #expect(c.phases.map(\.source) == e.phases.map(\.source))
            #expect(c.containers == e.containers.map { var x = $0; x.firstExec = x.firstExec.map { $0 + 3_600_000_000_000 }; return x })
        }
    }

    // MARK: helpers

    /// Kernel times become wall time with the recording's clock offset; the recorder measures it
    /// right after the agent measured its own (two readings of CLOCK_REALTIME − CLOCK_MONOTONIC),
    /// so times derived from kernel records may differ from the agent's by that noise, < 1 µs.
    static func near(_ a: Int64, _ b: Int64) -> Bool { abs(a - b) < 1_000 }

    static func source(of input: CorrelatorInput) -> PhaseSource? {
        switch input {
        case .pod(let p): p.source
        case .scheduled(let s): s.source
        case .sandbox(let s): s.source
        case .pull(let p): p.source
        case .containerStarted(let s): s.source
        case .ready(let r): r.source
        case .containerCreated(let c): c.source
        default: nil
        }
    }

    /// Each input that is not a kernel record or a tick arrives late by `delay(input)` (default: a
    /// random delay up to `maxDelayNs`), measured on the stream's own clock (the latest time seen
    /// so far). Kernel records and ticks keep their order and times.
    static func delayed(_ inputs: [CorrelatorInput], clock: WallClock, maxDelayNs: Int64, rng: inout SplitMix,
                        delay: (CorrelatorInput) -> Int64? = { _ in nil }) -> [CorrelatorInput] {
        var streamTime = Int64.min
        var keyed: [(at: Int64, index: Int, input: CorrelatorInput)] = []
        for (i, input) in inputs.enumerated() {
            let t: Int64?
            switch input {
            case .kernel(let e): t = clock.unixNanoseconds(monotonic: e.timestampNs)
            case .tick(let now): t = now
            default: t = nil
            }
            if let t { streamTime = max(streamTime, t) }
            switch input {
            case .kernel, .tick:
                keyed.append((streamTime, i, input))
            default:
                let d = delay(input) ?? (maxDelayNs > 0 ? Int64(rng.next() % UInt64(maxDelayNs)) : 0)
                keyed.append((streamTime == .min ? .min : streamTime + d, i, input))
            }
        }
        return keyed.sorted { $0.at != $1.at ? $0.at < $1.at : $0.index < $1.index }.map(\.input)
    }
}

