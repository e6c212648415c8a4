import Foundation
import HTTPTransport
import PodstartCore

/// One pod's events from the API server, in one list per start:
/// `GET /api/v1/namespaces/NS/events?fieldSelector=involvedObject.uid=UID&limit=N`, paged with
/// `continue`, each page's body capped. The API server answers the field selector from its
/// events (cheap: a namespace's events, filtered) — never a watch, never the cluster's events:
/// core/v1 events cannot be selected by node, so a per-node watch would make every agent read
/// every event of the cluster.
public struct PodEventLister: Sendable {
    public let client: HTTPTransport
    /// Events per page (`limit`).
    public var pageSize = 100
    /// Pages read at most; more on the server marks the events truncated.
    public var maxPages = 3
    /// Largest page body read; a larger one fails the listing (nothing more is read).
    public var maxPageBytes = 1 << 20
    /// Events kept (Warnings first, ``PodEvents/bounded(_:limit:moreOnServer:)``).
    public var limit = PodEvents.defaultLimit

    public init(_ endpoint: HTTPEndpoint) throws { client = try HTTPTransport(endpoint) }

    public static func path(namespace: String, uid: String, pageSize: Int, continueToken: String? = nil) -> String {
        var path = "/api/v1/namespaces/\(APIServerPodSource.escape(namespace))/events?fieldSelector="
            + APIServerPodSource.escape("involvedObject.uid=\(uid)") + "&limit=\(pageSize)"
        if let continueToken { path += "&continue=" + APIServerPodSource.escape(continueToken) }
        return path
    }

    /// Lists the events of the pod `uid` in `namespace`. Throws `HTTPTransportError` (status,
    /// timeout, connection, `bodyTooLarge`) or `KubeHTTPError.decode`.
    public func list(namespace: String, uid: String) async throws -> PodEvents {
        var events: [PodEvent] = []
        var token: String?
        var moreOnServer = false
        for page in 0..<max(1, maxPages) {
            let path = Self.path(namespace: namespace, uid: uid, pageSize: pageSize, continueToken: token)
            let response = try await client.send(.GET, path, headers: ["Accept": "application/json"], maxBodyBytes: maxPageBytes)
            guard (200..<300).contains(response.status) else {
                throw HTTPTransportError.status(code: response.status, url: response.url,
                                                body: String(decoding: response.body.prefix(1024), as: UTF8.self))
            }
            let list: PodEventList
            do { list = try PodEventList(bytes: response.body) } catch {
                throw KubeHTTPError.decode(path: path, reason: "\(error)")
            }
            // the selector chose them; an event of another object would be the server's mistake
            events += list.items.filter { $0.uid == nil || $0.uid == uid }.map(\.event)
            token = list.continueToken
            guard token != nil else { break }
            if page == max(1, maxPages) - 1 { moreOnServer = true }
        }
        return PodEvents.bounded(events, limit: limit, moreOnServer: moreOnServer)
    }
}

/// A core/v1 EventList read with podstart's JSON reader: each event as a ``PodEvent``, with the
/// UID of the object it is about, and the list's `continue` token.
public struct PodEventList: Sendable {
    public struct Item: Sendable {
        public var uid: String?
        public var event: PodEvent
    }
    public var items: [Item]
    /// `metadata.continue` when non-empty: the next page's token.
    public var continueToken: String?

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(bytes: [UInt8]) throws {
        let json = try JSON.parse(bytes)
        guard let items = json["items"]?.arrayValue ?? (json["items"]?.isNull == true ? [] : nil) else {
            throw Invalid(description: "not an EventList: no \"items\" array (kind \(json["kind"]?.stringValue ?? "none"))")
        }
        self.items = items.compactMap { object in
            Self.event(object).map { Item(uid: object["involvedObject"]?["uid"]?.stringValue, event: $0) }
        }
        continueToken = json["metadata"]?["continue"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// One core/v1 Event; nil without a reason. Events written through events.k8s.io/v1 (the
    /// scheduler's) read through core/v1 carry `eventTime`, `series` and `reportingComponent`
    /// instead of `firstTimestamp`/`lastTimestamp`/`count`/`source`: either is taken.
    public static func event(_ e: JSON) -> PodEvent? {
        guard let reason = e["reason"]?.stringValue, !reason.isEmpty else { return nil }
        func time(_ v: JSON?) -> Int64? { v?.stringValue.flatMap(Timestamp.parseRFC3339) }
        let eventTime = time(e["eventTime"])
        let first = time(e["firstTimestamp"]) ?? eventTime
        let last = time(e["lastTimestamp"]) ?? time(e["series"]?["lastObservedTime"]) ?? first
        let counts: [Int64?] = [e["count"]?.int64Value, e["series"]?["count"]?.int64Value]
        let count: Int64 = counts.compactMap { $0 }.first(where: { $0 > 0 }) ?? 1
        let component = [e["source"]?["component"]?.stringValue, e["reportingComponent"]?.stringValue,
                         e["reportingController"]?.stringValue].compactMap { $0 }.first { !$0.isEmpty } ?? ""
        var container: String?
        if let path = e["involvedObject"]?["fieldPath"]?.stringValue, let open = path.firstIndex(of: "{"), path.hasSuffix("}") {
            container = String(path[path.index(after: open)..<path.index(before: path.endIndex)])
        }
        let message = e["message"]?.stringValue ?? ""
        var event = PodEvent(type: e["type"]?.stringValue ?? "", reason: reason, message: message, count: count,
                             firstTimestamp: first, lastTimestamp: last, component: component, container: container)
        if reason == "Pulled", let pulled = PulledEvent.parse(message: message, container: container), let ns = pulled.pullNanoseconds {
            event.pullSeconds = Double(ns) / 1e9
            event.pullIncludingWaitingSeconds = pulled.includingWaitingNanoseconds.map { Double($0) / 1e9 }
        }
        return event
    }
}
