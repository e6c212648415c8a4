import ArgumentParser
import Foundation
import PodstartBenchKit
import KubeletSources
import PodstartCore

/// `podstart-bench analyze`: `podstart analyze` against `grep -c 'Observed pod startup duration'`
/// on the same generated journal, in the same run. Reports the throughput ratio and analyze's
/// peak RSS; it asserts nothing about time.
struct BenchAnalyzeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Time `podstart analyze` against `grep -c` on a generated kubelet+containerd journal."
    )

    @Option(name: .customLong("size-mib"), help: "Size of the generated journal in MiB.")
    var sizeMiB = 1024

    @Option(help: "Noise lines written after each sampled pod start.")
    var noisePerPod = 200

    @Option(help: "Folder with kubelet-journal-sample.log (../shared/reference by default).")
    var reference = "../shared/reference"

    @OptionGroup var format: FigureOutput

    @Flag(help: "Keep the generated journal (its path is printed).")
    var keep = false

    @Option(help: "Alternating runs of grep and analyze; the fastest of each is compared (the machine may be shared).")
    var repeats = 3

    func validate() throws {
        guard sizeMiB > 0 else { throw ValidationError("--size-mib must be positive") }
        guard noisePerPod >= 0 else { throw ValidationError("--noise-per-pod must be ≥ 0") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be ≥ 1") }
        let sample = reference + "/kubelet-journal-sample.log"
        guard FileManager.default.isReadableFile(atPath: sample) else {
            throw ValidationError("cannot read \(sample): pass --reference DIR with the recorded samples")
        }
    }

    func run() async throws {
        let sample = try String(contentsOfFile: reference + "/kubelet-journal-sample.log", encoding: .utf8)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("journal.log").path
        defer { if !keep { try? FileManager.default.removeItem(at: dir) } }

        let gen = BenchJournalGenerator(sampleJournal: sample, noiseLinesPerPod: noisePerPod)
        let t0 = monotonicSeconds()
        let pods = try gen.write(to: path, bytes: Int64(sizeMiB) << 20)
        let genSeconds = monotonicSeconds() - t0
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0

        // Warm the page cache so both tools read from memory, as they would on a second look.
        _ = try runChild("/bin/sh", ["-c", "cat \"$0\" > /dev/null", path], stdoutPath: "/dev/null")

        let grepExe = findOnPath("grep") ?? "/bin/grep"
        let outPath = dir.appendingPathComponent("analyze.out").path
        var grepRuns: [ChildResult] = [], analyzeRuns: [ChildResult] = []
        for _ in 0..<repeats {
            grepRuns.append(try runChild(grepExe, ["-c", "Observed pod startup duration", path], stdoutPath: dir.appendingPathComponent("grep.out").path))
            analyzeRuns.append(try runChild(try ProductBinary.path(), ["analyze", "--kubelet-log", path, "--output", "json"], stdoutPath: outPath))
        }
        let grep = grepRuns.min { $0.seconds < $1.seconds }!
        var analyze = analyzeRuns.min { $0.seconds < $1.seconds }!
        analyze.maxRSSKiB = analyzeRuns.map(\.maxRSSKiB).max()!
        analyze.status = analyzeRuns.map(\.status).max()!
        let grepCount = Int((try String(contentsOfFile: dir.appendingPathComponent("grep.out").path, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        let summaryLine = try lastLine(of: outPath)
        let summary = try? JSON.parse(summaryLine)
        let analyzedPods = summary?["pods"]?.int64Value ?? -1
        let startupLines = summary?["lines"]?["startupLines"]?.int64Value ?? -1

        let mib = Double(size) / 1_048_576
        let grepThroughput = mib / grep.seconds
        let analyzeThroughput = mib / analyze.seconds
        let ratio = analyzeThroughput / grepThroughput
        let rssMiB = Double(analyze.maxRSSKiB) / 1024
        if format.json {
            print("{\"bytes\":\(size),\"podStarts\":\(pods),\"generateSeconds\":\(genSeconds),"
                + "\"grepSeconds\":\(grep.seconds),\"grepCount\":\(grepCount),"
                + "\"analyzeSeconds\":\(analyze.seconds),\"analyzePods\":\(analyzedPods),\"analyzeStartupLines\":\(startupLines),"
                + "\"grepMiBPerSecond\":\(grepThroughput),\"analyzeMiBPerSecond\":\(analyzeThroughput),"
                + "\"throughputRatio\":\(ratio),\"repeats\":\(repeats),"
                + "\"grepCPUSeconds\":\(grep.cpuSeconds),\"analyzeCPUSeconds\":\(analyze.cpuSeconds),\"loadAverage\":\(jsonString(loadAverage())),"
                + "\"grepRunsSeconds\":[\(grepRuns.map { "\($0.seconds)" }.joined(separator: ","))],"
                + "\"analyzeRunsSeconds\":[\(analyzeRuns.map { "\($0.seconds)" }.joined(separator: ","))],\"analyzePeakRSSMiB\":\(rssMiB),\"analyzeExitStatus\":\(analyze.status)"
                + (keep ? ",\"journal\":\(jsonString(path))" : "") + "}")
        } else {
            print("journal:   \(String(format: "%.1f", mib)) MiB, \(pods) pod starts, generated in \(String(format: "%.1f", genSeconds)) s\(keep ? " (\(path))" : "")")
            print("grep -c:   \(String(format: "%.3f", grep.seconds)) s  \(String(format: "%8.1f", grepThroughput)) MiB/s  count \(grepCount)")
            print("analyze:   \(String(format: "%.3f", analyze.seconds)) s  \(String(format: "%8.1f", analyzeThroughput)) MiB/s  pods \(analyzedPods), startup lines \(startupLines), exit \(analyze.status)")
            print("ratio:     \(String(format: "%.2f", ratio))× grep's throughput (target ≥ 0.5×), fastest of \(repeats) alternating runs each")
            print("CPU time:  grep \(String(format: "%.3f", grep.cpuSeconds)) s, analyze \(String(format: "%.3f", analyze.cpuSeconds)) s (both threads), load average at start \(loadAverage())")
            print("all runs:  grep \(grepRuns.map { String(format: "%.3f", $0.seconds) }.joined(separator: " ")) s; analyze \(analyzeRuns.map { String(format: "%.3f", $0.seconds) }.joined(separator: " ")) s")
            print("peak RSS:  \(String(format: "%.1f", rssMiB)) MiB (analyze; target ≤ 64 MiB for 1 GiB)")
        }
        if analyze.status != 0 { throw ExitCode(analyze.status) }
    }

    struct ChildResult {
        var seconds: Double
        var maxRSSKiB: Int
        var status: Int32
        /// User + system CPU time: what the run cost, whatever else the machine was doing.
        var cpuSeconds: Double = 0
    }

    /// Runs a child with stdout to a file and returns its wall time and its own peak RSS (wait4).
    func runChild(_ exe: String, _ args: [String], stdoutPath: String) throws -> ChildResult {
        var fa: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let t0 = monotonicSeconds()
        let rc = posix_spawn(&pid, exe, &fa, nil, argv, environ)
        guard rc == 0 else { throw ValidationError("cannot run \(exe): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw ValidationError("wait4 failed: errno \(errno)") }
        }
        let seconds = monotonicSeconds() - t0
        let exit: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return ChildResult(seconds: seconds, maxRSSKiB: usage.ru_maxrss, status: exit, cpuSeconds: cpu)
    }

    func findOnPath(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let c = "\(dir)/\(name)"
            if access(c, X_OK) == 0 { return c }
        }
        return nil
    }

    func lastLine(of path: String) throws -> String {
        let fh = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        let end = try fh.seekToEnd()
        let start = end > 65536 ? end - 65536 : 0
        try fh.seek(toOffset: start)
        let text = String(decoding: fh.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// The 1-minute load average: the machine may be shared, and analyze uses two threads.
    func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").first.map(String.init) ?? "?"
    }

    func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
