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

/// Pods of one node from the API server: list, then watch from the list's
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
