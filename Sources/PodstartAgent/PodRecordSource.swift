import Foundation
import HTTPTransport
import KubeletSources
import Logging
import PodstartCore
import Synchronization

/// The pods' own records: one list + watch of this node's pods at the API server
/// (`fieldSelector=spec.nodeName=…`), watching again from the last resourceVersion (bookmarks
/// included) when a stream ends, listing again only when the server says that version is gone
/// (410). Every record goes to the correlator with the instant it arrived (the sub-second time of
/// a status change the API stores in whole seconds). A deleted pod that never became ready is a
/// failed start.
///
/// When the API server cannot be reached and a kubelet endpoint is given, the kubelet's `/pods`
/// (authenticated) is polled instead, so the agent keeps its readiness source; the API server is
/// tried again after each `fallbackSpell`.
public struct PodRecordSource: AgentSource {
    public let name = "apiserver"
    public let api: HTTPEndpoint?
    public let kubelet: HTTPEndpoint?
    public let nodeName: String
    public let hub: AgentHub
    public var fallbackInterval: Duration = .seconds(2)
    public var fallbackSpell: Duration = .seconds(30)
    /// The node's wall clock, Unix nanoseconds (replaced in tests).
    public var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1e9) }
    let state = SharedState()

    /// What survives a restart of the source by its supervisor: where the watch was, and whether
    /// the first listing (whose ready pods started before the agent) was done.
    final class SharedState: Sendable {
        struct Values { var resourceVersion: String?; var listed = false; var requests = 0 }
        let values = Mutex(Values())
    }

    public init(api: HTTPEndpoint?, kubelet: HTTPEndpoint?, nodeName: String, hub: AgentHub) {
        self.api = api
        self.kubelet = kubelet
        self.nodeName = nodeName
        self.hub = hub
    }

    public var logMetadata: Logger.Metadata {
        ["apiserver": "\(api.map { "\($0.origin)" } ?? "none")", "kubelet": "\(kubelet.map { "\($0.origin)" } ?? "none")", "node": "\(nodeName)"]
    }
    public var outageMessage: String { "cannot read this node's pods from the API server or the kubelet; retrying" }
    public var recoveryMessage: String { "reading this node's pods again" }
    public var backoff: Backoff { Backoff(initial: .milliseconds(500), limit: .seconds(10)) }

    /// Requests made to the API server and the kubelet so far (lists, watches, polls).
    public var requests: Int { state.values.withLock { $0.requests } }

    public func run(_ context: SourceContext) async throws {
        while !Task.isCancelled {
            do {
                guard let api else { throw PodRecordError.noAPIServer }
                try await follow(api: try APIServerPodSource(api, nodeName: nodeName), context)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                guard let kubelet else { throw error }
                if api != nil { context.failed("the API server is unreachable; following the kubelet's /pods meanwhile", error) }
                try await pollKubelet(KubeletEndpoints(kubelet), context, for: api == nil ? nil : fallbackSpell)
            }
        }
    }

    /// List (when no version is known) and watch, for as long as the API server answers.
    func follow(api source: APIServerPodSource, _ context: SourceContext) async throws {
        while !Task.isCancelled {
            var version = state.values.withLock { $0.resourceVersion }
            if version == nil {
                count()
                let list = try await source.listPods()
                let at = now()
                let initial = state.values.withLock { v in defer { v.listed = true }; return !v.listed }
                await hub.ingest(list.items.compactMap { PodStatusReport(pod: $0, observedUnixNs: at, fromInitialList: initial) }.map(CorrelatorInput.podStatus))
                version = list.metadata?.resourceVersion
                state.values.withLock { $0.resourceVersion = version }
                context.up()
            }
            count()
            let outcome = try await source.watchPods(resourceVersion: version) { type, pod in
                await hub.ingest(inputs(type: type, pod: pod, at: now()))
                if let rv = pod.metadata.resourceVersion { state.values.withLock { $0.resourceVersion = rv } }
                context.up()
                return !Task.isCancelled
            }
            switch outcome {
            case .ended(let rv?): state.values.withLock { $0.resourceVersion = rv }  // a bookmark's version
            case .ended(nil), .stopped: break
            case .expired:
                context.logger.debug("resource version expired; listing again", metadata: ["source": "\(name)"])
                state.values.withLock { $0.resourceVersion = nil }
            }
            context.up()
        }
    }

    /// What one watch event says, as correlator inputs.
    func inputs(type: String, pod: KubeAPI.Pod, at: Int64) -> [CorrelatorInput] {
        guard let report = PodStatusReport(pod: pod, observedUnixNs: at) else { return [] }
        if type == "DELETED" {
            return report.readyUnixNs == nil ? [.failed(PodFailure(uid: report.uid, atUnixNs: at, reason: "pod deleted before it was ready"))] : []
        }
        return [.podStatus(report)]
    }

    /// Polls the kubelet's /pods every `fallbackInterval` for `spell` (forever when nil).
    func pollKubelet(_ kubelet: KubeletEndpoints, _ context: SourceContext, for spell: Duration?) async throws {
        let clock = ContinuousClock()
        let until = spell.map { clock.now + $0 }
        while !Task.isCancelled {
            if let until, clock.now >= until { return }
            count()
            do {
                let pods = try await kubelet.pods()
                let at = now()
                let initial = state.values.withLock { v in defer { v.listed = true }; return !v.listed }
                await hub.ingest(pods.filter { $0.spec?.nodeName == nil || $0.spec?.nodeName == nodeName }
                    .compactMap { PodStatusReport(pod: $0, observedUnixNs: at, fromInitialList: initial) }.map(CorrelatorInput.podStatus))
                context.up()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                context.failed("cannot read the kubelet's /pods; retrying", error)
            }
            try await Task.sleep(for: fallbackInterval)
        }
    }

    private func count() { state.values.withLock { $0.requests += 1 } }
}

public enum PodRecordError: Error, Sendable, CustomStringConvertible {
    case noAPIServer
    case noNodeName

    public var description: String {
        switch self {
        case .noAPIServer: "no API server configured (not in a cluster and no --kubeconfig)"
        case .noNodeName: "the node's name is needed to follow its pods: pass --node-name or set NODE_NAME (the downward API's spec.nodeName)"
        }
    }
}
