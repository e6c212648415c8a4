import PodstartCore
import Testing

/// The `lazy_fetch` sub-phase and the files fetched on demand, from FUSE request records of a
/// container's tasks (issue #17): the waits are merged, cut at the top-level phases they fall in,
/// and each read is named by the file whose page-cache fill it served.
@Suite("Lazy fetch")
struct LazyFetchTests {
    typealias C = CorrelatorTests
    /// The stargz layer's FUSE mount, and the inode /data/random.bin has on it.
    static let fuseDevice = DeviceNumber(major: 0, minor: 61)
    static let randomOnFuse = FileKey(device: fuseDevice, inode: 12)
    /// /data/random.bin as the container's open sees it: the overlay's inode.
    static let overlayRandom = FileKey(device: DeviceNumber(rawValue: 40), inode: 77)
    static let randomLayer = "sha256:" + String(repeating: "5", count: 64)

    /// What the trace command's resolver says of /data/random.bin (the stargz layer's copy of the
    /// path, its stat: the FUSE file): reads join the path through it.
    static func resolve(_: Correlator.AccessContainer, _ path: String, _: FileIdentity) -> LayerLocation? {
        path == "/data/random.bin" ? LayerLocation(layerDigest: randomLayer, dataFile: randomOnFuse) : nil
    }

    static func request(_ from: Int64, _ to: Int64, opcode: UInt32, reply: UInt32 = 16, file: FileKey? = nil,
                        task: TaskContext = C.task, unique: UInt64 = 1) -> CorrelatorInput {
        .kernel(.fuseRequest(FuseRequestEvent(timestampNs: C.mono(to), task: task, sendNs: C.mono(from), unique: unique,
                                              connection: fuseDevice, opcode: opcode, requestBytes: 80, replyBytes: reply, error: 0,
                                              file: file)))
    }

    /// CorrelatorTests' start (start 1550–1620 ms, probe 1620–3000 ms) with a container that waits
    /// on a FUSE file system: a lookup and a getattr around its first exec, two 128 KiB reads of
    /// /data/random.bin, a read the kernel saw no fill for, and another namespace's request.
    static var stream: [CorrelatorInput] {
        var s = C.stream
        let ready = s.firstIndex { if case .ready = $0 { true } else { false } }!
        // /data/random.bin through overlayfs: the open names the overlay inode, as its data inode
        // too (an overlay file's f_mapping is the overlay's own); the data live in the FUSE layer,
        // which only the layer's copy of the path leads to (`resolve`)
        let random = FileIdentity(key: overlayRandom, dataKey: overlayRandom, sizeBytes: 64 << 20, mode: 0o100644)
        var other = C.task
        other.mountNamespace = 4026530001
        other.pid = 60
        s.insert(contentsOf: [
            request(1590, 1610, opcode: 1, unique: 2),
            request(1610, 1630, opcode: 3, unique: 3),
            .kernel(.open(OpenEvent(timestampNs: C.mono(1700), task: C.task, syscall: .openat, result: 3, directoryFD: -100, openFlags: 0,
                                    rawPath: "/data/random.bin", rawPathTruncated: false,
                                    path: ResolvedPath(path: "/data/random.bin", truncated: false), file: random, isRuntimeProcess: false))),
            request(1710, 1900, opcode: 15, reply: 16 + 131_072, file: randomOnFuse, unique: 4),
            request(1950, 2100, opcode: 15, reply: 16 + 131_072, file: randomOnFuse, unique: 5),
            request(2200, 2210, opcode: 15, reply: 16 + 4096, unique: 6),
            request(2300, 2900, opcode: 15, reply: 16 + 4096, task: other, unique: 7),
        ], at: ready)
        return s
    }

    static func trace(resolve: Correlator.AccessResolver = LazyFetchTests.resolve) throws -> PodStartTrace {
        var c = Correlator(clock: C.clock)
        var out: [PodStartTrace] = []
        for input in stream { out += c.ingest(input, resolve: resolve) }
        out += c.ingest(.tick(nowUnixNs: C.ms(5001)), resolve: resolve)
        return try #require(out.first)
    }

    @Test func theWaitsAreLazyFetchCutAtTheStartAndProbeTheyFallIn() throws {
        let trace = try Self.trace()
        let lazy = trace.phases.filter { $0.name == .lazyFetch }
        // the lookup and the getattr touch: one wait 1590–1630, cut at the first exec (1620)
        #expect(lazy.map { [$0.start, $0.end] } == [[C.ms(1590), C.ms(1620)], [C.ms(1620), C.ms(1630)], [C.ms(1710), C.ms(1900)],
                                                     [C.ms(1950), C.ms(2100)], [C.ms(2200), C.ms(2210)]])
        #expect(lazy.map(\.parent) == [.start, .probe, .probe, .probe, .probe])
        #expect(lazy.allSatisfy { $0.source == .kernel })
        #expect(trace.seconds(of: .lazyFetch) == 0.39)
        // a sub-phase: the top level still tiles created → ready
        #expect(trace.phases.filter { $0.parent == nil }.reduce(0) { $0 + $1.nanoseconds } == trace.e2eNanoseconds)
    }

    @Test func eachReadIsNamedByTheFileItFilledAndTheRestGoByOperation() throws {
        let fetches = try #require(Self.trace().containers.first?.lazyFetches)
        #expect(fetches.map { $0.path ?? "(\($0.operation))" } == ["(lookup)", "(getattr)", "/data/random.bin", "(read)"])
        let random = try #require(fetches.first { $0.path == "/data/random.bin" })
        #expect(random.operation == "read" && random.requests == 2 && random.bytes == 262_144)
        #expect(random.layerDigest == Self.randomLayer)
        #expect(abs(random.waitSeconds - 0.34) < 1e-9)
        #expect(random.firstRequestMs == 90, "first read 1710 ms, first exec 1620 ms")
        let unnamed = try #require(fetches.last)
        #expect(unnamed.requests == 1 && unnamed.bytes == 4096, "the other namespace's request is not this container's")
    }

    /// The end-to-end run on stargz found every read unnamed: the trace command resolved no path
    /// when it could not find the image's layers, and the open's own inodes are the overlay's.
    @Test func aReadIsNamedOnlyThroughTheLayersCopyOfThePathNotTheOverlayInode() throws {
        let unresolved = try #require(Self.trace(resolve: Correlator.noResolver).containers.first?.lazyFetches)
        #expect(!unresolved.contains { $0.path != nil }, "\(unresolved)")
        #expect(unresolved.filter { $0.operation == "read" }.map(\.requests) == [3])
        // a resolver that knows the path but not the layer still names the read
        let noLayer = try #require(Self.trace(resolve: { _, path, _ in
            path == "/data/random.bin" ? LayerLocation(layerDigest: nil, dataFile: Self.randomOnFuse) : nil
        }).containers.first?.lazyFetches)
        let random = try #require(noLayer.first { $0.path == "/data/random.bin" }, "\(noLayer)")
        #expect(random.requests == 2 && random.layerDigest == nil)
    }

    @Test func aTraceWithLazyFetchesReadsBackTheSame() throws {
        let trace = try Self.trace()
        let back = try PodStartTrace(json: trace.json())
        #expect(back.phases == trace.phases)
        #expect(back.containers.first?.lazyFetches == trace.containers.first?.lazyFetches)
    }

    @Test func withoutFuseRequestsThereIsNoLazyFetch() throws {
        var c = Correlator(clock: C.clock)
        var out: [PodStartTrace] = []
        for input in C.stream { out += c.ingest(input) }
        out += c.ingest(.tick(nowUnixNs: C.ms(5001)))
        let trace = try #require(out.first)
        #expect(!trace.phases.contains { $0.name == .lazyFetch })
        #expect(trace.containers.allSatisfy { $0.lazyFetches.isEmpty })
        #expect(!trace.json().rendered().contains("lazyFetches"))
    }
}
