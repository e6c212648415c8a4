import Foundation
import HTTPTransport
import PodstartCore

/// The kubelet's own HTTP endpoints: `/metrics` and `/pods`.
public struct KubeletEndpoints: Sendable {
    public let client: HTTPTransport

    public init(_ endpoint: KubeEndpoint) throws { client = try HTTPTransport(endpoint) }

    /// Scrapes `/metrics` (text format or OpenMetrics) and extracts the pod-start metrics.
    public func scrapeMetrics() async throws -> (KubeletPodStartMetrics, PrometheusText.Exposition) {
        let body = try await client.get("/metrics", accept: "text/plain;version=0.0.4")
        let e = PrometheusText.parse(String(decoding: body, as: UTF8.self))
        return (KubeletPodStartMetrics(e), e)
    }

    /// The pods the kubelet runs (`/pods`, a PodList).
    public func pods() async throws -> [KubeAPI.Pod] {
        let body = try await client.get("/pods")
        do {
            return try JSONDecoder().decode(KubeAPI.PodList.self, from: Data(body)).items
        } catch {
            throw KubeHTTPError.decode(path: "/pods", reason: "\(error)")
        }
    }
}

/// Turns successive kubelet scrapes into per-interval pod-start figures.
public struct KubeletMetricsPoller: Sendable {
    public private(set) var previous: KubeletPodStartMetrics?
    public init() {}

    /// Adds a scrape; returns the figures for the interval since the previous one.
    public mutating func add(_ scrape: KubeletPodStartMetrics) -> KubeletMetricsInterval {
        defer { previous = scrape }
        return KubeletMetricsInterval(previous: previous, current: scrape)
    }
}

/// Pods of one node and their events from the API server: list, then watch from the list's
/// resourceVersion, relisting when the server says the version is gone (410).
public struct APIServerPodSource: Sendable {
    public let client: HTTPTransport
    public let nodeName: String

    public init(_ endpoint: KubeEndpoint, nodeName: String) throws {
        client = try HTTPTransport(endpoint)
        self.nodeName = nodeName
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    var podSelector: String { "fieldSelector=" + Self.escape("spec.nodeName=\(nodeName)") }

    public func listPods() async throws -> KubeAPI.PodList {
        let path = "/api/v1/pods?" + podSelector
        let body = try await client.get(path)
        do { return try JSONDecoder().decode(KubeAPI.PodList.self, from: Data(body)) } catch {
            throw KubeHTTPError.decode(path: path, reason: "\(error)")
        }
    }

    public func listEvents(namespace: String? = nil) async throws -> KubeAPI.EventList {
        let path = (namespace.map { "/api/v1/namespaces/\(Self.escape($0))/events" } ?? "/api/v1/events")
            + "?fieldSelector=" + Self.escape("involvedObject.kind=Pod")
        let body = try await client.get(path)
        do { return try JSONDecoder().decode(KubeAPI.EventList.self, from: Data(body)) } catch {
            throw KubeHTTPError.decode(path: path, reason: "\(error)")
        }
    }

    public enum WatchOutcome: Sendable, Equatable {
        /// The stream ended normally; watch again from this version.
        case ended(resourceVersion: String?)
        /// 410 Gone / Expired: list again.
        case expired
        /// The handler asked to stop.
        case stopped
    }

    /// Watches pods from `resourceVersion`; `onEvent` returns false to stop.
    public func watchPods(resourceVersion: String?, onEvent: (String, KubeAPI.Pod) async throws -> Bool) async throws -> WatchOutcome {
        var path = "/api/v1/pods?watch=true&allowWatchBookmarks=true&" + podSelector
        if let rv = resourceVersion { path += "&resourceVersion=" + Self.escape(rv) }
        return try await watch(path, onEvent: onEvent)
    }

    public func watchEvents(namespace: String? = nil, resourceVersion: String?, onEvent: (String, KubeAPI.Event) async throws -> Bool) async throws -> WatchOutcome {
        var path = (namespace.map { "/api/v1/namespaces/\(Self.escape($0))/events" } ?? "/api/v1/events")
            + "?watch=true&fieldSelector=" + Self.escape("involvedObject.kind=Pod")
        if let rv = resourceVersion { path += "&resourceVersion=" + Self.escape(rv) }
        return try await watch(path, onEvent: onEvent)
    }

    struct Envelope: Decodable { var type: String }
    struct MetaOnly: Decodable { var metadata: KubeAPI.ListMeta? }

    func watch<Object: Decodable & Sendable>(_ path: String, onEvent: (String, Object) async throws -> Bool) async throws -> WatchOutcome {
        var lastVersion: String?
        var outcome: WatchOutcome?
        let decoder = JSONDecoder()
        try await client.streamLines(path) { line in
            let data = Data(line)
            guard let env = try? decoder.decode(Envelope.self, from: data) else {
                throw KubeHTTPError.decode(path: path, reason: "watch line is not an event: \(String(decoding: line.prefix(120), as: UTF8.self))")
            }
            switch env.type {
            case "ERROR":
                let status = try? decoder.decode(KubeAPI.WatchEvent<KubeAPI.Status>.self, from: data).object
                if status?.code == 410 || status?.reason == "Expired" || status?.reason == "Gone" {
                    outcome = .expired
                    return false
                }
                throw KubeHTTPError.decode(path: path, reason: "watch error: \(status?.message ?? "unknown")")
            case "BOOKMARK":
                if let meta = try? decoder.decode(KubeAPI.WatchEvent<MetaOnly>.self, from: data) {
                    lastVersion = meta.object.metadata?.resourceVersion ?? lastVersion
                }
                return true
            default:
                let ev: KubeAPI.WatchEvent<Object>
                do { ev = try decoder.decode(KubeAPI.WatchEvent<Object>.self, from: data) } catch {
                    throw KubeHTTPError.decode(path: path, reason: "\(error)")
                }
                if let meta = try? decoder.decode(KubeAPI.WatchEvent<MetaOnly>.self, from: data) {
                    lastVersion = meta.object.metadata?.resourceVersion ?? lastVersion
                }
                if try await !onEvent(env.type, ev.object) { outcome = .stopped; return false }
                return true
            }
        }
        return outcome ?? .ended(resourceVersion: lastVersion)
    }
}

extension APIServerPodSource {
    /// Lists then watches the node's pods for as long as `onTimeline` returns true: watches
    /// again from the last resourceVersion when a stream ends, lists again when the server says
    /// the version expired, and retries after `retryDelay` on errors (each one reported to
    /// `onError`, which returns false to give up).
    public func run(tracker: inout PodTimelineTracker, retryDelay: Duration = .seconds(1),
                    onError: (Error) -> Bool = { _ in true },
                    onTimeline: (PodStatusTimeline) -> Bool) async throws {
        var version: String?
        while true {
            do {
                if version == nil {
                    let list = try await listPods()
                    for p in list.items where !onTimeline(tracker.update(pod: p)) { return }
                    version = list.metadata?.resourceVersion
                }
                var stop = false
                var t = tracker
                let outcome = try await watchPods(resourceVersion: version) { type, pod in
                    let tl = t.update(pod: pod, deleted: type == "DELETED")
                    if !onTimeline(tl) { stop = true; return false }
                    return true
                }
                tracker = t
                if stop { return }
                switch outcome {
                case .ended(let rv): version = rv ?? version
                case .expired: version = nil
                case .stopped: return
                }
            } catch {
                if !onError(error) { throw error }
                try await Task.sleep(for: retryDelay)
            }
        }
    }
}

/// Keeps the latest status and the kubelet events of every pod of the node, and yields a
/// `PodStatusTimeline` whenever a pod changes.
public struct PodTimelineTracker: Sendable {
    public private(set) var pods: [String: KubeAPI.Pod] = [:]
    public private(set) var events: [String: [KubeAPI.Event]] = [:]

    public init() {}

    /// Records a pod (from a list, `/pods` or a watch event); returns its timeline.
    @discardableResult
    public mutating func update(pod: KubeAPI.Pod, deleted: Bool = false) -> PodStatusTimeline {
        let key = pod.metadata.uid ?? ((pod.metadata.namespace ?? "") + "/" + pod.metadata.name)
        if deleted {
            pods[key] = nil
            events[key] = nil
        } else {
            pods[key] = pod
        }
        return PodStatusTimeline(pod: pod, events: events[key] ?? [])
    }

    /// Records an event; returns the updated timeline of its pod when that pod is known.
    @discardableResult
    public mutating func update(event: KubeAPI.Event) -> PodStatusTimeline? {
        guard let uid = event.involvedObject.uid ?? pods.first(where: {
            $0.value.metadata.name == event.involvedObject.name && $0.value.metadata.namespace == event.involvedObject.namespace
        })?.key else { return nil }
        var list = events[uid] ?? []
        if let i = list.firstIndex(where: { $0.metadata.name == event.metadata.name }) { list[i] = event } else { list.append(event) }
        events[uid] = list
        guard let pod = pods[uid] else { return nil }
        return PodStatusTimeline(pod: pod, events: list)
    }

    public func timeline(uid: String) -> PodStatusTimeline? {
        pods[uid].map { PodStatusTimeline(pod: $0, events: events[uid] ?? []) }
    }
}
