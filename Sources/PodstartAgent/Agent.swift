import ContainerRuntime
import Exporter
import Foundation
import HTTPTransport
import KernelProbes
import KubeletSources
import Logging
import PodstartCore
import ServiceLifecycle
import StateStore

/// The running agent: sources → hub (correlator) → store, metrics and the HTTP API, as one
/// `ServiceGroup` that stops gracefully on SIGTERM or SIGINT. The services stop in the reverse of
/// their order here: the HTTP server; readiness (not ready); the kernel source (housekeeping
/// ended, probes detached, session closed); the runtime and log sources (each awaited at most
/// `sourceStopLimit`, then left behind and named in the log); the correlator's clock; last the
/// drain, which records the starts that finished, logs those dropped and closes the state store.
public struct Agent: Sendable {
    public var configuration: AgentConfiguration
    public var logger: Logger

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let options = configuration
        let logger = logger
        let metrics = MetricsRegistry(configuration: options.metrics)
        metrics.register(probePrograms: ProbeProgram.allCases.map(\.rawValue), sources: options.sourceNames)
        // connections to the runtime that closed under a call (the runtime still up): counted by
        // outcome, and as an error of the source whose call it was (issue #15: 18 closes, 0 errors)
        let closeObserver = CRIConnection.addObserver { close in
            metrics.recordCRIConnectionClose(retried: close.retried)
            metrics.recordSourceError(source: close.method.hasPrefix("containerd ") ? "containerd-events" : "cri")
        }
        defer { CRIConnection.removeObserver(closeObserver) }

        try FileManager.default.createDirectory(atPath: options.stateDirectory, withIntermediateDirectories: true)
        let store = try TimelineStore(directory: options.stateDirectory, configuration: options.store, logger: logger)

        var correlation = Correlator.Configuration()
        correlation.startTimeoutNs = options.startTimeout.nanoseconds
        // Readiness comes from the pods' own records (API server, else the kubelet's /pods); without
        // them a pod counts as ready when its containers run (docs/agent.md).
        let api = try options.apiServerEndpoint()
        let kubelet = try options.kubeletEndpoint()
        correlation.readyWhenRunning = api == nil && kubelet == nil
        if correlation.readyWhenRunning {
            logger.warning("""
                no readiness source: pod starts are recorded with readiness unknown (their end is when every container \
                runs, not the Ready condition; counted in podstart_pod_starts_readiness_unknown_total). Turn on the API \
                server (in a pod: the service account and KUBERNETES_SERVICE_HOST; outside: --kubeconfig) or the \
                kubelet's /pods (--kubelet-url); the kubelet's log or journal gives its SLI, not readiness
                """)
        }
        // The kubelet's startup line gives its own SLI instants; it comes at the kubelet's next pod
        // watch event (26 s after Ready on the real node): a start waits for it this long.
        if options.readsKubeletLog { correlation.kubeletLineWaitNs = 60_000_000_000 }
        let readiness = Readiness()
        let storeHealth = StoreHealth(readiness: readiness, metrics: metrics, logger: logger)
        let hub = AgentHub(correlator: Correlator(configuration: correlation, clock: WallClock.measure()),
                           store: store, metrics: metrics, logger: logger, health: storeHealth)
        if let path = options.recordInputs { await hub.record(inputsTo: try InputRecorder(path: path, clock: WallClock.measure()).record) }
        // each recorded start's events: one list at the API server, after the start is saved
        var events: PodEventsAttacher?
        if let api, options.podEvents {
            var lister = try PodEventLister(api)
            lister.limit = options.podEventsLimit
            let attacher = PodEventsAttacher(lister: lister, store: store, metrics: metrics, logger: logger)
            await hub.onRecorded { attacher.enqueue($0) }
            metrics.registerPodStartWarningEvents()
            events = attacher
        }

        var kernel: KernelSource?
        if !options.kernel {
            metrics.setProbesEnabled(false)
            logger.notice("kernel probes off (--no-kernel): phases from the runtime and logs, no accesses")
        } else {
            do {
                kernel = try KernelSource(startupWindow: options.startupWindow, hub: hub, metrics: metrics, logger: logger)
                metrics.setProbesEnabled(true)
            } catch {
                metrics.setProbesEnabled(false)
                metrics.recordSourceError(source: "kernel")
                logger.error("kernel probes unavailable; running on the runtime and logs only (podstart_probes_enabled 0)",
                             metadata: ["error": "\(error)"])
            }
        }

        let responder = APIResponder(configuration: try apiConfiguration(api: api, metrics: metrics), metrics: metrics, timelines: store,
                                     profiles: StoreProfiles(store: store), readiness: readiness, logger: logger)
        let app = try APIServer.application(responder: responder, listen: options.listen, tls: options.tls, logger: logger) { port in
            logger.notice("serving", metadata: ["listen": "\(options.listen.host):\(port)"])
        }

        let pacer = PollPacer(idleInterval: max(options.criPollInterval, options.criIdlePollInterval))
        let gate = StartupGate(options.sourceNames.filter { ["cri", "containerd-events", "containerd-log", "kubelet-log", "journal"].contains($0) })
        var sources: [any AgentSource] = [
            CRIPollSource(endpoint: options.criEndpoint, interval: options.criPollInterval, pacer: pacer, gate: gate, hub: hub),
        ]
        sources.append(RuntimeLayoutSource(endpoint: options.criEndpoint) { layout, visibility in
            Task { await hub.learnRuntimeRoot(layout.containerdRoot) }
            metrics.setRuntimeInfo(containerdRoot: layout.containerdRoot, containerdState: layout.containerdState,
                                   snapshotter: layout.snapshotter, mountPropagation: visibility.label)
        })
        if options.containerdEvents {
            sources.append(ContainerdEventSource(endpoint: options.criEndpoint, pacer: pacer, gate: gate, hub: hub))
        }
        if let path = options.containerdLog {
            let parser = ContainerdLogInputs()
            sources.append(LogFileSource(name: "containerd-log", path: path, gate: gate, hub: hub,
                                         parse: { parser.parse(line: $0, context: $1) }))
        }
        if let path = options.kubeletLog {
            sources.append(LogFileSource(name: "kubelet-log", path: path, gate: gate, hub: hub, parse: KubeletLogInputs.parse))
        }
        if options.followsJournal {
            let journal = JournalSource(kubeletUnits: options.kubeletLog == nil ? options.journalKubeletUnits : [],
                                        containerdUnits: options.containerdLog == nil ? options.journalContainerdUnits : [],
                                        directory: options.journalDirectory, stateDirectory: options.stateDirectory, gate: gate, hub: hub)
            sources.append(journal)
            logger.notice("following the journal", metadata: journal.logMetadata)
        }
        if let url = options.effectiveKubeletMetricsURL {
            sources.append(KubeletMetricsSource(url: url, tokenFile: options.kubeletCredentialFile, caFile: options.kubeletCAFile,
                insecureSkipTLSVerify: options.kubeletInsecureSkipTLSVerify, metrics: metrics))
        }
        if api != nil || kubelet != nil {
            guard let node = options.nodeName, !node.isEmpty else { throw PodRecordError.noNodeName }
            sources.append(PodRecordSource(api: api, kubelet: kubelet, nodeName: node, hub: hub))
            logger.notice("following this node's pods", metadata: ["apiserver": "\(api.map { "\($0.origin)" } ?? "none")",
                                                                 "kubelet": "\(kubelet.map { "\($0.origin)" } ?? "none")", "node": "\(node)"])
        }

        let probesOn = kernel != nil
        let announce = ReadinessService(gate: gate, readiness: readiness, logger: logger) {
            logger.notice("agent started", metadata: ["cri": "\(options.criEndpoint)", "stateDir": "\(options.stateDirectory)",
                                                      "probes": "\(probesOn)"])
        }
        // Registered in the order they start; a graceful shutdown stops them in reverse.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: AgentDrain(hub: hub, store: store, logger: logger, events: events)),
            .init(service: CorrelatorClock(hub: hub), successTerminationBehavior: .ignore),
            .init(service: StoreHealthService(store: store, health: storeHealth), successTerminationBehavior: .ignore),
            .init(service: SourceGroup(sources.map { SourceSupervisor($0, metrics: metrics, logger: logger, stopLimit: options.sourceStopLimit) }),
                  successTerminationBehavior: .ignore),
        ]
        if let kernel { services.append(.init(service: kernel, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)) }
        services.append(.init(service: announce, successTerminationBehavior: .ignore))
        services.append(.init(service: app, successTerminationBehavior: .gracefullyShutdownGroup))
        var group = ServiceGroupConfiguration(services: services, logger: logger)
        group.gracefulShutdownSignals = [.sigterm, .sigint]
        try await ServiceGroup(configuration: group).run()
        let recorded = await hub.recorded
        logger.notice("agent stopped", metadata: ["recorded": "\(recorded)"])
    }

    /// Who may read /v1, and how much it may take at once.
    func apiConfiguration(api: HTTPEndpoint?, metrics: MetricsRegistry) throws -> APIResponder.Configuration {
        let options = configuration
        let logger = logger
        let authorizer: (any APIAuthorizer)?
        switch options.apiAuth {
        case .delegated:
            guard let api else { throw AgentConfigurationError.delegatedAuthNeedsAPIServer }
            authorizer = DelegatedAuthorizer(transport: try HTTPTransport(api), logger: logger)
            logger.notice("/v1 is authorized by the API server (TokenReview, SubjectAccessReview)", metadata: ["apiserver": "\(api.origin)"])
        case .token:
            guard let path = options.apiTokenFile else { throw AgentConfigurationError.tokenAuthNeedsTokenFile }
            authorizer = try StaticTokenAuthorizer(tokenFile: path, onReloadError: { error in
                logger.error("the new API token file cannot be used; the previous token stays valid", metadata: ["error": "\(error)"])
                metrics.recordAPIReloadError(file: "token")
            })
        case .none:
            authorizer = nil
            if !options.listen.isLoopback {
                logger.warning("/v1 is served without authentication to anyone who reaches the listener (--api-auth none)",
                               metadata: ["listen": "\(options.listen)"])
            }
        case .loopbackOnly:
            authorizer = nil
            if !options.listen.isLoopback {
                logger.notice("/v1 answers loopback clients only: no API authentication is configured (--api-auth delegated or token to serve it beyond this host)")
            }
        }
        return APIResponder.Configuration(authorizer: authorizer, v1LoopbackOnly: options.apiAuth == .loopbackOnly,
                                          maxResponseBytes: options.apiMaxResponseBytes, maxConcurrentRequests: options.apiMaxConcurrentRequests)
    }
}

public enum AgentConfigurationError: Error, CustomStringConvertible, Sendable {
    case delegatedAuthNeedsAPIServer
    case tokenAuthNeedsTokenFile

    public var description: String {
        switch self {
        case .delegatedAuthNeedsAPIServer:
            "--api-auth delegated asks the API server to review each /v1 request's token: run the agent in a cluster (service account) or give --kubeconfig"
        case .tokenAuthNeedsTokenFile:
            "--api-auth token needs --api-token-file FILE"
        }
    }
}
