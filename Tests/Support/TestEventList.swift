import Foundation

/// core/v1 Events as an API server answers a namespace's event list for one pod,
/// `GET /api/v1/namespaces/NS/events?fieldSelector=involvedObject.uid=UID`: the field selector
/// applied, `limit` honoured with an opaque `continue` token. Used by the events tests' server
/// and by ``TestPodAPIServer``.
public struct TestEventList: Sendable {
    public struct Event: Sendable {
        public var namespace: String
        public var uid: String
        /// The event's JSON, as the list carries it.
        public var text: String
    }

    public private(set) var events: [Event] = []

    public init() {}

    public init(_ raw: [[String: Any]]) throws { try add(raw) }

    /// Adds events (core/v1 Event objects), each filed under its `involvedObject`.
    public mutating func add(_ raw: [[String: Any]]) throws {
        for event in raw {
            let object = event["involvedObject"] as? [String: Any] ?? [:]
            let text = String(decoding: try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]), as: UTF8.self)
            events.append(Event(namespace: object["namespace"] as? String ?? "", uid: object["uid"] as? String ?? "", text: text))
        }
    }

    /// The answer to `uri` when it is a namespace's event list; nil for any other path.
    public func answer(_ uri: String) -> TestRoute? {
        guard let url = URLComponents(string: uri), url.path.hasPrefix("/api/v1/namespaces/"), url.path.hasSuffix("/events") else {
            return nil
        }
        let namespace = url.path.dropFirst("/api/v1/namespaces/".count).dropLast("/events".count)
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        guard let selector = query["fieldSelector"], selector.hasPrefix("involvedObject.uid=") else {
            return TestRoute(status: .badRequest, chunks: ["this server answers per-pod lists only"])
        }
        let uid = String(selector.dropFirst("involvedObject.uid=".count))
        let matching = events.filter { $0.namespace == namespace && $0.uid == uid }
        let limit = query["limit"].flatMap(Int.init) ?? matching.count
        let offset = query["continue"].flatMap { Int($0.dropFirst("page-".count)) } ?? 0
        let page = matching.dropFirst(offset).prefix(limit)
        var meta = "\"resourceVersion\":\"304\""
        if offset + page.count < matching.count {
            meta += ",\"continue\":\"page-\(offset + page.count)\",\"remainingItemCount\":\(matching.count - offset - page.count)"
        }
        return TestRoute(chunks: ["{\"kind\":\"EventList\",\"apiVersion\":\"v1\",\"metadata\":{\(meta)},\"items\":[",
                                  page.map(\.text).joined(separator: ","), "]}"])
    }
}

extension RecordedPods {
    /// The real node's events (reference/real-cluster-1.28/api-events-final.json, copied under
    /// Tests/PodstartAgentTests/Fixtures).
    public static let eventsFile = "\(LocalEnvironment.repositoryRoot)/Tests/PodstartAgentTests/Fixtures/api-events-final.json"

    /// The recorded events of the pod `recorded`, as they would be of the renamed pod: their
    /// `involvedObject` names `name` and `uid`, every other field as recorded.
    public static func events(of recorded: String, name: String, uid: String) throws -> [[String: Any]] {
        let list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: eventsFile))) as! [String: Any]
        return (list["items"] as! [[String: Any]]).compactMap { event in
            guard var object = event["involvedObject"] as? [String: Any], object["name"] as? String == recorded else { return nil }
            object["name"] = name
            object["uid"] = uid
            var renamed = event
            renamed["involvedObject"] = object
            return renamed
        }
    }
}
