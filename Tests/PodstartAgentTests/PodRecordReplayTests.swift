import Exporter
import Foundation
import HTTPTransport
import KubeletSources
import Logging
import PodstartAgent
import PodstartCore
import PodstartTestSupport
import StateStore
import Synchronization
import Testing

/// The real node's API objects (reference/real-cluster-1.28: api-pods-final.json,
/// kubelet-pods-final.json, kubelet-metrics-final.txt, kubelet.log) served by a test API server
/// and a test kubelet on loopback, over TLS with a test CA and a bearer token, to the agent's
/// pod-record source: list, 410 Expired and relist, watch, resume from bookmarks, and the
/// kubelet's /pods while the API server is unreachable.
///
/// The watch streams are made of the recorded objects only: each pod first as created (its
/// recorded metadata and spec, no status yet), then as recorded at the end. Bookmarks carry the
/// recorded objects' resourceVersions.
@Suite(.serialized) struct PodRecordReplayTests {
    static let token = "replay-token-4c1d"
    static let node = "vm"  // api-node.json
    static let uidPodA = "5efcd879-ac24-40ee-8026-d96bfc2064f1"

    static func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Recordings.directory)/\(name)"))) as! [String: Any]
    }

    static func text(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// The recorded pods in the order they were created (resourceVersion of creation is not
    /// recorded; the final object's orders them the same way).
    static func recordedPods() throws -> [[String: Any]] {
        let items = try json("api-pods-final.json")["items"] as! [[String: Any]]
        func rv(_ p: [String: Any]) -> Int { Int((p["metadata"] as! [String: Any])["resourceVersion"] as! String)! }
        return items.sorted { rv($0) < rv($1) }
    }

    /// A pod as the watch first shows it: its recorded metadata and spec, no status.
    static func created(_ pod: [String: Any]) -> [String: Any] {
        var p = pod
        p["status"] = nil
        var meta = p["metadata"] as! [String: Any]
        meta["resourceVersion"] = nil
        p["metadata"] = meta
        return p
    }

    static func event(_ type: String, _ object: [String: Any]) throws -> String { try text(["type": type, "object": object]) + "\n" }

    static func bookmark(_ rv: String) throws -> String {
        try event("BOOKMARK", ["kind": "Pod", "apiVersion": "v1", "metadata": ["resourceVersion": rv]])
    }

    /// The test API server: answers by the request's resourceVersion, as a real one does.
    final class APIServer: Sendable {
        /// The watch from "2": the first four pods, then a bookmark; from "137": the burst.
        let firstStream: [String]
        let burstStream: [String]
        let lists = Mutex(0)
        init(pods: [[String: Any]]) throws {
            func stream(_ batch: ArraySlice<[String: Any]>, then: String) throws -> [String] {
                try batch.map { try PodRecordReplayTests.event("ADDED", PodRecordReplayTests.created($0)) }
                    + batch.map { try PodRecordReplayTests.event("MODIFIED", $0) } + [try PodRecordReplayTests.bookmark(then)]
            }
            firstStream = try stream(pods.prefix(4), then: "137")
            burstStream = try stream(pods.dropFirst(4), then: "304")
        }

        func route(_ uri: String, _ auth: String?) -> TestRoute {
            guard auth == "Bearer \(PodRecordReplayTests.token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized"]) }
            guard uri.hasPrefix("/api/v1/pods?"), uri.contains("fieldSelector=spec.nodeName%3D\(PodRecordReplayTests.node)") else {
                return TestRoute(status: .notFound, chunks: ["not found"])
            }
            do {
                let rv = uri.components(separatedBy: "&").first { $0.hasPrefix("resourceVersion=") }.map { String($0.dropFirst(16)) }
                guard uri.contains("watch=true") else {
                    // a list: before the first pod, at "1" then (after the 410) at "2"
                    let n = lists.withLock { $0 += 1; return $0 }
                    return TestRoute(chunks: [try PodRecordReplayTests.text(["kind": "PodList", "apiVersion": "v1",
                                                                             "metadata": ["resourceVersion": "\(n)"], "items": [Any]()])])
                }
                switch rv {
                case "1":
                    return TestRoute(chunks: [try PodRecordReplayTests.event("ERROR", ["kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                                                       "message": "too old resource version: 1 (2)", "reason": "Expired", "code": 410])])
                case "2": return TestRoute(chunks: firstStream)
                case "137": return TestRoute(chunks: burstStream)
                default: return TestRoute(chunks: [], hang: true)  // nothing more happens
                }
            } catch {
                return TestRoute(status: .internalServerError, chunks: ["\(error)"])
            }
        }
    }

    /// The test kubelet: /pods (empty at first, as before the first pod; then as recorded) and
    /// /metrics as recorded.
    final class Kubelet: Sendable {
        let polls = Mutex(0)
        func route(_ uri: String, _ auth: String?) -> TestRoute {
            guard auth == "Bearer \(PodRecordReplayTests.token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized"]) }
            do {
                switch uri {
                case "/pods":
                    let n = polls.withLock { $0 += 1; return $0 }
                    if n == 1 { return TestRoute(chunks: [#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#]) }
                    return TestRoute(chunks: [try PodRecordReplayTests.text(try PodRecordReplayTests.json("kubelet-pods-final.json"))])
                case "/metrics":
                    return TestRoute(contentType: "text/plain; version=0.0.4",
                                     chunks: [try String(contentsOfFile: "\(Recordings.directory)/kubelet-metrics-final.txt", encoding: .utf8)])
                default:
                    return TestRoute(status: .notFound, chunks: ["not found"])
                }
            } catch {
                return TestRoute(status: .internalServerError, chunks: ["\(error)"])
            }
        }
    }

    struct Agent {
        let hub: AgentHub
        let store: TimelineStore
        let metrics: MetricsRegistry
        let directory: String
    }

    static func agent() throws -> Agent {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-replay-\(UUID().uuidString)").path
        let metrics = MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: "test")))
        let store = try TimelineStore(directory: dir, logger: Logger(label: "test"))
        let hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics, logger: Logger(label: "test"))
        return Agent(hub: hub, store: store, metrics: metrics, directory: dir)
    }

    /// Runs `source` under its supervisor until `done` holds (checked as requests arrive), then
    /// stops it.
    static func run(_ source: PodRecordSource, metrics: MetricsRegistry, until done: @escaping @Sendable () -> Bool) async throws {
        let task = Task { await SourceSupervisor(source, metrics: metrics, logger: Logger(label: "test")).run() }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)  // a hung test, not a speed check
        while !done() {
            guard clock.now < deadline else { task.cancel(); throw TestServerError("the source never got there") }
            try await Task.sleep(for: .milliseconds(20))
        }
        task.cancel()
        await task.value
    }

    /// The kubelet's "Observed pod startup duration" lines of the same node, as the agent's log source gives them.
    static func kubeletLines(into hub: AgentHub) async throws {
        await hub.ingest(try Recordings.lines("kubelet.log").compactMap { KubeletLogInputs.inputs(line: $0) }.flatMap { $0 })
    }

    @Test func listWatchResumeAndRelistRecordEveryPodWithTrustworthyPhases() async throws {
        let pki = try TestPKI.make()
        let api = try APIServer(pods: try Self.recordedPods())
        let server = try await TestHTTPSServer(pki: pki, route: { api.route($0, $1) })
        defer { Task { try? await server.shutdown() } }
        let agent = try Self.agent()
        let endpoint = try HTTPEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: Self.token, caFile: pki.caFile)
        let source = PodRecordSource(api: endpoint, kubelet: nil, nodeName: Self.node, hub: agent.hub)
        try await Self.run(source, metrics: agent.metrics) { server.log.contains { $0.uri.contains("resourceVersion=304") } }

        // one list, a relist on 410, then watches resumed from the bookmarks: never a list per poll
        let requests = server.log.map(\.uri)
        #expect(requests.filter { !$0.contains("watch=true") }.count == 2)
        let watched = requests.filter { $0.contains("watch=true") }.compactMap { $0.components(separatedBy: "resourceVersion=").last }
        #expect(Array(watched.prefix(4)) == ["1", "2", "137", "304"])
        #expect(requests.allSatisfy { $0.contains("allowWatchBookmarks=true") || !$0.contains("watch=true") })

        try await Self.kubeletLines(into: agent.hub)
        await agent.hub.flush()
        let traces = try await agent.store.recent(limit: 100, offset: 0)
        let byName = Dictionary(uniqueKeysWithValues: traces.map { ($0.pod.name, $0) })
        #expect(byName.count == 14, "every recorded pod, the ten of the burst included")
        for n in 1...10 { #expect(byName[String(format: "pod-e-burst-%02d", n)]?.outcome == .ready) }
        for trace in traces {
            #expect(trace.phases.contains { $0.name == .schedule }, "schedule present (zero: created with its node name)")
            #expect(trace.ready == Recordings.unixNs(try Self.readyCondition(trace.pod.name)), "Ready as the API says it")
            #expect(trace.readiness == .known)
        }
        let a = try #require(byName["pod-a-reader"])
        #expect(!a.phases.contains { $0.name == .probe }, "pod-a has no readiness probe")
        let b = try #require(byName["pod-b-slowready"])
        #expect(b.phases.contains { $0.name == .probe }, "pod-b's exec readiness probe")
        let d = try #require(byName["pod-d-init"])
        let initSpan = try #require(d.phases.first { $0.name == .`init` })
        #expect(initSpan.nanoseconds > 0)
        #expect(d.phases.filter { $0.name == .pull }.allSatisfy { $0.end <= initSpan.start || $0.start >= initSpan.end })

        // podstart's SLO histogram and the kubelet's SLI histogram agree bucket for bucket
        let ours = try Self.histogram("podstart_pod_start_slo_duration_seconds", in: agent.metrics.render(format: .text))
        let kubelets = try Self.recordedKubeletSLI()
        #expect(ours.count == kubelets.count)
        #expect(ours.buckets.map(\.count) == kubelets.buckets.map(\.count))
        #expect(ours.buckets.map(\.upperBound) == kubelets.buckets.map(\.upperBound))
    }

    static func histogram(_ family: String, in exposition: String) throws -> CumulativeHistogram {
        guard let f = PrometheusText.parse(exposition).family(family), let h = CumulativeHistogram.all(in: f).first else {
            throw TestServerError("no histogram \(family)")
        }
        return h
    }

    static func recordedKubeletSLI() throws -> CumulativeHistogram {
        try histogram("kubelet_pod_start_sli_duration_seconds",
                      in: try String(contentsOfFile: "\(Recordings.directory)/kubelet-metrics-final.txt", encoding: .utf8))
    }

    /// Ready=True's lastTransitionTime in the recording.
    static func readyCondition(_ name: String) throws -> String {
        let pod = try recordedPods().first { ($0["metadata"] as! [String: Any])["name"] as? String == name }!
        let conditions = (pod["status"] as! [String: Any])["conditions"] as! [[String: Any]]
        return (conditions.first { $0["type"] as? String == "Ready" }!["lastTransitionTime"] as! String)
            .replacingOccurrences(of: "Z", with: ".000000000Z")
    }

    @Test func withTheAPIServerUnreachableTheKubeletsPodsKeepTheAgentGoing() async throws {
        let pki = try TestPKI.make()
        let kubelet = Kubelet()
        let server = try await TestHTTPSServer(pki: pki, route: { kubelet.route($0, $1) })
        defer { Task { try? await server.shutdown() } }
        let agent = try Self.agent()
        let closed = try HTTPEndpoint(url: "https://127.0.0.1:1", bearerToken: Self.token, caFile: pki.caFile, timeout: .seconds(2))
        let kubeletEndpoint = try HTTPEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: Self.token, caFile: pki.caFile)
        var source = PodRecordSource(api: closed, kubelet: kubeletEndpoint, nodeName: Self.node, hub: agent.hub)
        source.fallbackInterval = .milliseconds(10)
        try await Self.run(source, metrics: agent.metrics) { kubelet.polls.withLock { $0 } >= 3 }
        await agent.hub.flush()
        let traces = try await agent.store.recent(limit: 100, offset: 0)
        #expect(traces.count == 14, "the kubelet's /pods, polled: every pod it started after the first poll")
        #expect(traces.allSatisfy { $0.outcome == .ready })
        #expect(traces.allSatisfy { $0.readiness == .known && $0.ready == Recordings.unixNs(try! Self.readyCondition($0.pod.name)) },
                "Ready as the kubelet's /pods says it")
        #expect(agent.metrics.render(format: .text).contains("podstart_pod_starts_readiness_unknown_total 0\n"))
        #expect(agent.metrics.render(format: .text).contains("podstart_source_errors_total{source=\"apiserver\"} 1"),
                "the unreachable API server counted once")

        // its /metrics: the kubelet's SLI exported beside podstart's, bucket for bucket
        let tokenFile = pki.directory + "/token"
        try Self.token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try await KubeletMetricsSource(url: "https://127.0.0.1:\(server.port)/metrics", tokenFile: tokenFile, caFile: pki.caFile,
                                       metrics: agent.metrics).scrape()
        let exported = try Self.histogram("podstart_kubelet_pod_start_sli_duration_seconds", in: agent.metrics.render(format: .text))
        #expect(exported == (try Self.recordedKubeletSLI()))
    }
}
