import ArgumentParser
import ContainerRuntime
import Foundation
import KernelProbes
import PodstartCore
import TraceViews

/// `podstart-bench agent`: what the running agent costs the node. (a) Idle CPU: the agent's own
/// CPU time (/proc/PID/stat) over a quiet period on a node with no pods (the baseline) and then
/// with N running pods, as % of one core, and its resident memory. (b) Workloads with the agent
/// running vs stopped, interleaved round by round: the open+read loop of `bench probes`
/// (`bench-loop`) as a container that is already running, and as one that is starting, the
/// latter against empty programs on the same hooks.
struct BenchAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Agent CPU while idle with N running pods, workload throughput with the agent running vs stopped, or (--churn) its CPU, RSS and API requests under pod churn.",
        discussion: """
            Needs root, BPF and a CRI runtime with the test images (scripts/localenv.sh up, then \
            eval "$(scripts/localenv.sh env)"). Starts `podstart agent` itself (the podstart built next to podstart-bench, or $PODSTART_BINARY). Targets: \
            idle CPU <= 1% of a core with 100 running containers; a running open-heavy container keeps \
            >= 0.98 of its throughput (steadyRatio); a starting one keeps >= 0.95 of what empty programs \
            on the same hooks allow (startingRatio >= 0.95 x limitRatio).
            """
    )

    @Option(help: "Running pods (one container each) for the idle measurement.")
    var containers = 100

    @Option(name: .customLong("idle-seconds"), help: "How long to measure the idle agent's CPU.")
    var idleSeconds = 30

    @Option(help: "Rounds of the workload comparison (modes alternate within each round).")
    var rounds = 5

    @Option(help: "Loop iterations per workload run.")
    var iterations = 200_000

    @Option(help: "Image of the idle pods (default: $PODSTART_TEST_IMAGES/small-files:latest, which sleeps).")
    var image: String?

    @Flag(name: .customLong("skip-idle"), help: "Only the workload comparison.")
    var skipIdle = false

    @Flag(name: .customLong("skip-workload"), help: "Only the idle measurement.")
    var skipWorkload = false

    @Flag(help: "Only the churn measurement: pods started and deleted at --churn-rate with the agent following a test API server.")
    var churn = false

    @Option(name: .customLong("churn-pods"), help: "Pods running on the node during the churn.")
    var churnPods = 110

    @Option(name: .customLong("churn-rate"), help: "Pods started (and as many deleted) per second during the churn.")
    var churnRate = 5.0

    @Option(name: .customLong("churn-seconds"), help: "How long the churn is measured, after the node is full.")
    var churnSeconds = 60

    @Option(name: .customLong("churn-max-starting"), help: "Pod starts in flight at most; a tick past that is counted as missed.")
    var churnMaxStarting = 25

    @OptionGroup var format: FigureOutput

    func validate() throws {
        guard containers >= 0, idleSeconds >= 1, rounds >= 1, iterations >= 1000 else {
            throw ValidationError("--containers >= 0, --idle-seconds and --rounds >= 1, --iterations >= 1000")
        }
        guard churnPods >= 1, churnPods <= 10_000, churnRate > 0, churnRate <= 1000, churnSeconds >= 1, churnSeconds <= 86_400,
              churnMaxStarting >= 1, churnMaxStarting <= 1000 else {
            throw ValidationError("--churn-pods 1…10000, --churn-rate above 0 and at most 1000, --churn-seconds 1…86400, --churn-max-starting 1…1000")
        }
        if (!skipIdle || churn), image == nil, ProcessInfo.processInfo.environment["PODSTART_TEST_IMAGES"] == nil {
            throw ValidationError("pass --image, or set PODSTART_TEST_IMAGES (eval \"$(scripts/localenv.sh env)\")")
        }
        guard getuid() == 0 else { throw ValidationError("bench agent needs root (the agent loads eBPF programs, pods need containerd)") }
    }

    func run() async throws {
        let workdir = FileManager.default.temporaryDirectory.appending(path: "podstart-bench-agent-\(getpid())").path
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workdir) }
        var figures: [(String, JSON)] = []
        var lines: [String] = []

        if churn {
            (figures, lines) = try await measureChurn(workdir: workdir)
        }
        if !skipIdle, !churn {
            let quiet = try await idleAgent(workdir: workdir, label: "no pods")
            let ref = image ?? ProcessInfo.processInfo.environment["PODSTART_TEST_IMAGES"]! + "/small-files:latest"
            let pods = RunningPods(endpoint: try CRIEndpoint.fromEnvironment(), image: ref)
            do {
                try await pods.start(count: containers)
                let busy = try await idleAgent(workdir: workdir, label: "\(containers) pods")
                // the same pods listed every 200 ms whatever happens (the agent before its listing
                // followed containerd's events): what the pacing saves
                let fast = try await idleAgent(workdir: workdir, label: "\(containers) pods fast", extra: ["--cri-idle-poll-interval", "200ms"])
                await pods.stop()
                figures += [
                    ("idleCpuPercentNoPods", .double(quiet.cpuPercent.rounded(toPlaces: 3))),
                    ("idleCpuPercent", .double(busy.cpuPercent.rounded(toPlaces: 3))),
                    ("idleCpuPercentListingEvery200ms", .double(fast.cpuPercent.rounded(toPlaces: 3))),
                    ("idleRssMiBNoPods", .double((Double(quiet.rssKiB) / 1024).rounded(toPlaces: 1))),
                    ("idleRssMiB", .double((Double(busy.rssKiB) / 1024).rounded(toPlaces: 1))),
                    ("runningContainers", .int(Int64(containers))),
                    ("idleSeconds", .int(Int64(idleSeconds))),
                ]
                lines.append(String(format: "idle agent over %d s: %.3f%% of a core with no pods (baseline), %.3f%% with %d running pods (target <= 1%%)",
                                    idleSeconds, quiet.cpuPercent, busy.cpuPercent, containers))
                lines.append(String(format: "  %.3f%% with the same pods listed every 200 ms (--cri-idle-poll-interval 200ms): %.2f x the paced agent",
                                    fast.cpuPercent, fast.cpuPercent / max(busy.cpuPercent, 0.001)))
                lines.append(String(format: "  resident memory %.1f MiB with no pods, %.1f MiB with %d pods",
                                    Double(quiet.rssKiB) / 1024, Double(busy.rssKiB) / 1024, containers))
            } catch {
                await pods.stop()
                throw error
            }
        }

        if !skipWorkload, !churn {
            let w = try await workload(workdir: workdir)
            figures += [
                ("steadyRatio", .double(w.steady.rounded(toPlaces: 4))),
                ("startingRatio", .double(w.starting.rounded(toPlaces: 4))),
                ("limitRatio", .double(w.limit.rounded(toPlaces: 4))),
                ("startingToLimit", .double((w.starting / w.limit).rounded(toPlaces: 4))),
                ("baselineOpsPerSecond", .double(w.base.rounded())),
                ("rounds", .int(Int64(rounds))),
                ("iterations", .int(Int64(iterations))),
            ]
            lines.append("open+read loop, \(iterations) iterations x \(rounds) rounds, medians vs the agent stopped (\(Int(w.base)) ops per CPU-second):")
            lines.append(String(format: "  agent running, container already running  steadyRatio   %.4f  (target >= 0.98)", w.steady))
            lines.append(String(format: "  agent running, container starting         startingRatio %.4f  (target >= %.4f = 0.95 x limit)", w.starting, 0.95 * w.limit))
            lines.append(String(format: "  agent stopped, empty programs on its hooks limitRatio    %.4f", w.limit))
        }
        if format.json {
            print(JSON.object(figures).rendered())
        } else {
            lines.forEach { print($0) }
        }
    }

    struct Idle {
        var cpuPercent: Double
        var rssKiB: Int
    }

    /// Starts the agent, lets it settle (first CRI listing, probes loaded), then measures its CPU.
    func idleAgent(workdir: String, label: String, extra: [String] = []) async throws -> Idle {
        let agent = try AgentProcess(workdir: workdir, name: "idle-\(label.replacingOccurrences(of: " ", with: "-"))", extra: extra)
        defer { agent.stop() }
        try await agent.waitStarted()
        try await Task.sleep(for: .seconds(5))
        let cpu0 = try agent.cpuNanoseconds(), t0 = ContinuousClock.now
        try await Task.sleep(for: .seconds(idleSeconds))
        let cpu1 = try agent.cpuNanoseconds(), elapsed = ContinuousClock.now - t0
        let wall = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        let rss = ResidentMemory.read(pid: String(agent.pid)).rssKiB
        return Idle(cpuPercent: Double(cpu1 - cpu0) / wall * 100, rssKiB: rss)
    }

    enum Mode: String, CaseIterable { case baseline, limit, starting, steady }

    func workload(workdir: String) async throws -> (base: Double, limit: Double, starting: Double, steady: Double) {
        let dir = "\(workdir)/loop"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let content = Data(repeating: 0x61, count: 4096)
        for i in 0..<64 { try content.write(to: URL(filePath: "\(dir)/f\(i)")) }
        let empty = try EmptyProbes()
        defer { empty.detach() }
        // The agent opens a start window at the first exec in a new mount namespace and keeps it
        // open for --startup-window (10 s): a loop that waits that long first runs in a container
        // whose start is over; one that waits 0.3 s (the agent attaching) runs in a starting one.
        let window = 10.0
        var opsPerSecond: [Mode: [Double]] = [:]
        let progress = TerminalProgress.standardError(forPeople: !format.json)
        defer { progress.clear() }
        for round in 0..<rounds {
            let modes = Mode.allCases.indices.map { Mode.allCases[($0 + round) % Mode.allCases.count] }
            for mode in modes {
                progress.show("workload round \(round + 1) of \(rounds): \(mode.rawValue)")
                var agent: AgentProcess?
                switch mode {
                case .baseline: break
                case .limit: try empty.attach(Set(ProbeFamily.allCases))
                case .starting, .steady:
                    agent = try AgentProcess(workdir: workdir, name: "workload-\(round)-\(mode.rawValue)")
                    try await agent!.waitStarted()
                }
                defer {
                    empty.detach()
                    agent?.stop()
                }
                let delay = mode == .steady ? window + 1 : 0.3
                let ns = try BenchLoopRunner.run(dir: dir, files: 64, iterations: iterations, delaySeconds: delay)
                opsPerSecond[mode, default: []].append(Double(iterations) / (Double(ns) / 1e9))
            }
        }
        let base = median(opsPerSecond[.baseline]!)
        return (base, median(opsPerSecond[.limit]!) / base, median(opsPerSecond[.starting]!) / base, median(opsPerSecond[.steady]!) / base)
    }
}

/// Runs `podstart-bench bench-loop` (the loop `bench probes` measures) in a fresh mount namespace, after
/// `delaySeconds` spent in that namespace first (so a tracer sees the "container" start before the
/// loop runs). Returns the loop's CPU nanoseconds.
enum BenchLoopRunner {
    static func run(dir: String, files: Int, iterations: Int, delaySeconds: Double) throws -> UInt64 {
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--fork", "/bin/sh", "-c", "sleep \(delaySeconds); exec \"$0\" bench-loop --dir \"$1\" --files \"$2\" --iterations \"$3\"",
                             exe, dir, String(files), String(iterations)]
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

/// `podstart agent` as a child process of the benchmark: own state directory, loopback listener,
/// log in a file; started when its log says so; stopped with SIGTERM.
final class AgentProcess {
    let process = Process()
    let log: String
    var pid: Int32 { process.processIdentifier }

    init(workdir: String, name: String, listen: String = "127.0.0.1:0", extra: [String] = []) throws {
        let exe = try ProductBinary.path()
        log = "\(workdir)/\(name).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(filePath: exe)
        process.arguments = ["agent", "--state-dir", "\(workdir)/\(name)-state", "--listen", listen] + extra
        process.standardError = try FileHandle(forWritingTo: URL(filePath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for "agent started" in its log (probes loaded, sources running).
    func waitStarted(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("agent started") {
                if text.contains("kernel probes unavailable") {
                    throw ValidationError("the agent runs without its kernel probes (see \(log)): the benchmark needs root and BPF")
                }
                return
            }
            guard process.isRunning else { throw ValidationError("the agent exited (\(process.terminationStatus)) before it started: \(text.suffix(2000))") }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the agent did not start within \(timeout) (log: \(log))")
    }

    /// User + system CPU time of the agent so far, from /proc/PID/stat.
    func cpuNanoseconds() throws -> UInt64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { throw ValidationError("cannot read /proc/\(pid)/stat") }
        // fields after "comm)": state is field 3, utime 14, stime 15
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = UInt64(fields[11]), let stime = UInt64(fields[12]) else {
            throw ValidationError("unexpected /proc/\(pid)/stat")
        }
        return (utime + stime) * 1_000_000_000 / UInt64(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        process.waitUntilExit()
    }
}

/// N pods that keep running (one container each, started through CRI as the kubelet does) until
/// `stop()`, which tears them all down.
actor RunningPods {
    let endpoint: CRIEndpoint
    let image: String
    private var tasks: [Task<Void, Never>] = []
    private var ready = 0
    private var failures: [String] = []
    private var released = false

    init(endpoint: CRIEndpoint, image: String) {
        self.endpoint = endpoint
        self.image = image
    }

    private func markReady() { ready += 1 }
    private func fail(_ error: any Error) { if !released { failures.append("\(error)") } }
    private var isReleased: Bool { released }

    func start(count: Int) async throws {
        let starter = PodStarter(endpoint: endpoint)
        for i in 0..<count {
            var options = PodStartOptions(image: image, pod: PodStartOptions.newPod(name: "bench-idle-\(i)"))
            options.readiness = .running
            let pod = options
            tasks.append(Task.detached { [self] in await Self.runPod(starter, pod, self) })
            // a few at a time: the runtime starts them, not a thundering herd
            if i % 5 == 4 { while ready <= i - 5 { try await waitOrFail() } }
        }
        while ready < count { try await waitOrFail() }
    }

    private nonisolated static func runPod(_ starter: PodStarter, _ options: PodStartOptions, _ pods: RunningPods) async {
        do {
            _ = try await starter.run(options, whileReady: { _ in
                await pods.markReady()
                while await !pods.isReleased { try await Task.sleep(for: .seconds(1)) }
            })
        } catch {
            await pods.fail(error)
        }
    }

    private func waitOrFail() async throws {
        if let first = failures.first { throw ValidationError("a pod did not start (\(failures.count) failed): \(first)") }
        try await Task.sleep(for: .milliseconds(200))
    }

    func stop() async {
        released = true
        for task in tasks { await task.value }
        tasks = []
    }
}
