import ArgumentParser
import Foundation
import PodstartCore
import TraceViews

/// `podstart-bench correlator`: replays a recorded stream (`podstart agent --record-inputs`),
/// repeated with fresh ids and shifted times into N pod starts, through one `Correlator` in this
/// process. Reports events per CPU-second of the correlator, and resident memory before (the
/// baseline), after one round and after a second round of N more starts (flat = no growth per
/// start). Inputs are built in chunks outside the timed part, so the figure is the correlator's.
struct BenchCorrelatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "correlator",
        abstract: "Correlator throughput and memory replaying 10,000 recorded pod starts, against RSS before the replay.",
        discussion: """
            Targets: >= 1,000,000 events/s; resident memory after the starts <= 64 MiB and flat \
            when the round is repeated. The default recording is the fixture \
            Tests/PodstartCoreTests/Fixtures/reader-cold.jsonl (run from the repository root).
            """
    )

    @Option(help: "A recording (podstart agent --record-inputs) holding at least one complete pod start.")
    var recording = "Tests/PodstartCoreTests/Fixtures/reader-cold.jsonl"

    @Option(help: "Pod starts per round.")
    var pods = 10_000

    @Option(help: "Rounds (each replays --pods fresh starts; memory is read after each).")
    var rounds = 2

    @OptionGroup var format: FigureOutput

    func validate() throws {
        guard pods >= 1, rounds >= 1 else { throw ValidationError("--pods and --rounds must be at least 1") }
    }

    func run() throws {
        guard let text = try? String(contentsOfFile: recording, encoding: .utf8) else {
            throw ValidationError("cannot read --recording \(recording) (run from the repository root, or pass a file from podstart agent --record-inputs)")
        }
        let template = try ReplayTemplate(text: text, source: recording)

        // One start per copy is what the template holds; check the first copy replays to it.
        var correlator = Correlator(configuration: template.configuration, clock: template.clock)
        var produced = 0
        var events = 0
        var seconds = 0.0
        let baseline = ResidentMemory.read()
        var afterRound: [ResidentMemory] = []
        let chunk = 100
        var copy = 0
        let progress = TerminalProgress.standardError(forPeople: !format.json)
        for round in 0..<rounds {
            progress.show("replay round \(round + 1) of \(rounds)")
            var done = 0
            while done < pods {
                let n = min(chunk, pods - done)
                var inputs: [CorrelatorInput] = []
                inputs.reserveCapacity(n * template.inputs.count)
                for k in copy..<(copy + n) { inputs += template.copy(k) }
                copy += n
                done += n
                // CPU time of this thread, not wall time: other processes on a busy node do not count
                let t0 = Self.threadCPUNanoseconds()
                for input in inputs { produced += correlator.ingest(input).count }
                seconds += Double(Self.threadCPUNanoseconds() - t0) / 1e9
                events += inputs.count
            }
            afterRound.append(ResidentMemory.read())
        }
        progress.clear()
        let expected = rounds * pods * template.startsPerCopy
        guard produced == expected else {
            throw ValidationError("the replay produced \(produced) timelines, expected \(expected): the copies do not replay like the recording")
        }
        let perSecond = Double(events) / seconds
        let mib = { (kb: Int) in (Double(kb) / 1024).rounded(toPlaces: 1) }
        let last = afterRound.last!, first = afterRound.first!
        let growth = last.rssKiB - first.rssKiB
        if format.json {
            print(JSON.object([
                ("eventsPerSecond", .double(perSecond.rounded())),
                ("events", .int(Int64(events))),
                ("timelines", .int(Int64(produced))),
                ("inputsPerStart", .int(Int64(template.inputs.count / template.startsPerCopy))),
                ("correlatorSeconds", .double(seconds.rounded(toPlaces: 4))),
                ("baselineRssMiB", .double(mib(baseline.rssKiB))),
                ("rssAfterRoundsMiB", .array(afterRound.map { .double(mib($0.rssKiB)) })),
                ("hwmMiB", .double(mib(last.hwmKiB))),
                ("growthLastRoundMiB", .double(mib(growth))),
                ("pods", .int(Int64(pods))),
                ("rounds", .int(Int64(rounds))),
                ("targetsMet", .object([
                    ("eventsPerSecond", .bool(perSecond >= 1_000_000)),
                    ("rss", .bool(last.rssKiB <= 64 * 1024)),
                    ("flat", .bool(rounds < 2 || Double(growth) <= 0.05 * Double(first.rssKiB))),
                ])),
            ]).rendered())
        } else {
            print("correlator replay of \(recording): \(template.inputs.count / template.startsPerCopy) inputs per start, \(pods) starts x \(rounds) rounds")
            print(String(format: "  %.0f events/s (%d events, %.3f CPU-seconds in the correlator; target >= 1,000,000)", perSecond, events, seconds))
            print(String(format: "  resident memory: %.1f MiB before (baseline), ", mib(baseline.rssKiB))
                + afterRound.enumerated().map { String(format: "%.1f MiB after round %d", mib($0.element.rssKiB), $0.offset + 1) }.joined(separator: ", ")
                + String(format: "; peak %.1f MiB (target <= 64 MiB, flat)", mib(last.hwmKiB)))
        }
    }
}

extension BenchCorrelatorCommand {
    static func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A recording made ready to repeat: its inputs, its clock, how long one copy lasts.
struct ReplayTemplate {
    var inputs: [CorrelatorInput]
    var clock: WallClock
    var configuration: Correlator.Configuration
    var startsPerCopy: Int
    /// Time between copies: the recording's span plus the grace and a margin, so copies do not overlap.
    var periodNs: Int64

    init(text: String, source: String) throws {
        let recording = CorrelatorInputCodec.read(text)
        guard recording.problems.isEmpty else {
            throw ValidationError("\(source): \(recording.problems.count) bad lines, first: \(recording.problems[0])")
        }
        guard let clock = recording.clock else { throw ValidationError("\(source): no header line (podstartInputs, clockOffsetNs)") }
        self.clock = clock
        var configuration = Correlator.Configuration()
        configuration.readyWhenRunning = true
        self.configuration = configuration
        var check = Correlator(configuration: configuration, clock: clock)
        var times: [Int64] = []
        var count = 0
        for input in recording.inputs {
            count += check.ingest(input).count
            if let t = input.time(clock: clock) { times.append(t) }
        }
        let span = (times.max() ?? 0) - (times.min() ?? 0)
        periodNs = span + configuration.graceNs + 1_000_000_000
        // what is still open at the end of the recording closes once time passes
        let end = (times.max() ?? 0) + configuration.graceNs + 1
        inputs = recording.inputs + [.tick(nowUnixNs: end)]
        count += check.ingest(.tick(nowUnixNs: end)).count
        guard count >= 1 else { throw ValidationError("\(source): the recording holds no complete pod start") }
        startsPerCopy = count
    }

    func copy(_ k: Int) -> [CorrelatorInput] {
        let r = InputRelabeling(suffix: "-\(k)", shiftNs: Int64(k) * periodNs,
                                namespaceOffset: UInt32(truncatingIfNeeded: k &* 65_537),
                                pidOffset: UInt32(truncatingIfNeeded: k) &* 4_194_304)  // pid_max: each copy its own pids
        return inputs.map(r.apply)
    }
}

extension CorrelatorInput {
    /// When it happened, Unix nanoseconds (nil for inputs without a time).
    func time(clock: WallClock) -> Int64? {
        switch self {
        case .pod(let p): p.createdUnixNs
        case .scheduled(let s): s.atUnixNs
        case .podStatus(let s): s.observedUnixNs
        case .ready(let r): r.atUnixNs
        case .failed(let f): f.atUnixNs
        case .containerExited(let e): e.atUnixNs
        case .sandbox(let s): s.endUnixNs
        case .pull(let p): p.endUnixNs
        case .containerStarted(let s): s.endUnixNs
        case .containerCreated(let c): c.endUnixNs
        case .kubeletStartup(let o): o.watchObservedRunning?.nanosecondsSinceEpoch
        case .kernel(let e): clock.unixNanoseconds(monotonic: e.timestampNs)
        case .tick(let now): now
        default: nil
        }
    }
}

/// VmRSS and VmHWM of this process, from /proc/self/status.
struct ResidentMemory {
    var rssKiB = 0
    var hwmKiB = 0

    static func read(pid: String = "self") -> ResidentMemory {
        var m = ResidentMemory()
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return m }
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let v = Int(parts[1]) else { continue }
            if parts[0] == "VmRSS:" { m.rssKiB = v }
            if parts[0] == "VmHWM:" { m.hwmKiB = v }
        }
        return m
    }
}
