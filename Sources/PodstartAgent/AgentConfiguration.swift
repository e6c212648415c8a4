import ContainerRuntime
import Exporter
import Foundation
import HTTPTransport
import KubeletSources
import PodstartCore
import StateStore

/// How /v1 requests are authenticated and authorized (docs/agent.md, "Protecting /v1").
public enum APIAuthMode: String, Sendable, CaseIterable {
    /// TokenReview + SubjectAccessReview through the API server (`--api-auth delegated`).
    case delegated
    /// One shared bearer token from `--api-token-file` (`--api-auth token`).
    case token
    /// Anyone who reaches the listener (`--api-auth none`, explicit).
    case none
    /// No authentication configured: /v1 is answered to loopback clients only (the default).
    case loopbackOnly = "loopback-only"
}

/// What the agent runs with: `podstart agent`'s flags, parsed.
public struct AgentConfiguration: Sendable {
    public var criEndpoint: CRIEndpoint
    public var criPollInterval: Duration = .milliseconds(200)
    public var criIdlePollInterval: Duration = .seconds(2)
    public var containerdLog: String?
    public var kubeletLog: String?
    /// Follow the kubelet's and containerd's units in the journal (those whose log file is not
    /// given): `--journal`.
    public var journal = false
    /// The journal directory journalctl reads (`--journal-directory`, a mounted
    /// /var/log/journal); nil: /var/log/journal and /run/log/journal, whatever their machine id.
    public var journalDirectory: String?
    /// The units whose journal lines are the kubelet's (`--journal-kubelet-unit`; k3s:
    /// `k3s.service`, `k3s-agent.service`) and containerd's.
    public var journalKubeletUnits = ["kubelet.service"]
    public var journalContainerdUnits = ["containerd.service"]
    public var kubeletMetricsURL: String?
    public var kubeletTokenFile: String?
    public var kubeletCAFile: String?
    /// The kubelet's address (`https://<status.hostIP>:10250`): its /pods when the API server
    /// cannot be reached; its /metrics when `kubeletMetricsURL` is not given.
    public var kubeletURL: String?
    /// Accept the kubelet's serving certificate without verifying it (most kubelets' is
    /// self-signed): `--kubelet-insecure-skip-tls-verify`.
    public var kubeletInsecureSkipTLSVerify = false
    /// Outside a cluster: the kubeconfig whose current context reaches the API server.
    public var kubeconfig: String?
    /// In a cluster: where the service account's token and CA are mounted.
    public var serviceAccountDirectory = KubeEndpoint.serviceAccountDirectory
    /// The environment read for `KUBERNETES_SERVICE_HOST`/`_PORT` (replaced in tests).
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// This node's name, as `spec.nodeName` says it.
    public var nodeName: String?
    /// List each recorded start's pod events once at the API server (`--no-pod-events` turns it
    /// off); only with an API server.
    public var podEvents = true
    /// Events kept per start (`--pod-events-limit`, Warnings first).
    public var podEventsLimit = PodEvents.defaultLimit
    public var startupWindow: Duration = .seconds(10)
    public var startTimeout: Duration = .seconds(300)
    public var recordInputs: String?
    public var containerdEvents = true
    public var kernel = true
    public var stateDirectory: String
    public var store = TimelineStore.Configuration()
    public var metrics: MetricsRegistry.Configuration
    public var listen: ListenAddress
    public var tls: Exporter.TLSFiles?
    /// Who may read /v1 (`--api-auth`).
    public var apiAuth: APIAuthMode = .loopbackOnly
    /// `--api-token-file`, for `apiAuth == .token`; read again when it changes.
    public var apiTokenFile: String?
    /// `/v1` requests served at once; more are refused with 429.
    public var apiMaxConcurrentRequests = 4
    /// Largest /v1 list response (a list stops early and gives `nextOffset`).
    public var apiMaxResponseBytes = 8 << 20
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
            + (kubeletLog != nil ? ["kubelet-log"] : []) + (followsJournal ? ["journal"] : []) + (effectiveKubeletMetricsURL != nil ? ["kubelet-metrics"] : [])
            + (followsPodRecords ? ["apiserver"] : []) + (listsPodEvents ? [PodEventsAttacher.sourceName] : [])
    }

    /// Whether each start's pod events are listed: asked for, and an API server to ask.
    public var listsPodEvents: Bool {
        podEvents && (kubeconfig != nil || environment["KUBERNETES_SERVICE_HOST"] != nil)
    }

    /// Whether the journal is followed: asked for, and some unit is not read from a file.
    public var followsJournal: Bool {
        journal && ((kubeletLog == nil && !journalKubeletUnits.isEmpty) || (containerdLog == nil && !journalContainerdUnits.isEmpty))
    }

    /// Whether the kubelet's log lines are read (its file, or its unit in the journal).
    public var readsKubeletLog: Bool { kubeletLog != nil || (journal && !journalKubeletUnits.isEmpty) }

    /// The kubelet's /metrics: given, else under `kubeletURL`.
    public var effectiveKubeletMetricsURL: String? {
        kubeletMetricsURL ?? kubeletURL.flatMap { HTTPOrigin(url: $0).map { "\($0)/metrics" } }
    }

    /// Whether the pods' own records are read (an API server or a kubelet to ask).
    public var followsPodRecords: Bool {
        kubeconfig != nil || environment["KUBERNETES_SERVICE_HOST"] != nil || kubeletURL != nil
    }

    /// The API server: from `kubeconfig`, else in-cluster (service account, `KUBERNETES_SERVICE_*`),
    /// else none. Inline kubeconfig credentials are written under `stateDirectory`.
    public func apiServerEndpoint() throws -> HTTPEndpoint? {
        try Self.apiServerEndpoint(kubeconfig: kubeconfig, environment: environment, serviceAccountDirectory: serviceAccountDirectory,
                                   credentialsDirectory: stateDirectory + "/kubeconfig-credentials")
    }

    /// The API server as the agent and `podstart trace --pod` find it: from `kubeconfig`, else
    /// in-cluster, else nil. Inline kubeconfig credentials are written to `credentialsDirectory`.
    public static func apiServerEndpoint(kubeconfig: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                         serviceAccountDirectory: String = KubeEndpoint.serviceAccountDirectory,
                                         credentialsDirectory: String) throws -> HTTPEndpoint? {
        if let kubeconfig {
            return try Kubeconfig.load(path: kubeconfig).endpoint(materializeIn: credentialsDirectory)
        }
        guard environment["KUBERNETES_SERVICE_HOST"] != nil else { return nil }
        return try KubeEndpoint.inCluster(directory: serviceAccountDirectory, environment: environment)
    }

    /// The kubelet's HTTPS endpoint (`kubeletURL`; a metrics URL alone does not turn on the /pods
    /// fallback) with its credential: `kubeletTokenFile`, else the service account's token when
    /// one is mounted.
    public func kubeletEndpoint() throws -> HTTPEndpoint? {
        guard let url = kubeletURL else { return nil }
        return try Self.kubeletEndpoint(url: url, tokenFile: kubeletTokenFile, caFile: kubeletCAFile,
                                        insecureSkipTLSVerify: kubeletInsecureSkipTLSVerify, serviceAccountDirectory: serviceAccountDirectory)
    }

    /// The kubelet at `url` with its credential: `tokenFile`, else the service account's token
    /// when one is mounted (the agent's and `trace --pod`'s rule).
    public static func kubeletEndpoint(url: String, tokenFile: String?, caFile: String?, insecureSkipTLSVerify: Bool,
                                       serviceAccountDirectory: String = KubeEndpoint.serviceAccountDirectory) throws -> HTTPEndpoint {
        try HTTPEndpoint(url: url, tokenFile: credentialFile(tokenFile, serviceAccountDirectory: serviceAccountDirectory),
                         caFile: caFile, insecureSkipTLSVerify: insecureSkipTLSVerify)
    }

    /// The kubelet's bearer token file: given, else the service account's when mounted.
    public var kubeletCredentialFile: String? { Self.credentialFile(kubeletTokenFile, serviceAccountDirectory: serviceAccountDirectory) }

    static func credentialFile(_ given: String?, serviceAccountDirectory: String) -> String? {
        let saToken = serviceAccountDirectory + "/token"
        return given ?? (FileManager.default.fileExists(atPath: saToken) ? saToken : nil)
    }
}
