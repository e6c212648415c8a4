import ArgumentParser
import ContainerRuntime
import Exporter
import Foundation
import KernelProbes
import Logging
import PodstartCore
import StateStore
import Yams

/// `podstart agent`: the node agent (a DaemonSet). Joins the kernel probes, the CRI runtime and the
/// kubelet's and containerd's logs into one timeline per pod start, keeps them in the state store,
/// and serves /metrics and the /v1 API. Degrades instead of exiting: without BPF it runs on the
/// runtime and the logs (`podstart_probes_enabled 0`), a lost CRI socket is retried with backoff,
/// an unreadable log or unreachable kubelet is counted in `podstart_source_errors_total`.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent: record every pod start on this node, serve /metrics and /v1.",
        discussion: """
            Flags can also come from a YAML file (--config): a mapping from flag names without the \
            leading dashes to values (a list for repeatable flags, true for switches). Flags on the \
            command line win over the file. SIGTERM or SIGINT stop it gracefully: the probes are \
            detached and every finished start is in the state store before it exits.
            """
    )

    @OptionGroup var serve: ServeOptions

    @Option(help: "YAML file with flag values (e.g. /etc/podstart/config.yaml).")
    var config: String?

    @Option(name: .customLong("cri-endpoint"), help: "CRI socket (default: $PODSTART_CRI_ENDPOINT or unix:///run/containerd/containerd.sock).")
    var criEndpoint: String?

    @Option(name: .customLong("cri-poll-interval"), help: "How often to list pods and containers through CRI (e.g. 200ms).")
    var criPollInterval = "200ms"

    @Option(name: .customLong("cri-idle-poll-interval"), help: "How often to list through CRI while containerd's event stream flows and nothing changes (e.g. 2s).")
    var criIdlePollInterval = "2s"

    @Option(name: .customLong("containerd-log"), help: "containerd's log file: exact RunPodSandbox/PullImage/CreateContainer/StartContainer times.")
    var containerdLog: String?

    @Option(name: .customLong("kubelet-log"), help: "The kubelet's log file: its \"Observed pod startup duration\" lines (pull window, running).")
    var kubeletLog: String?

    @Option(name: .customLong("kubelet-metrics-url"), help: "The kubelet's /metrics (e.g. https://127.0.0.1:10250/metrics); failures count as source errors.")
    var kubeletMetricsURL: String?

    @Option(name: .customLong("kubelet-token-file"), help: "Bearer token for the kubelet (the service account token).")
    var kubeletTokenFile: String?

    @Option(name: .customLong("kubelet-ca-file"), help: "CA bundle for the kubelet's serving certificate.")
    var kubeletCAFile: String?

    @Option(name: .customLong("node-name"), help: "This node's name (default: $NODE_NAME, else the host name).")
    var nodeName: String?

    @Option(name: .customLong("startup-window"), help: "Trace a container's files for this long after its first exec when its readiness is not known (e.g. 10s).")
    var startupWindow = "10s"

    @Option(name: .customLong("start-timeout"), help: "A start not ready after this long is recorded as failed (e.g. 5m).")
    var startTimeout = "5m"

    @Option(name: .customLong("log-format"), help: "text or json (one object per line).")
    var logFormat: AgentLogFormat = .text

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("record-inputs"), help: .hidden)
    var recordInputs: String?

    @Flag(name: .customLong("no-containerd-events"), help: "Do not follow containerd's own event stream (for CRI runtimes other than containerd).")
    var noContainerdEvents = false

    @Flag(name: .customLong("no-kernel"), help: "Do not load the eBPF probes (phases from the runtime and logs only; no accesses).")
    var noKernel = false

    func validate() throws {
        if let criEndpoint { _ = try CRIEndpoint(parsing: criEndpoint) }
        for (flag, text) in [("--cri-poll-interval", criPollInterval), ("--cri-idle-poll-interval", criIdlePollInterval), ("--startup-window", startupWindow), ("--start-timeout", startTimeout)] {
            guard let d = DurationText.parse(text), d > .zero else { throw ValidationError("\(flag): '\(text)' is not a duration like 200ms, 10s or 5m") }
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    /// The command line with the config file's values in front (so the command line wins).
    static func arguments(config path: String, commandLine: [String]) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read --config \(path)")
        }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw ValidationError("--config \(path) is not valid YAML: \(error)") }
        guard let mapping = loaded as? [String: Any] else {
            if loaded == nil { return commandLine }
            throw ValidationError("--config \(path) must be a mapping of flag names to values")
        }
        var arguments: [String] = []
        for key in mapping.keys.sorted() {
            guard key != "config", key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw ValidationError("--config \(path): '\(key)' is not a flag name")
            }
            switch mapping[key] {
            case let flag as Bool: if flag { arguments.append("--\(key)") }
            case let list as [Any]: for value in list { arguments += ["--\(key)", "\(value)"] }
            case nil, is NSNull: break
            case let value?: arguments += ["--\(key)", "\(value)"]
            }
        }
        return arguments + commandLine
    }

    func run() async throws {
        if let config {
            // Re-parse with the file's values first; ArgumentParser keeps the last value given.
            let commandLine = Array(CommandLine.arguments.drop { $0 != "agent" }.dropFirst())
            var merged = try Self.parse(Self.arguments(config: config, commandLine: commandLine.filter { $0 != "--config" && $0 != config }))
            merged.config = nil
            try merged.validate()
            try await merged.run()
            return
        }
        let nodeName = nodeName ?? ProcessInfo.processInfo.environment["NODE_NAME"] ?? ProcessInfo.processInfo.hostName
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            var handler: LogHandler = format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            handler.metadata = ["node": "\(nodeName)"]
            return handler
        }
        let logger = Logger(label: "podstart.agent")
        try await Agent(options: self, nodeName: nodeName, logger: logger).run()
    }
}

enum AgentLogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// The running agent: sources → hub (correlator) → store, metrics and the HTTP API.
struct Agent {
    var options: AgentCommand
    var nodeName: String
    var logger: Logger

    func run() async throws {
        let serve = options.serve
        let endpoint = try options.criEndpoint.map { try CRIEndpoint(parsing: $0) } ?? CRIEndpoint.fromEnvironment()
        let metrics = MetricsRegistry(configuration: serve.metricsConfiguration(buildInfo: BuildInfo(version: PodstartVersion.string)))
        let sources = ["cri", "kernel", "state"] + (options.noContainerdEvents ? [] : ["containerd-events"]) + (options.containerdLog != nil ? ["containerd-log"] : [])
            + (options.kubeletLog != nil ? ["kubelet-log"] : []) + (options.kubeletMetricsURL != nil ? ["kubelet-metrics"] : [])
        metrics.register(probePrograms: ProbeProgram.allCases.map(\.rawValue), sources: sources)

        try FileManager.default.createDirectory(atPath: serve.stateDirectory, withIntermediateDirectories: true)
        let store = try TimelineStore(directory: serve.stateDirectory, configuration: serve.storeConfiguration, logger: logger)

        var configuration = Correlator.Configuration()
        configuration.startTimeoutNs = (DurationText.parse(options.startTimeout) ?? .seconds(300)).nanoseconds
        // Without the kubelet's log, nothing here knows readiness: a pod counts as ready when its
        // containers run (documented in the README).
        configuration.readyWhenRunning = options.kubeletLog == nil
        let hub = AgentHub(correlator: Correlator(configuration: configuration, clock: WallClock.measure()),
                           store: store, metrics: metrics, logger: logger)
        if let path = options.recordInputs { await hub.record(inputsTo: try InputRecorder(path: path, clock: WallClock.measure()).record) }

        var kernel: KernelSource?
        if options.noKernel {
            metrics.setProbesEnabled(false)
            logger.notice("kernel probes off (--no-kernel): phases from the runtime and logs, no accesses")
        } else {
            do {
                kernel = try KernelSource(startupWindow: DurationText.parse(options.startupWindow) ?? .seconds(10),
                                          hub: hub, metrics: metrics, logger: logger)
                metrics.setProbesEnabled(true)
            } catch {
                metrics.setProbesEnabled(false)
                metrics.recordSourceError(source: "kernel")
                logger.error("kernel probes unavailable; running on the runtime and logs only (podstart_probes_enabled 0)",
                             metadata: ["error": "\(error)"])
            }
        }

        let readiness = Readiness()
        let token = try serve.apiToken()
        let responder = APIResponder(configuration: .init(bearerToken: token), metrics: metrics, timelines: store,
                                     profiles: StoreProfiles(store: store), readiness: readiness, logger: logger)
        let app = try APIServer.application(responder: responder, listen: serve.listenAddress, tls: serve.tlsFiles, logger: logger) { port in
            logger.notice("serving", metadata: ["listen": "\(serve.listenAddress.host):\(port)"])
        }

        let interval = DurationText.parse(options.criPollInterval) ?? .milliseconds(200)
        var tasks: [Task<Void, Never>] = []
        if let kernel { tasks.append(Task { await kernel.run() }) }
        let pacer = PollPacer(idleInterval: max(interval, DurationText.parse(options.criIdlePollInterval) ?? .seconds(2)))
        let gate = StartupGate(sources.filter { ["cri", "containerd-events", "containerd-log", "kubelet-log"].contains($0) })
        tasks.append(Task { await CRIPollSource(endpoint: endpoint, interval: interval, pacer: pacer, gate: gate, hub: hub, metrics: metrics, logger: logger).run() })
        if !options.noContainerdEvents {
            tasks.append(Task { await ContainerdEventSource(endpoint: endpoint, pacer: pacer, gate: gate, hub: hub, metrics: metrics, logger: logger).run() })
        }
        if let path = options.containerdLog {
            let parser = ContainerdLogInputs(metrics: metrics)
            tasks.append(Task { await LogFileSource(name: "containerd-log", path: path, gate: gate, hub: hub, metrics: metrics, logger: logger,
                                                    parse: { parser.inputs(line: $0) }).run() })
        }
        if let path = options.kubeletLog {
            tasks.append(Task { await LogFileSource(name: "kubelet-log", path: path, gate: gate, hub: hub, metrics: metrics, logger: logger,
                                                    parse: { KubeletLogInputs.inputs(line: $0, metrics: metrics) }).run() })
        }
        if let url = options.kubeletMetricsURL {
            tasks.append(Task { await KubeletMetricsSource(url: url, tokenFile: options.kubeletTokenFile, caFile: options.kubeletCAFile,
                                                           metrics: metrics, logger: logger).run() })
        }
        // Time passes for the correlator even when no source speaks (timeouts, grace periods).
        tasks.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                await hub.ingest([.tick(nowUnixNs: WallClock.unixNow())])
            }
        })
        // Ready once every source has had its first look (or 10 s passed: a source whose input is
        // down is named, and the agent serves what the others give).
        let probesOn = kernel != nil
        tasks.append(Task {
            let unprimed = await gate.wait(timeout: .seconds(10))
            if !unprimed.isEmpty {
                logger.warning("sources not yet reading; serving without them until they are", metadata: ["sources": "\(unprimed.joined(separator: ","))"])
            }
            readiness.markReady()
            logger.notice("agent started", metadata: ["cri": "\(endpoint)", "stateDir": "\(serve.stateDirectory)",
                                                      "probes": "\(probesOn)"])
        })

        // Runs until SIGTERM/SIGINT, then stops accepting requests and returns.
        try await app.runService()

        readiness.markNotReady(reason: "shutting down")
        for task in tasks { task.cancel() }
        // A source stuck in a gRPC client's shutdown must not keep the state from being written
        // before the kubelet's grace period ends: wait a bounded time, then go on without it.
        let stuck = await Self.waitForEnd(of: tasks, limit: .seconds(5))
        if stuck > 0 { logger.warning("sources still stopping; shutting down without them", metadata: ["sources": "\(stuck)"]) }
        kernel?.close()
        await hub.flush()
        try? store.close()
        let recorded = await hub.recorded
        logger.notice("agent stopped", metadata: ["recorded": "\(recorded)"])
    }
}

extension Agent {
    /// Waits for `tasks` to end, at most `limit`; returns how many had not.
    static func waitForEnd(of tasks: [Task<Void, Never>], limit: Duration) async -> Int {
        let (ended, continuation) = AsyncStream<Void>.makeStream()
        for task in tasks { Task { await task.value; continuation.yield() } }
        let timer = Task { try? await Task.sleep(for: limit); continuation.finish() }
        defer { timer.cancel() }
        var count = 0
        for await _ in ended {
            count += 1
            if count == tasks.count { break }
        }
        return tasks.count - count
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// swift-log handler writing one JSON object per line to standard error:
/// `{"time":…,"level":…,"logger":…,"message":…, metadata…}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, JSON)] = [
            ("time", .string(Timestamp.rfc3339(unixNanoseconds: WallClock.unixNow()))),
            ("level", .string(event.level.rawValue)),
            ("logger", .string(label)),
            ("message", .string(event.message.description)),
        ]
        if let error = event.error { fields.append(("error", .string("\(error)"))) }
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, .string("\(merged[key]!)"))) }
        FileHandle.standardError.write(Data((JSON.object(fields).rendered() + "\n").utf8))
    }
}
