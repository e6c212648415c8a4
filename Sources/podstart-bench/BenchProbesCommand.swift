import ArgumentParser
import Foundation
import KernelProbes
import PodstartCore
import TraceViews

/// `podstart-bench probes`: what the kernel probes cost a workload, as ratios to an untraced run
/// measured in the same run, alternating modes round by round so drift hits all of them alike.
struct BenchProbesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probes",
        abstract: "Cost of the kernel probes on an open+read loop, against no tracer and empty programs.",
        discussion: """
            Modes, each an open+read+close loop in a fresh mount namespace: no tracer (baseline); \
            empty programs on podstart's hooks (the floor any tracepoint tracer can reach); podstart \
            tracing the loop as a starting container; podstart with only its always-on hooks (a \
            running, not starting, container). Then a burst over many distinct files measures the \
            reader. Targets: ratio >= 0.95 x limitRatio, steadyRatio >= 0.98, no lost events, <= 100 ns \
            of reader CPU per event.
            """
    )

    @OptionGroup var format: FigureOutput

    @Option(help: "Rounds per mode (modes alternate within each round; a multiple of 4 puts every mode after every other equally often).")
    var rounds = 8

    @Flag(name: .customLong("rotated-order"), help: .hidden)  // the design before #16.8: rotated order, no settling, ratios of medians
    var rotatedOrder = false

    @Option(help: "Loop iterations per run.")
    var iterations = 200_000

    @Option(help: "Distinct files the loop cycles through.")
    var files = 64

    @Option(help: "Distinct files opened once each in every reader burst.")
    var burstFiles = 50_000

    func validate() throws {
        guard rounds >= 1, iterations >= 1000, files >= 1, burstFiles >= 1 else {
            throw ValidationError("--rounds, --files and --burst-files must be positive, --iterations at least 1000")
        }
    }

    enum Mode: String, CaseIterable { case baseline, limit, traced, steady }

    func run() async throws {
        let workdir = FileManager.default.temporaryDirectory.appending(path: "podstart-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: "\(workdir)/loop", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(workdir)/burst", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workdir) }
        let content = Data(repeating: 0x61, count: 4096)
        for i in 0..<files { try content.write(to: URL(filePath: "\(workdir)/loop/f\(i)")) }
        for i in 0..<burstFiles { try content.write(to: URL(filePath: "\(workdir)/burst/f\(i)")) }

        let session = try KernelProbeSession()
        defer { session.close() }
        let empty = try EmptyProbes()
        let counter = EventCounter()
        let stream = try session.events()
        let consumer = Task { await counter.consume(stream) }

        var opsPerSecond: [Mode: [Double]] = [:]
        let progress = TerminalProgress.standardError(forPeople: !format.json)
        for round in 0..<rounds {
            progress.show("loop round \(round + 1) of \(rounds)")
            let modes = rotatedOrder ? Mode.allCases.indices.map { Mode.allCases[($0 + round) % Mode.allCases.count] } : Self.order(round: round)
            for mode in modes {
                session.detach(Set(ProbeFamily.allCases))
                empty.detach()
                switch mode {
                case .baseline: break
                case .limit: try empty.attach(Set(ProbeFamily.allCases))
                case .traced: try session.attach(Set(ProbeFamily.allCases))
                case .steady: try session.attach([.process])
                }
                // what the previous mode left behind (records still being read and decoded, the
                // kernel freeing detached programs) runs now, not during this mode's loop
                if !rotatedOrder { try await settle(counter) }
                let ns = try runLoop(dir: "\(workdir)/loop", files: files, iterations: iterations)
                opsPerSecond[mode, default: []].append(Double(iterations) / (Double(ns) / 1e9))
            }
        }
        session.detach(Set(ProbeFamily.allCases))
        empty.detach()

        // The kernel's own clock on each program, which other processes' load does not distort:
        // one more loop with the empty programs and one with podstart's, run-time statistics on.
        var perIteration: [Mode: [String: ProgramRunTime]] = [:]
        do {
            let statistics = try RunTimeStatistics()
            for mode in [Mode.limit, .traced] {
                func readings() -> [String: ProgramRunTime] {
                    mode == .limit ? empty.programRunTimes() : session.programRunTimes()
                }
                if mode == .limit { try empty.attach(Set(ProbeFamily.allCases)) } else { try session.attach(Set(ProbeFamily.allCases)) }
                let before = readings()
                _ = try runLoop(dir: "\(workdir)/loop", files: files, iterations: iterations)
                let after = readings()
                session.detach(Set(ProbeFamily.allCases))
                empty.detach()
                perIteration[mode] = after.reduce(into: [:]) { result, entry in
                    let delta = entry.value - (before[entry.key] ?? ProgramRunTime(runCount: 0, runTimeNs: 0))
                    if delta.runCount > 0 { result[entry.key] = delta }
                }
            }
            withExtendedLifetime(statistics) {}
        }
        func programFigures(_ mode: Mode) -> JSON {
            .object(perIteration[mode, default: [:]].sorted { $0.key < $1.key }.map { name, run in
                (name, .object([("runs", .uint(run.runCount)), ("nsPerRun", .double(run.nanosecondsPerRun.rounded(toPlaces: 1)))]))
            })
        }
        func nsPerIteration(_ mode: Mode) -> Double {
            Double(perIteration[mode, default: [:]].values.reduce(0) { $0 + $1.runTimeNs }) / Double(iterations)
        }
        let programNsPerIteration = nsPerIteration(.traced)
        let emptyNsPerIteration = nsPerIteration(.limit)

        // The reader bursts, one per round: every open is of a file new to the burst's mount
        // namespace, so every one is a record. The kernel's aggregates are cleared between
        // bursts: the next namespace may get the same number, and its opens would be repeats.
        var bursts: [Burst] = []
        for burst in 0..<rounds {
            progress.show("reader burst \(burst + 1) of \(rounds)")
            _ = try session.openCounts(remove: true)
            _ = try session.drainReadRanges()
            try session.attach(Set(ProbeFamily.allCases))
            let before = session.readerStatistics
            let recordsBefore = counter.records
            let burstStart = WallClock.monotonicNow()
            _ = try runLoop(dir: "\(workdir)/burst", files: burstFiles, iterations: burstFiles)
            try await Task.sleep(for: .milliseconds(Int(session.configuration.pollIntervalMs) * 3))
            let burstEnd = WallClock.monotonicNow()
            session.detach(Set(ProbeFamily.allCases))
            // on a loaded machine the reader may not have run within three poll periods: a fixed
            // wait gave this burst's records (and reader CPU) to the next one (bursts of 0 and of
            // 11,869 ns per event in one run)
            try await settle(counter)
            let after = session.readerStatistics
            bursts.append(Burst(records: counter.records - recordsBefore, before: before, after: after,
                                seconds: Double(burstEnd - burstStart) / 1e9))
        }
        progress.clear()
        let stats = try session.statistics()
        session.close()
        await consumer.value

        // each mode against the baseline of its own round (the machine's load moves from one
        // minute to the next); the median over rounds, and the spread of the rounds
        let base = median(opsPerSecond[.baseline]!)
        func perRound(_ mode: Mode) -> [Double] { zip(opsPerSecond[mode]!, opsPerSecond[.baseline]!).map { $0 / $1 } }
        func figure(_ mode: Mode) -> Double { rotatedOrder ? median(opsPerSecond[mode]!) / base : median(perRound(mode)) }
        let ratio = figure(.traced)
        let limitRatio = figure(.limit)
        let steadyRatio = figure(.steady)
        func spread(_ mode: Mode) -> JSON {
            let r = perRound(mode)
            return .array([.double(r.min()!.rounded(toPlaces: 4)), .double(r.max()!.rounded(toPlaces: 4))])
        }
        let lost = stats.values.reduce(0) { $0 + $1.lost } + (bursts.last?.after.dropped ?? 0)
        let readerNsRuns = bursts.map(\.readerNsPerRecord)
        let readerNs = median(readerNsRuns)
        let eventsPerSecond = median(bursts.map(\.eventsPerSecond))
        let decodeNs = counter.decodeNanosecondsPerRecord
        let recordsPerBatch = median(bursts.map(\.recordsPerBatch))
        // The reader's CPU is a cost per pass (a wake-up) plus a cost per record; records per pass
        // depend on the rate the burst produced them (the ring wakes the reader every 2 MiB, a
        // timer every poll period), so ns per event alone moves with the machine's load.
        let (nsPerPass, nsPerRecord) = Burst.fit(bursts)
        let burstRecords = bursts.reduce(0) { $0 + $1.records }

        let figures: [(String, JSON)] = [
            ("ratio", .double(ratio.rounded(toPlaces: 4))),
            ("limitRatio", .double(limitRatio.rounded(toPlaces: 4))),
            ("steadyRatio", .double(steadyRatio.rounded(toPlaces: 4))),
            ("ratioRange", spread(.traced)),
            ("limitRatioRange", spread(.limit)),
            ("steadyRatioRange", spread(.steady)),
            ("steadyRatioRuns", .array(perRound(.steady).map { .double($0.rounded(toPlaces: 4)) })),
            ("eventsPerSecond", .double(eventsPerSecond.rounded())),
            ("lost", .uint(lost)),
            ("readerNsPerEvent", .double(readerNs.rounded(toPlaces: 1))),
            ("readerNsPerEventRuns", .array(readerNsRuns.map { .double($0.rounded(toPlaces: 1)) })),
            ("decodeNsPerEvent", .double(decodeNs.rounded(toPlaces: 1))),
            ("recordsPerBatch", .double(recordsPerBatch.rounded(toPlaces: 1))),
            ("recordsPerBatchRuns", .array(bursts.map { .double($0.recordsPerBatch.rounded(toPlaces: 1)) })),
            ("eventsPerSecondRuns", .array(bursts.map { .double($0.eventsPerSecond.rounded()) })),
            ("readerNsPerPassFit", .double(nsPerPass.rounded(toPlaces: 0))),
            ("readerNsPerRecordFit", .double(nsPerRecord.rounded(toPlaces: 1))),
            ("baselineOpsPerSecond", .double(base.rounded())),
            ("programNsPerIteration", .double(programNsPerIteration.rounded(toPlaces: 1))),
            ("emptyProgramNsPerIteration", .double(emptyNsPerIteration.rounded(toPlaces: 1))),
            ("programs", programFigures(.traced)),
            ("emptyPrograms", programFigures(.limit)),
            ("burstRecords", .uint(burstRecords)),
            ("rounds", .int(Int64(rounds))),
            ("iterations", .int(Int64(iterations))),
            ("targetsMet", .object([
                ("ratio", .bool(ratio >= 0.95 * limitRatio)),
                ("steadyRatio", .bool(steadyRatio >= 0.98)),
                ("lost", .bool(lost == 0)),
                ("readerNsPerEvent", .bool(readerNs <= 100)),
            ])),
        ]
        if format.json {
            print(JSON.object(figures).rendered())
        } else {
            print("open+read loop, \(iterations) iterations x \(rounds) rounds, medians vs no tracer (\(Int(base)) ops per CPU-second):")
            print(String(format: "  podstart tracing a starting container  ratio       %.4f  (target >= %.4f = 0.95 x limit)", ratio, 0.95 * limitRatio))
            print(String(format: "  empty programs on the same hooks       limitRatio  %.4f", limitRatio))
            print(String(format: "  podstart, container already running    steadyRatio %.4f  (target >= 0.98)", steadyRatio))
            for mode in [Mode.traced, .limit, .steady] {
                let r = perRound(mode)
                print(String(format: "  %@ per round vs that round's baseline: %.4f to %.4f", mode.rawValue, r.min()!, r.max()!))
            }
            print(String(format: "kernel-measured program time per loop iteration (bpf_stats): podstart %.1f ns, empty programs %.1f ns",
                         programNsPerIteration, emptyNsPerIteration))
            for (name, run) in perIteration[.traced, default: [:]].sorted(by: { $0.key < $1.key }) {
                let floor = perIteration[.limit]?[name]?.nanosecondsPerRun ?? 0
                print("  " + name.padding(toLength: 52, withPad: " ", startingAt: 0)
                      + String(format: " %9llu runs %7.1f ns/run (empty: %.1f)", run.runCount, run.nanosecondsPerRun, floor))
            }
            print("reader, \(rounds) bursts over \(burstFiles) new files (medians):")
            print(String(format: "  %.0f events/s, %llu lost, %.1f ns reader CPU per event (target <= 100), %.1f ns to decode, %.1f records per batch",
                         eventsPerSecond, lost, readerNs, decodeNs, recordsPerBatch))
            print("  reader ns per event, each burst: " + readerNsRuns.map { String(format: "%.1f", $0) }.joined(separator: " "))
            print("  records per batch, each burst: " + bursts.map { String(format: "%.0f", $0.recordsPerBatch) }.joined(separator: " "))
            print(String(format: "  least-squares over the bursts: %.0f ns per pass + %.1f ns per record (ns per event = that at the batch size the event rate gives)",
                         nsPerPass, nsPerRecord))
        }
    }

    /// The modes' order in a round: a balanced Latin square (Williams design), so over every 4
    /// rounds each mode runs first once and right after each other mode once. (A rotation of one
    /// order keeps the neighbours: `steady` always ran right after `traced`, whose records and
    /// detached programs were still being dealt with.)
    static func order(round: Int) -> [Mode] {
        let square = [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
        return square[round % 4].map { Mode.allCases[$0] }
    }

    /// Waits until the consumer has taken every record so far (no change over 50 ms), then 50 ms more.
    func settle(_ counter: EventCounter) async throws {
        var last = counter.records
        while true {
            try await Task.sleep(for: .milliseconds(50))
            let now = counter.records
            if now == last { break }
            last = now
        }
        try await Task.sleep(for: .milliseconds(50))
    }

    /// Runs the loop in a fresh mount namespace (a "container" to the probes); returns its time.
    func runLoop(dir: String, files: Int, iterations: Int) throws -> UInt64 {
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--fork", "/proc/self/exe", "bench-loop",
                             "--dir", dir, "--files", String(files), "--iterations", String(iterations)]
        // /proc/self/exe must name podstart-bench, not unshare: resolve it here.
        process.arguments![2] = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let ns = UInt64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw ValidationError("the benchmark loop failed (exit \(process.terminationStatus))") }
        return ns
    }
}

/// One reader burst: the records it brought and the reader's counters around it.
struct Burst {
    var records: UInt64
    var before: KernelProbeSession.ReaderStatistics
    var after: KernelProbeSession.ReaderStatistics
    var seconds: Double

    var readerNsPerRecord: Double {
        let records = after.records - before.records
        return records == 0 ? 0 : Double(after.cpuNanoseconds - before.cpuNanoseconds) / Double(records)
    }
    var recordsPerBatch: Double {
        let batches = after.batches - before.batches
        return batches == 0 ? 0 : Double(after.records - before.records) / Double(batches)
    }
    var eventsPerSecond: Double { seconds > 0 ? Double(records) / seconds : 0 }

    /// Reader CPU = a × passes + b × records, least squares over the bursts: (a, b) in ns. (0, 0)
    /// when the bursts do not tell the two apart (all at one batch size).
    static func fit(_ bursts: [Burst]) -> (perPass: Double, perRecord: Double) {
        var spp = 0.0, spr = 0.0, srr = 0.0, spc = 0.0, src = 0.0
        for b in bursts {
            let p = Double(b.after.batches - b.before.batches), r = Double(b.after.records - b.before.records)
            let c = Double(b.after.cpuNanoseconds - b.before.cpuNanoseconds)
            spp += p * p; spr += p * r; srr += r * r; spc += p * c; src += r * c
        }
        let det = spp * srr - spr * spr
        guard det > 1e-9 * spp * srr, det != 0 else { return (0, 0) }
        return ((spc * srr - src * spr) / det, (spp * src - spr * spc) / det)
    }
}

/// The loop the probes benchmark measures: open, read, close over a set of files. Hidden; run by
/// `bench probes` inside a fresh mount namespace. Prints the loop's CPU nanoseconds.
struct BenchLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-loop", shouldDisplay: false)

    @Option var dir: String
    @Option var files: Int
    @Option var iterations: Int
    @Option var bytes = 4096

    func run() throws {
        let paths = (0..<files).map { strdup("\(dir)/f\($0)")! }
        defer { paths.forEach { free($0) } }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { buffer.deallocate() }
        // CPU time, not wall time: the probes' programs run in this task's context and are
        // charged to it, while time other processes take from us on a busy machine is not.
        let start = Self.cpuNanoseconds()
        for i in 0..<iterations {
            let fd = open(paths[i % files], O_RDONLY)
            if fd < 0 { throw ValidationError("open \(String(cString: paths[i % files])): errno \(errno)") }
            _ = read(fd, buffer, bytes)
            close(fd)
        }
        print(Self.cpuNanoseconds() - start)
    }

    static func cpuNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Counts (and decodes, timing the decoding) what the reader delivers.
final class EventCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count: UInt64 = 0
    private var decodeNs: UInt64 = 0

    var records: UInt64 { lock.withLock { count } }
    var decodeNanosecondsPerRecord: Double { lock.withLock { count == 0 ? 0 : Double(decodeNs) / Double(count) } }

    func consume(_ stream: AsyncStream<RawEventBatch>) async {
        for await batch in stream {
            let t0 = WallClock.monotonicNow()
            let events = batch.decode()
            let t1 = WallClock.monotonicNow()
            lock.withLock {
                count += UInt64(events.count)
                decodeNs += t1 - t0
            }
        }
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = Foundation.pow(10, Double(places))  // qualified: swift-numerics (via async-http-client) adds a static Double.pow
        return (self * scale).rounded() / scale
    }
}
