import ArgumentParser
import ContainerRuntime
import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore

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

    @OptionGroup var kube: KubeAccessOptions

    @OptionGroup var events: PodEventsOptions

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

    @Flag(name: .customLong("journal"), help: "Follow the kubelet's and containerd's units in the journal (journalctl -u kubelet -u containerd), those whose log file is not given; resumes after the cursor saved under --state-dir.")
    var journal = false

    @Option(name: .customLong("journal-directory"), help: "The journal directory to read with --journal (e.g. the node's /var/log/journal mounted in the pod); default: /var/log/journal and /run/log/journal, whatever their machine id (journalctl --root=/).")
    var journalDirectory: String?

    @Option(name: .customLong("journal-kubelet-unit"), help: "A unit whose journal lines are the kubelet's (repeatable; default kubelet.service; k3s: k3s.service and k3s-agent.service).")
    var journalKubeletUnits: [String] = []

    @Option(name: .customLong("journal-containerd-unit"), help: "A unit whose journal lines are containerd's (repeatable; default containerd.service).")
    var journalContainerdUnits: [String] = []

    @Option(name: .customLong("kubelet-metrics-url"), help: "The kubelet's /metrics (e.g. https://127.0.0.1:10250/metrics); failures count as source errors.")
    var kubeletMetricsURL: String?

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
        for (flag, text, range) in Self.durationFlags(self) {
            do { _ = try DurationText.parse(text, flag: flag, in: range) } catch { throw ValidationError(error.message) }
        }
        if !journal, journalDirectory != nil || !journalKubeletUnits.isEmpty || !journalContainerdUnits.isEmpty {
            throw ValidationError("--journal-directory and --journal-*-unit are read only with --journal: add --journal")
        }
        for unit in journalKubeletUnits + journalContainerdUnits where unit.isEmpty || unit.contains(where: { $0 == "/" || $0.isWhitespace }) {
            throw ValidationError("--journal-*-unit '\(unit)' is not a unit name (e.g. kubelet.service)")
        }
        if journal, kubeletLog != nil, containerdLog != nil {
            throw ValidationError("--journal with both --kubelet-log and --containerd-log leaves nothing to follow in the journal: drop one")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        if try serve.apiAuthMode() == .delegated, kube.kubeconfig == nil, ProcessInfo.processInfo.environment["KUBERNETES_SERVICE_HOST"] == nil {
            throw ValidationError("\(AgentConfigurationError.delegatedAuthNeedsAPIServer)")
        }
    }

    /// Each duration flag, its value and the range it must be in: long enough not to spin the
    /// CPU, short enough that a start is still followed while it matters.
    static func durationFlags(_ c: AgentCommand) -> [(String, String, ClosedRange<Duration>)] {
        [("--cri-poll-interval", c.criPollInterval, .milliseconds(10) ... .seconds(3600)),
         ("--cri-idle-poll-interval", c.criIdlePollInterval, .milliseconds(10) ... .seconds(3600)),
         ("--startup-window", c.startupWindow, .milliseconds(1) ... .seconds(3600)),
         ("--start-timeout", c.startTimeout, .seconds(1) ... .seconds(7 * 86_400))]
    }

    /// The command line with the config file's values in front (so the command line wins).
    static func arguments(config path: String, commandLine: [String]) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read --config \(path)")
        }
        do { return try AgentConfigFile.arguments(yaml: text, path: path) + commandLine } catch let error as AgentConfigFile.Invalid {
            throw ValidationError(error.description)
        }
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
        let nodeName = kube.node
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            var handler: LogHandler = format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            handler.metadata = ["node": "\(nodeName)"]
            return handler
        }
        let logger = Logger(label: "podstart.agent")
        try await Agent(configuration: agentConfiguration(), logger: logger).run()
    }

    /// The flags as the agent library takes them.
    func agentConfiguration() throws -> AgentConfiguration {
        let endpoint = try criEndpoint.map { try CRIEndpoint(parsing: $0) } ?? CRIEndpoint.fromEnvironment()
        var configuration = AgentConfiguration(
            criEndpoint: endpoint, stateDirectory: serve.stateDirectory,
            metrics: serve.metricsConfiguration(buildInfo: BuildInfo(version: PodstartVersion.string)), listen: serve.listenAddress)
        let interval = DurationText.parse(criPollInterval) ?? .milliseconds(200)
        configuration.criPollInterval = interval
        configuration.criIdlePollInterval = DurationText.parse(criIdlePollInterval) ?? .seconds(2)
        configuration.containerdLog = containerdLog
        configuration.kubeletLog = kubeletLog
        configuration.journal = journal
        configuration.journalDirectory = journalDirectory
        if !journalKubeletUnits.isEmpty { configuration.journalKubeletUnits = journalKubeletUnits }
        if !journalContainerdUnits.isEmpty { configuration.journalContainerdUnits = journalContainerdUnits }
        configuration.kubeletMetricsURL = kubeletMetricsURL
        configuration.kubeletTokenFile = kube.kubeletTokenFile
        configuration.kubeletCAFile = kube.kubeletCAFile
        configuration.kubeletURL = kube.kubeletURL
        configuration.kubeletInsecureSkipTLSVerify = kube.kubeletInsecureSkipTLSVerify
        configuration.kubeconfig = kube.kubeconfig
        configuration.nodeName = kube.node
        configuration.podEvents = !events.noPodEvents
        configuration.podEventsLimit = events.podEventsLimit
        configuration.startupWindow = DurationText.parse(startupWindow) ?? .seconds(10)
        configuration.startTimeout = DurationText.parse(startTimeout) ?? .seconds(300)
        configuration.recordInputs = recordInputs
        configuration.containerdEvents = !noContainerdEvents
        configuration.kernel = !noKernel
        configuration.store = serve.storeConfiguration
        configuration.tls = serve.tlsFiles
        configuration.apiAuth = try serve.apiAuthMode()
        configuration.apiTokenFile = serve.apiTokenFile
        configuration.apiMaxConcurrentRequests = serve.apiMaxConcurrentRequests
        configuration.apiMaxResponseBytes = serve.apiMaxResponseMiB << 20
        return configuration
    }
}

enum AgentLogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
