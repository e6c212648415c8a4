import Foundation
import PodstartCore
import Synchronization

/// A test API server for one node's pods, as the agent and `trace --pod` read them:
/// `GET /api/v1/pods?fieldSelector=spec.nodeName=NODE` lists the node's pods; with `watch=true` it
/// replays the changes after the given resourceVersion and stays open, writing each later change
/// (``publish(_:_:)``) as the test makes it, until ``close()``. A pod's events are listed as
/// ``TestEventList`` answers: those the test added (``addEvents(_:)``), none until then. A bearer token is required.
/// Every other path answers 404 with a `Status`, as an API server does for what it does not serve.
///
/// Serve it with ``serve(pki:)``, point clients at it with ``kubeconfig(port:pki:)``.
public final class TestPodAPIServer: Sendable {
    public let token: String
    public let node: String

    struct State {
        var version = 100
        var history: [(version: Int, line: String)] = []
        var watchers: [AsyncStream<String>.Continuation] = []
        /// Each pod's latest object, as JSON.
        var pods: [String: Data] = [:]
        var order: [String] = []
        var events = TestEventList()
    }
    let state = Mutex(State())

    public init(token: String, node: String) {
        self.token = token
        self.node = node
    }

    public static let notFound = #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#

    public func route(_ uri: String, _ auth: String?) -> TestRoute {
        guard auth == "Bearer \(token)" else {
            return TestRoute(status: .unauthorized, chunks: [#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#])
        }
        if let answer = state.withLock({ $0.events.answer(uri) }) { return answer }
        guard uri.hasPrefix("/api/v1/pods?"), uri.contains("fieldSelector=spec.nodeName%3D\(node)") else {
            return TestRoute(status: .notFound, chunks: [Self.notFound])
        }
        let query = uri.split(separator: "?", maxSplits: 1).last.map { $0.components(separatedBy: "&") } ?? []
        let from = query.first { $0.hasPrefix("resourceVersion=") }.flatMap { Int($0.dropFirst(16)) } ?? 0
        guard query.contains("watch=true") else {
            let (version, pods) = state.withLock { s in (s.version, s.order.compactMap { s.pods[$0] }) }
            let items = pods.compactMap { try? JSONSerialization.jsonObject(with: $0) }
            let list: [String: Any] = ["kind": "PodList", "apiVersion": "v1", "metadata": ["resourceVersion": "\(version)"], "items": items]
            return TestRoute(chunks: [String(decoding: try! JSONSerialization.data(withJSONObject: list), as: UTF8.self)])
        }
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let replay = state.withLock { s in
            s.watchers.append(continuation)
            return s.history.filter { $0.version > from }.map(\.line)
        }
        return TestRoute(chunks: replay, more: stream)
    }

    /// A change as the API server stores it: a new resourceVersion, written to every open watch.
    /// Returns when it was written (Unix ns, taken just before the watches got it): the instant a
    /// kubelet's status write reached the API server.
    @discardableResult
    public func publish(_ type: String, _ pod: [String: Any]) throws -> Int64 {
        let uid = (pod["metadata"] as! [String: Any])["uid"] as! String
        return try state.withLock { s in
            // under the lock: the watches see changes in resourceVersion order
            s.version += 1
            var object = pod
            var meta = object["metadata"] as! [String: Any]
            meta["resourceVersion"] = "\(s.version)"
            object["metadata"] = meta
            let data = try JSONSerialization.data(withJSONObject: object)
            let line = String(decoding: try JSONSerialization.data(withJSONObject: ["type": type, "object": object]), as: UTF8.self) + "\n"
            if type == "DELETED" {
                s.pods[uid] = nil
                s.order.removeAll { $0 == uid }
            } else {
                if s.pods[uid] == nil { s.order.append(uid) }
                s.pods[uid] = data
            }
            s.history.append((s.version, line))
            let at = WallClock.unixNow()
            for watcher in s.watchers { watcher.yield(line) }
            return at
        }
    }

    /// Events the API server now holds (core/v1 Event objects, e.g. ``RecordedPods/events(of:name:uid:)``).
    public func addEvents(_ events: [[String: Any]]) throws {
        try state.withLock { s in try s.events.add(events) }
    }

    /// Ends every open watch (the server's connections close after their last chunk).
    public func close() { state.withLock { s in for w in s.watchers { w.finish() }; s.watchers = [] } }

    /// Serves this API over TLS on loopback with the PKI's server certificate.
    public func serve(pki: TestPKI) async throws -> TestHTTPSServer {
        try await TestHTTPSServer(pki: pki, route: { [self] in route($0, $1) })
    }

    /// A kubeconfig for the server on `port`: the PKI's CA, this server's token. Returns its path.
    public func kubeconfig(port: Int, pki: TestPKI) throws -> String {
        let path = pki.directory + "/kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters:
            - name: test
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority: \(pki.caFile)
            contexts:
            - name: test
              context: {cluster: test, user: test}
            users:
            - name: test
              user: {token: \(token)}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
