import ArgumentParser
import ContainerRuntime
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
            of reader CPU per event. With --fuse-file, the loop also runs over a file on a FUSE mount \
            (a lazily pulled layer's), the only traffic the fuse programs run on.
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

    @Option(name: .customLong("fuse-file"), help: """
        A regular file on a FUSE mount (e.g. a file of a lazily pulled layer, under the stargz \
        snapshotter's snapshots/<N>/fs): an open+read loop over it measures the fuse programs, which \
        the loop in the temporary directory never runs.
        """)
    var fuseFile: String?

    @Option(name: .customLong("fuse-iterations"), help: "Loop iterations over --fuse-file per mode and round (each is a few FUSE requests).")
    var fuseIterations = 5_000

    func validate() throws {
        guard rounds >= 1, iterations >= 1000, files >= 1, burstFiles >= 1 else {
            throw ValidationError("--rounds, --files and --burst-files must be positive, --iterations at least 1000")
        }
        guard fuseIterations >= 100 else { throw ValidationError("--fuse-iterations must be at least 100") }
        if let fuseFile {
            var st = stat()
            guard stat(fuseFile, &st) == 0, st.st_mode & S_IFMT == S_IFREG, access(fuseFile, R_OK) == 0 else {
                throw ValidationError("--fuse-file \(fuseFile): not a readable regular file (errno \(errno)); give a file on a FUSE mount, e.g. one under a stargz snapshot's fs directory")
            }
            let type = Self.fileSystemType(of: fuseFile) ?? "unknown"
            guard type.hasPrefix("fuse") else {  // fuse, fuse.<subtype>, fuseblk
                throw ValidationError("--fuse-file \(fuseFile) is on a \(type) mount, not FUSE; give a file on a FUSE mount, e.g. one under a stargz snapshot's fs directory")
            }
        }
    }

    /// The type of the file system `path` is on: the mount with the longest mount point above it
    /// in /proc/self/mountinfo.
    static func fileSystemType(of path: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        var best: MountInfoEntry?
        for line in text.split(separator: "\n") {
            guard let entry = MountInfoEntry.parse(line: line) else { continue }
            let point = entry.mountPoint
            guard resolved == point || resolved.hasPrefix(point.hasSuffix("/") ? point : point + "/") else { continue }
            if best.map({ point.count >= $0.mountPoint.count }) ?? true { best = entry }
        }
        return best?.fileSystemType
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
        let fuse = try fuseFile.map { try measureFuse(file: $0, session: session, empty: empty, progress: progress) }

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
            ("fuse", fuse?.json ?? .null),
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
            if let fuse { fuse.printTable() }
        }
    }

    /// The loop over one file on a FUSE mount: each iteration is an open, a read and a close the
    /// FUSE daemon answers (FUSE_OPEN, FUSE_READ unless the daemon keeps the page cache, FUSE_FLUSH,
    /// FUSE_RELEASE). Rounds alternate no tracer, empty programs and podstart (all families, as
    /// during a start); the kernel's run-time statistics stay on throughout, so every program's
    /// ns per run is measured on the same requests the loop's ratios are.
    func measureFuse(file: String, session: KernelProbeSession, empty: EmptyProbes, progress: TerminalProgress) throws -> FuseFigures {
        let statistics = try RunTimeStatistics()
        defer { withExtendedLifetime(statistics) {} }
        var figures = FuseFigures(file: file, iterations: fuseIterations)
        for round in 0..<rounds {
            progress.show("FUSE loop round \(round + 1) of \(rounds)")
            for mode in Self.order(round: round) where mode != .steady {
                session.detach(Set(ProbeFamily.allCases))
                empty.detach()
                if mode == .limit { try empty.attach(Set(ProbeFamily.allCases)) }
                if mode == .traced { try session.attach(Set(ProbeFamily.allCases)) }
                let before = mode == .limit ? empty.programRunTimes() : session.programRunTimes()
                let ns = try runLoop(path: file, iterations: fuseIterations)
                let after = mode == .limit ? empty.programRunTimes() : session.programRunTimes()
                figures.opsPerSecond[mode, default: []].append(Double(fuseIterations) / (Double(ns) / 1e9))
                if mode != .baseline {
                    for (name, run) in after {
                        let delta = run - (before[name] ?? ProgramRunTime(runCount: 0, runTimeNs: 0))
                        guard delta.runCount > 0 else { continue }
                        let sum = figures.programs[mode]?[name] ?? ProgramRunTime(runCount: 0, runTimeNs: 0)
                        figures.programs[mode, default: [:]][name] = ProgramRunTime(runCount: sum.runCount + delta.runCount,
                                                                                    runTimeNs: sum.runTimeNs + delta.runTimeNs)
                    }
                }
            }
        }
        session.detach(Set(ProbeFamily.allCases))
        empty.detach()
        return figures
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
        try runLoop(["--dir", dir, "--files", String(files), "--iterations", String(iterations)])
    }

    /// The loop over the one file `path`.
    func runLoop(path: String, iterations: Int) throws -> UInt64 {
        try runLoop(["--path", path, "--iterations", String(iterations)])
    }

    private func runLoop(_ loopArguments: [String]) throws -> UInt64 {
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--fork", "/proc/self/exe", "bench-loop"] + loopArguments
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

    @Option var dir: String?
    @Option var files = 1
    /// One file to open every iteration instead of `dir`/f0 … f(files − 1).
    @Option var path: String?
    @Option var iterations: Int
    @Option var bytes = 4096

    func validate() throws {
        guard (dir == nil) != (path == nil), files >= 1 else { throw ValidationError("give --dir (with --files) or --path") }
    }

    func run() throws {
        let names = path.map { [$0] } ?? (0..<files).map { "\(dir ?? "")/f\($0)" }
        let paths = names.map { strdup($0)! }
        defer { paths.forEach { free($0) } }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { buffer.deallocate() }
        // CPU time, not wall time: the probes' programs run in this task's context and are
        // charged to it, while time other processes take from us on a busy machine is not.
        let start = Self.cpuNanoseconds()
        for i in 0..<iterations {
            let fd = open(paths[i % paths.count], O_RDONLY)
            if fd < 0 { throw ValidationError("open \(String(cString: paths[i % paths.count])): errno \(errno)") }
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

/// What the loop over a file on a FUSE mount measured (`bench probes --fuse-file`).
struct FuseFigures {
    var file: String
    var iterations: Int
    /// Loop iterations per CPU-second of the loop's process, one per round, by mode.
    var opsPerSecond: [BenchProbesCommand.Mode: [Double]] = [:]
    /// Every program that ran during the loop, summed over the rounds, by mode (limit: the empty ones).
    var programs: [BenchProbesCommand.Mode: [String: ProgramRunTime]] = [:]

    func perRound(_ mode: BenchProbesCommand.Mode) -> [Double] {
        zip(opsPerSecond[mode] ?? [], opsPerSecond[.baseline] ?? []).map { $0 / $1 }
    }
    func ratio(_ mode: BenchProbesCommand.Mode) -> Double { perRound(mode).isEmpty ? 0 : median(perRound(mode)) }
    /// The fuse programs' kernel time per FUSE request: send and end together, per request sent.
    func fuseNsPerRequest(_ mode: BenchProbesCommand.Mode) -> Double {
        let fuse = (programs[mode] ?? [:]).filter { $0.key.contains("fuse_request") }
        let sends = fuse.first { $0.key.contains("fuse_request_send") }?.value.runCount ?? 0
        return sends == 0 ? 0 : Double(fuse.values.reduce(0) { $0 + $1.runTimeNs }) / Double(sends)
    }
    var requestsPerIteration: Double {
        let sends = (programs[.limit] ?? [:]).first { $0.key.contains("fuse_request_send") }?.value.runCount ?? 0
        let loops = (opsPerSecond[.limit]?.count ?? 0) * iterations
        return loops == 0 ? 0 : Double(sends) / Double(loops)
    }

    var json: JSON {
        func programFigures(_ mode: BenchProbesCommand.Mode) -> JSON {
            .object((programs[mode] ?? [:]).sorted { $0.key < $1.key }.map { name, run in
                (name, .object([("runs", .uint(run.runCount)), ("nsPerRun", .double(run.nanosecondsPerRun.rounded(toPlaces: 1)))]))
            })
        }
        func range(_ mode: BenchProbesCommand.Mode) -> JSON {
            let r = perRound(mode)
            return r.isEmpty ? .null : .array([.double(r.min()!.rounded(toPlaces: 4)), .double(r.max()!.rounded(toPlaces: 4))])
        }
        return .object([
            ("file", .string(file)),
            ("iterations", .int(Int64(iterations))),
            ("rounds", .int(Int64(opsPerSecond[.baseline]?.count ?? 0))),
            ("baselineOpsPerSecond", .double(median(opsPerSecond[.baseline] ?? [0]).rounded())),
            ("requestsPerIteration", .double(requestsPerIteration.rounded(toPlaces: 2))),
            ("ratio", .double(ratio(.traced).rounded(toPlaces: 4))),
            ("limitRatio", .double(ratio(.limit).rounded(toPlaces: 4))),
            ("ratioRange", range(.traced)),
            ("limitRatioRange", range(.limit)),
            ("fuseNsPerRequest", .double(fuseNsPerRequest(.traced).rounded(toPlaces: 1))),
            ("emptyFuseNsPerRequest", .double(fuseNsPerRequest(.limit).rounded(toPlaces: 1))),
            ("programs", programFigures(.traced)),
            ("emptyPrograms", programFigures(.limit)),
        ])
    }

    func printTable() {
        print("FUSE loop over \(file), \(iterations) iterations x \(opsPerSecond[.baseline]?.count ?? 0) rounds, "
              + String(format: "%.2f FUSE requests per iteration, %.0f ops per CPU-second untraced:", requestsPerIteration,
                       median(opsPerSecond[.baseline] ?? [0])))
        print(String(format: "  podstart tracing it as a starting container  ratio %.4f, empty programs %.4f (medians of per-round ratios)",
                     ratio(.traced), ratio(.limit)))
        print(String(format: "  fuse programs (send + end) per request: podstart %.1f ns, empty %.1f ns (bpf_stats; end runs in the daemon's context, outside the ratio)",
                     fuseNsPerRequest(.traced), fuseNsPerRequest(.limit)))
        for (name, run) in (programs[.traced] ?? [:]).sorted(by: { $0.key < $1.key }) {
            let floor = programs[.limit]?[name]?.nanosecondsPerRun ?? 0
            print("  " + name.padding(toLength: 52, withPad: " ", startingAt: 0)
                  + String(format: " %9llu runs %7.1f ns/run (empty: %.1f)", run.runCount, run.nanosecondsPerRun, floor))
        }
    }
}
