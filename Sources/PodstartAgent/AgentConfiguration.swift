import ContainerRuntime
import Exporter
import PodstartCore
import StateStore

/// What the agent runs with: `podstart agent`'s flags, parsed.
public struct AgentConfiguration: Sendable {
    public var criEndpoint: CRIEndpoint
    public var criPollInterval: Duration = .milliseconds(200)
    public var criIdlePollInterval: Duration = .seconds(2)
    public var containerdLog: String?
    public var kubeletLog: String?
    public var kubeletMetricsURL: String?
    public var kubeletTokenFile: String?
    public var kubeletCAFile: String?
    public var startupWindow: Duration = .seconds(10)
    public var startTimeout: Duration = .seconds(300)
    public var recordInputs: String?
    public var containerdEvents = true
    public var kernel = true
    public var stateDirectory: String
    public var store = TimelineStore.Configuration()
    public var metrics: MetricsRegistry.Configuration
    public var listen: ListenAddress
    public var tls: TLSFiles?
    public var apiToken: String?
    /// How long a source may take to stop at shutdown before the agent goes on without it.
    public var sourceStopLimit: Duration = .seconds(5)

    public init(criEndpoint: CRIEndpoint, stateDirectory: String, metrics: MetricsRegistry.Configuration, listen: ListenAddress) {
        self.criEndpoint = criEndpoint
        self.stateDirectory = stateDirectory
        self.metrics = metrics
        self.listen = listen
    }

    /// The `source` label values of `podstart_source_errors_total` this configuration runs.
    public var sourceNames: [String] {
        ["cri", "kernel", "runtime-layout", "state"] + (containerdEvents ? ["containerd-events"] : []) + (containerdLog != nil ? ["containerd-log"] : [])
            + (kubeletLog != nil ? ["kubelet-log"] : []) + (kubeletMetricsURL != nil ? ["kubelet-metrics"] : [])
    }
}
