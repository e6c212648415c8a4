import AccessProfiles
import ArgumentParser
import ContainerRuntime
import Foundation
import KernelProbes
import KubeletSources
import Logging
import PodstartAgent
import PodstartCore
import Synchronization
import TraceViews
import UnixSignals

/// `podstart trace --image REF`: starts one pod exactly as the kubelet does through CRI, waits for
/// the readiness check, and reports where the time went (phases) and what the container read
/// (accesses), from the CRI call timings and the kernel probes. `--pod NS/NAME` starts nothing:
/// it waits for a pod the kubelet starts and measures it the same way, with the pod's own record
/// (API server, else the kubelet's /pods) for creation, scheduling and readiness.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Trace one pod start (a pod the kubelet starts, or one started through CRI) and show its phases and file accesses.",
        discussion: """
            --pod NS/NAME waits for a pod that the kubelet starts on this node (create it with \
            kubectl after the trace began) and reads its record from the API server (in a cluster, \
            or --kubeconfig), else from the kubelet's /pods (--kubelet-url). \
            --image starts the pod as the kubelet starts it (RunPodSandbox, ImageStatus, PullImage if \
            missing, CreateContainer, StartContainer) and tears it down afterwards, on success, failure \
            and Ctrl-C; a kubelet removes pods it did not create, so --image refuses to run beside \
            one (--force overrides). Network readiness checks run inside the pod's own network \
            namespace, on 127.0.0.1. --cmd takes the rest of the command line, so put it last.
            """
    )

    @Option(help: "Image to start, as in a pod spec (e.g. 127.0.0.1:5000/app:1).")
    var image: String?

    @Option(help: "Start no pod: wait for the pod NAMESPACE/NAME that the kubelet starts on this node and trace its start.")
    var pod: String?

    /// With --pod: the API server (or the kubelet's /pods) that names the pod, and this node.
    @OptionGroup var kube: KubeAccessOptions

    /// With --pod: the pod's events, listed once when its start is recorded.
    @OptionGroup var events: PodEventsOptions

    @Flag(help: "With --image: start the pod even though a kubelet runs on this node (it will remove the pod as an orphan).")
    var force = false

    @Option(help: "Start no pod: render the starts in this trace JSON file (from --output json or the agent's /v1/pods) in --output.")
    var from: String?

    @Option(help: "Environment variable for the container, K=V (repeatable).")
    var env: [String] = []

    @Option(name: .customLong("ready-file"), help: "Ready when this file exists in the container.")
    var readyFile: String?

    @Option(name: .customLong("ready-exec"), help: "Ready when this command exits 0 in the container (ExecSync; split on spaces).")
    var readyExec: String?

    @Option(name: .customLong("ready-http"), help: "Ready when GET http://127.0.0.1:PORT/PATH in the pod answers 200-399 (PORT/PATH).")
    var readyHTTP: String?

    @Option(name: .customLong("ready-tcp"), help: "Ready when 127.0.0.1:PORT in the pod accepts a connection.")
    var readyTCP: UInt16?

    @Option(name: .customLong("probe-period"), help: "Time between readiness checks (e.g. 100ms, 1s).")
    var probePeriod: String = "100ms"

    @Option(help: "Give up when not ready after this long (e.g. 90s, 5m).")
    var timeout: String = "5m"

    @Flag(help: "Remove the image first, so the pull is real.")
    var cold = false

    @Option(help: "Start the pod this many times, one after the other (one JSON object per line).")
    var runs: Int = 1

    @Option(name: .customLong("cri-endpoint"), help: "CRI socket (default: $PODSTART_CRI_ENDPOINT or unix:///run/containerd/containerd.sock).")
    var criEndpoint: String?

    @Option(name: [.short, .long], help: "table, json, chrome (Trace Event JSON for Perfetto / chrome://tracing) or html (one self-contained page per start).")
    var output: TraceOutputFormat = .table

    @Option(help: "Write the output to this file instead of standard output.")
    var out: String?

    @Flag(name: .customLong("no-kernel"), help: "Do not load the kernel probes: phases from CRI timings only, no accesses.")
    var noKernel = false

    @Option(name: .customLong("cmd"), parsing: .remaining, help: "Command and arguments replacing the image's entrypoint (must come last).")
    var cmd: [String] = []

    func validate() throws {
        guard [image != nil, from != nil, pod != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give --pod NAMESPACE/NAME to trace a pod the kubelet starts, --image REF to start a pod, or --from FILE to render recorded starts")
        }
        if let pod {
            guard Self.podName(pod) != nil else { throw ValidationError("--pod wants NAMESPACE/NAME, e.g. default/web-0; got '\(pod)'") }
            let startFlags: [(Bool, String)] = [(readyFile != nil, "--ready-file"), (readyExec != nil, "--ready-exec"), (readyHTTP != nil, "--ready-http"),
                                                (readyTCP != nil, "--ready-tcp"), (cold, "--cold"), (runs != 1, "--runs"), (!env.isEmpty, "--env"),
                                                (!cmd.isEmpty, "--cmd"), (force, "--force")]
            if let flag = startFlags.first(where: { $0.0 }) {
                throw ValidationError("\(flag.1) starts a pod of podstart's own; with --pod the kubelet starts it from its spec")
            }
        } else if kube.anyGiven {
            throw ValidationError("--kubeconfig, --kubelet-url, --kubelet-token-file, --kubelet-ca-file, --kubelet-insecure-skip-tls-verify and --node-name go with --pod")
        } else if events.anyGiven {
            throw ValidationError("--no-pod-events and --pod-events-limit go with --pod")
        }
        let checks = [readyFile != nil, readyExec != nil, readyHTTP != nil, readyTCP != nil].filter { $0 }.count
        if checks > 1 { throw ValidationError("choose one of --ready-file, --ready-exec, --ready-http, --ready-tcp") }
        if let readyHTTP, ReadinessCheck.parseHTTP(readyHTTP) == nil {
            throw ValidationError("--ready-http wants PORT/PATH, e.g. 8080/healthz")
        }
        if let readyFile, !readyFile.hasPrefix("/") { throw ValidationError("--ready-file must be an absolute path") }
        if readyTCP == 0 { throw ValidationError("--ready-tcp wants a port 1-65535") }
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        for pair in env where !pair.contains("=") || pair.hasPrefix("=") {
            throw ValidationError("--env wants K=V, got '\(pair)'")
        }
        let period: Duration, limit: Duration
        do {
            period = try DurationText.parse(probePeriod, flag: "--probe-period", in: .milliseconds(1) ... .seconds(3600))
            limit = try DurationText.parse(timeout, flag: "--timeout", in: .milliseconds(1) ... .seconds(7 * 86_400))
        } catch {
            throw ValidationError(error.message)
        }
        if period > limit { throw ValidationError("--probe-period is longer than --timeout") }
        if let criEndpoint { _ = try CRIEndpoint(parsing: criEndpoint) }
        if output == .html, runs > 1, out == nil {
            throw ValidationError("--output html writes one page per start: with --runs, give --out FILE.html (pages go to FILE-1.html, FILE-2.html, …)")
        }
    }

    /// `NAMESPACE/NAME` → its parts (both non-empty, one slash).
    static func podName(_ text: String) -> (namespace: String, name: String)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    func run() async throws {
        if let from {
            try render(TraceFiles.load(paths: [from], skipMalformed: false))
            return
        }
        let endpoint = try criEndpoint.map { try CRIEndpoint(parsing: $0) } ?? CRIEndpoint.fromEnvironment()
        if let pod, let (namespace, name) = Self.podName(pod) {
            try await tracePod(namespace: namespace, name: name, endpoint: endpoint)
            return
        }
        // The kubelet removes pods it did not create (issue #15: 0.61 s after the sandbox appeared).
        if !force, let kubelet = KubeletPresence.detect() {
            throw TraceError.kubeletRuns(pid: kubelet.pid, commandLine: kubelet.commandLine)
        }
        let writer = try TraceWriter(output: output, out: out, many: runs > 1)
        let traces = TraceList()
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let interrupted = Interrupted()
        let runs = runs, noKernel = noKernel, options = startOptions()
        // a cold pull can take minutes: show its bytes as the kernel sees them arrive and unpack
        let terminal = TerminalProgress.standardError(forPeople: output == .table || output == .html)
        var progress: (@Sendable (PullProgress) -> Void)?
        if terminal.isEnabled {
            progress = { @Sendable (p: PullProgress) -> Void in
                let downloaded = TerminalProgress.byteText(p.downloadedBytes), unpacked = TerminalProgress.byteText(p.unpackedBytes)
                terminal.show("pulling: \(downloaded) downloaded, \(unpacked) unpacked")
            }
        }
        let report = progress
        let work = Task {
            for run in 0..<runs {
                let trace: PodStartTrace
                do {
                    // every run is a pod of its own, as the kubelet would start it (a new UID and name)
                    var fresh = options
                    fresh.pod = PodStartOptions.newPod()
                    trace = try await TraceRun(options: fresh, endpoint: endpoint, kernel: !noKernel, progress: report).trace()
                    terminal.clear()
                } catch {
                    terminal.clear()
                    if error is CancellationError || interrupted.value { throw TraceError.interrupted }
                    throw TraceError.failed(run: run + 1, of: runs, error: "\(error)")
                }
                traces.append(trace)
                try writer.write(trace, index: run)
            }
        }
        // Ctrl-C / SIGTERM cancel the start; PodStarter tears the pod down before returning.
        let watcher = interrupted.cancel(work, onFirstOf: signals)
        defer { watcher.cancel() }
        try await work.value
        writer.finish(traces.all)
    }

    /// `--pod`: waits for the kubelet's start of the pod and writes it like a traced start.
    func tracePod(namespace: String, name: String, endpoint: CRIEndpoint) async throws {
        let environment = ProcessInfo.processInfo.environment
        let credentials = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-kubeconfig-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: credentials) }
        let api = try AgentConfiguration.apiServerEndpoint(kubeconfig: kube.kubeconfig, environment: environment, credentialsDirectory: credentials)
        var kubelet: KubeEndpoint?
        if let kubeletURL = kube.kubeletURL {
            kubelet = try AgentConfiguration.kubeletEndpoint(url: kubeletURL, tokenFile: kube.kubeletTokenFile, caFile: kube.kubeletCAFile,
                                                             insecureSkipTLSVerify: kube.kubeletInsecureSkipTLSVerify)
        }
        guard api != nil || kubelet != nil else { throw PodTraceError.noPodSource }
        let node = kube.nodeName ?? environment["NODE_NAME"] ?? ProcessInfo.processInfo.hostName
        var logger = Logger(label: "podstart.trace") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        var run = PodTraceRun(namespace: namespace, name: name, nodeName: node, api: api, kubelet: kubelet, criEndpoint: endpoint,
                              kernel: !noKernel, timeout: DurationText.parse(timeout) ?? .seconds(300), logger: logger)
        run.podEvents = !events.noPodEvents
        run.podEventsLimit = events.podEventsLimit
        let limit = timeout
        run.onWatching = {
            FileHandle.standardError.write(Data("podstart: waiting for pod \(namespace)/\(name) on node \(node) (--timeout \(limit)): create it now\n".utf8))
        }
        let writer = try TraceWriter(output: output, out: out, many: false)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let interrupted = Interrupted()
        let work = Task { try await run.trace() }
        let watcher = interrupted.cancel(work, onFirstOf: signals)
        defer { watcher.cancel() }
        let trace: PodStartTrace
        do { trace = try await work.value } catch {
            if error is CancellationError || interrupted.value { throw PodTraceError.interrupted }
            throw error
        }
        try writer.write(trace, index: 0)
        writer.finish([trace])
        // a start that failed (deleted before Ready, not Ready within --timeout) is shown, and fails
        if trace.outcome != .ready {
            throw PodTraceError.failed(pod: "\(namespace)/\(name)",
                                       reason: (trace.failureReason ?? trace.outcome.rawValue) + (trace.events.map(PodTraceRun.warningSummary) ?? ""))
        }
    }

    /// Recorded starts in the chosen output, as a traced start would be (one HTML page per start).
    func render(_ traces: [PodStartTrace]) throws {
        guard !traces.isEmpty else { throw ValidationError("--from \(from ?? ""): no pod start in it") }
        if output == .html, traces.count > 1, out == nil {
            throw ValidationError("--from holds \(traces.count) starts: --output html needs --out FILE.html (pages go to FILE-1.html, …)")
        }
        let writer = try TraceWriter(output: output, out: out, many: traces.count > 1)
        for (n, trace) in traces.enumerated() { try writer.write(trace, index: n) }
        writer.finish(traces)
    }

    func startOptions() -> PodStartOptions {
        var options = PodStartOptions(image: image ?? "")
        options.command = cmd
        options.env = env.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return ContainerConfig.EnvVar(name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
        if let readyFile { options.readiness = .file(path: readyFile) }
        if let readyExec { options.readiness = .exec(command: readyExec.split(separator: " ").map(String.init)) }
        if let readyHTTP, let check = ReadinessCheck.parseHTTP(readyHTTP) { options.readiness = check }
        if let readyTCP { options.readiness = .tcp(port: readyTCP) }
        options.probePeriod = DurationText.parse(probePeriod) ?? .milliseconds(100)
        options.timeout = DurationText.parse(timeout) ?? .seconds(300)
        options.cold = cold
        return options
    }
}

enum TraceOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, chrome, html
}

/// Writes starts in the chosen output, whether they were just traced or read back: a JSON line or
/// a table each, an HTML page each (numbered files `FILE-1.html`, … when there are several), and
/// the Chrome trace of all of them at the end.
struct TraceWriter {
    let output: TraceOutputFormat
    let out: String?
    let many: Bool
    let sink: OutputSink

    init(output: TraceOutputFormat, out: String?, many: Bool) throws {
        self.output = output
        self.out = out
        self.many = many
        sink = try OutputSink(path: output == .html && many ? nil : out)
    }

    func write(_ trace: PodStartTrace, index: Int) throws {
        switch output {
        case .json: sink.write(trace.json().rendered() + "\n")
        case .table: sink.write(TraceTable.render(trace, run: many ? index + 1 : nil))
        case .html:
            if many, let out {
                try OutputSink(path: Self.numbered(out, index + 1)).write(TracePage.render(trace))
            } else {
                sink.write(TracePage.render(trace))
            }
        case .chrome: break
        }
    }

    func finish(_ traces: [PodStartTrace]) {
        if output == .chrome { sink.write(ChromeTrace.render(traces).rendered() + "\n") }
    }

    /// `page.html`, 2 → `page-2.html`.
    static func numbered(_ path: String, _ n: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let stem = url.deletingPathExtension().lastPathComponent
        return url.deletingLastPathComponent().appendingPathComponent(ext.isEmpty ? "\(stem)-\(n)" : "\(stem)-\(n).\(ext)").path
    }
}

/// Standard output or a file.
struct OutputSink: Sendable {
    let handle: FileHandle

    init(path: String?) throws {
        guard let path else { handle = .standardOutput; return }
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw ValidationError("cannot write --out \(path)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    func write(_ text: String) { handle.write(Data(text.utf8)) }
}

/// Whether SIGINT or SIGTERM arrived (a cancelled start is then an interruption, not a failure).
final class Interrupted: Sendable {
    private let flag = Mutex(false)
    var value: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }

    /// Cancels `work` at the first signal of `signals` (Ctrl-C, SIGTERM) and remembers that it
    /// did; cancel the returned task once the work is done.
    func cancel<Success: Sendable>(_ work: Task<Success, any Error>, onFirstOf signals: UnixSignalsSequence) -> Task<Void, Never> {
        Task {
            for await _ in signals {
                self.set()
                work.cancel()
                return
            }
        }
    }
}

/// The traces of the runs so far (for --output chrome, written at the end).
final class TraceList: Sendable {
    private let list = Mutex<[PodStartTrace]>([])
    var all: [PodStartTrace] { list.withLock { $0 } }
    func append(_ trace: PodStartTrace) { list.withLock { $0.append(trace) } }
}
