import Foundation
import HTTPTransport
import NIOCore
import NIOHTTP1
import PodstartCore
import PodstartTestSupport
import Testing
@testable import KubeletSources

/// The recorded samples served over a real TLS socket on 127.0.0.1, with a CA made at test time:
/// kubelet /metrics (bearer token) and /pods, API-server list + watch of pods and events.
@Suite(.serialized) struct HTTPSourcesTests {
    static let token = "test-token-0f9e8d7c"
    static let node = "ip-10-0-12-34.ec2.internal"

    /// The sample pod as the watch shows it first: scheduled, nothing running yet.
    static func pendingPodJSON() throws -> String {
        var obj = try JSONSerialization.jsonObject(with: try Samples.data("pod-status-sample.json")) as! [String: Any]
        var status = obj["status"] as! [String: Any]
        status["conditions"] = [["type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-11-29T16:13:10Z"]]
        status["containerStatuses"] = nil
        status["initContainerStatuses"] = nil
        status["phase"] = "Pending"
        obj["status"] = status
        var meta = obj["metadata"] as! [String: Any]
        meta["resourceVersion"] = "3291741"
        obj["metadata"] = meta
        return String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self)
    }

    static func compact(_ data: Data) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: data)), as: UTF8.self)
    }

    static func routes(_ uri: String, _ auth: String?) -> TestRoute {
        do {
            let path = uri.split(separator: "?").first.map(String.init) ?? uri
            let query = uri.contains("?") ? String(uri[uri.index(after: uri.firstIndex(of: "?")!)...]) : ""
            switch path {
            case "/metrics":
                guard auth == "Bearer \(token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized\n"]) }
                let text = try Samples.text("kubelet-metrics-sample.prom")
                // Sent in pieces to exercise chunked decoding.
                let mid = text.index(text.startIndex, offsetBy: text.count / 2)
                return TestRoute(contentType: "text/plain; version=0.0.4", chunks: [String(text[..<mid]), String(text[mid...])])
            case "/pods":
                let pod = try compact(try Samples.data("pod-status-sample.json"))
                return TestRoute(chunks: [#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":["# + pod + "]}"])
            case "/api/v1/pods":
                guard query.contains("fieldSelector=spec.nodeName%3D\(node)") else {
                    return TestRoute(status: .badRequest, chunks: ["missing node field selector"])
                }
                if query.contains("watch=true") {
                    if query.contains("resourceVersion=1") && !query.contains("resourceVersion=1&") && query.hasSuffix("resourceVersion=1") {
                        return TestRoute(chunks: [#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (3291700)","reason":"Expired","code":410}}"# + "\n"])
                    }
                    let full = try compact(try Samples.data("pod-status-sample.json"))
                    return TestRoute(chunks: [
                        #"{"type":"MODIFIED","object":"# + full + "}\n",
                        #"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"3291800"}}}"# + "\n",
                    ])
                }
                return TestRoute(chunks: [#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"3291741"},"items":["# + (try pendingPodJSON()) + "]}"])
            case "/api/v1/namespaces/shop/events", "/api/v1/events":
                guard query.contains("fieldSelector=involvedObject.kind%3DPod") else { return TestRoute(status: .badRequest, chunks: ["selector"]) }
                let list = try JSONSerialization.jsonObject(with: try Samples.data("kubelet-events-sample.json")) as! [String: Any]
                if query.contains("watch=true") {
                    let items = list["items"] as! [Any]
                    return TestRoute(chunks: try items.map {
                        #"{"type":"ADDED","object":"# + String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) + "}\n"
                    })
                }
                return TestRoute(chunks: [String(decoding: try JSONSerialization.data(withJSONObject: list), as: UTF8.self)])
            case "/hang":
                return TestRoute(chunks: [], hang: true)
            default:
                return TestRoute(status: .notFound, chunks: ["not found"])
            }
        } catch {
            return TestRoute(status: .internalServerError, chunks: ["\(error)"])
        }
    }

    static func withServer<T>(tls: Bool, _ body: (TestHTTPSServer, TestPKI?) async throws -> T) async throws -> T {
        let pki = tls ? try TestPKI.make() : nil
        let server = try await TestHTTPSServer(pki: pki, route: { Self.routes($0, $1) })
        do {
            let r = try await body(server, pki)
            try await server.shutdown()
            return r
        } catch {
            try? await server.shutdown()
            throw error
        }
    }

    @Test func scrapesKubeletMetricsOverHTTPSWithBearerTokenAndCA() async throws {
        try await Self.withServer(tls: true) { server, pki in
            // A service-account directory as Kubernetes mounts it: token + ca.crt.
            let sa = pki!.directory + "/serviceaccount"
            try FileManager.default.createDirectory(atPath: sa, withIntermediateDirectories: true)
            try (Self.token + "\n").write(toFile: sa + "/token", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: pki!.caFile, toPath: sa + "/ca.crt")
            let ep = try KubeEndpoint.serviceAccount(url: "https://127.0.0.1:\(server.port)", directory: sa)
            let (metrics, exposition) = try await KubeletEndpoints(ep).scrapeMetrics()
            #expect(exposition.errors.isEmpty)
            let direct = PrometheusText.parse(try Samples.text("kubelet-metrics-sample.prom"))
            #expect(exposition.families == direct.families)
            #expect(metrics.sli?.count == 14)
            #expect(metrics.firstNetworkPodSLISeconds == 1.988379004)
            #expect(server.log.last?.authorization == "Bearer \(Self.token)")
        }
    }

    @Test func wrongTokenIsAnHTTPErrorAndUnknownCAIsATLSError() async throws {
        try await Self.withServer(tls: true) { server, pki in
            let bad = try KubeEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: "nope", caFile: pki!.caFile)
            await #expect {
                _ = try await KubeletEndpoints(bad).scrapeMetrics()
            } throws: { e in
                guard case HTTPTransportError.status(let code, _, _) = e else { return false }
                return code == 401
            }
            // The system trust store does not know the test CA.
            let untrusted = try KubeEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: Self.token)
            await #expect {
                _ = try await KubeletEndpoints(untrusted).scrapeMetrics()
            } throws: { e in
                guard case HTTPTransportError.tls = e else { Issue.record("not a TLS error: \(e)"); return false }
                return true
            }
            // …unless verification is switched off explicitly.
            let insecure = try KubeEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: Self.token, insecureSkipTLSVerify: true)
            #expect(try await KubeletEndpoints(insecure).scrapeMetrics().0.sli?.count == 14)
        }
    }

    @Test func scrapesOverPlainHTTPAndTimesOut() async throws {
        try await Self.withServer(tls: false) { server, _ in
            let ep = try KubeEndpoint(url: "http://127.0.0.1:\(server.port)", bearerToken: Self.token, timeout: .seconds(20))
            let impatient = try KubeEndpoint(url: "http://127.0.0.1:\(server.port)", bearerToken: Self.token, timeout: .milliseconds(300))
            var poller = KubeletMetricsPoller()
            let first = poller.add(try await KubeletEndpoints(ep).scrapeMetrics().0)
            #expect(first.sli?.count == 14 && first.startedPods == 14)
            let second = poller.add(try await KubeletEndpoints(ep).scrapeMetrics().0)
            #expect(second.sli?.count == 0 && second.startedPods == 0)
            let start = Date()
            await #expect {
                _ = try await HTTPTransport(impatient).get("/hang")
            } throws: { e in
                if case HTTPTransportError.timeout = e { return true }
                return false
            }
            #expect(Date().timeIntervalSince(start) < 5)
            // Nothing listens here.
            let closed = try KubeEndpoint(url: "http://127.0.0.1:1", timeout: .milliseconds(300))
            await #expect(throws: HTTPTransportError.self) { _ = try await HTTPTransport(closed).get("/metrics") }
        }
    }

    @Test func kubeletPodsEndpoint() async throws {
        try await Self.withServer(tls: true) { server, pki in
            let ep = try KubeEndpoint(url: "https://localhost:\(server.port)", bearerToken: Self.token, caFile: pki!.caFile)
            let pods = try await KubeletEndpoints(ep).pods()
            #expect(pods.count == 1)
            let tl = PodStatusTimeline(pod: pods[0])
            #expect(tl.probeNanoseconds == 5_000_000_000 && tl.scheduleNanoseconds == 0)
        }
    }

    @Test func listThenWatchPodsAndEventsBuildsTheTimeline() async throws {
        try await Self.withServer(tls: true) { server, pki in
            let ep = try KubeEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: Self.token, caFile: pki!.caFile)
            let source = try APIServerPodSource(ep, nodeName: Self.node)
            var tracker = PodTimelineTracker()
            let list = try await source.listPods()
            #expect(list.metadata?.resourceVersion == "3291741")
            for p in list.items {
                let tl = tracker.update(pod: p)
                #expect(tl.scheduled != nil && tl.allContainersRunning == nil && tl.ready == nil)
            }
            let events = try await source.listEvents(namespace: "shop")
            #expect(events.items.count == 17)
            var types: [String] = []
            let outcome = try await source.watchPods(resourceVersion: list.metadata?.resourceVersion) { type, pod in
                types.append(type)
                tracker.update(pod: pod, deleted: type == "DELETED")
                return true
            }
            #expect(types == ["MODIFIED"])
            #expect(outcome == .ended(resourceVersion: "3291800"))
            var seen = 0
            _ = try await source.watchEvents(namespace: "shop", resourceVersion: events.metadata?.resourceVersion) { _, e in
                tracker.update(event: e)
                seen += 1
                return true
            }
            #expect(seen == 17)
            let tl = try #require(tracker.timeline(uid: "3f0c2a7e-5b1d-4c3e-9a8f-1d2e3f4a5b6c"))
            #expect(tl.probeNanoseconds == 5_000_000_000)
            #expect(tl.pulls.map(\.sizeBytes) == [2_152_284, 72_099_400])
            #expect(server.log.contains { $0.uri.contains("watch=true") && $0.uri.contains("resourceVersion=3291741") })
            // The loop: list, watch, watch again from the bookmark, until told to stop.
            var loopTracker = PodTimelineTracker()
            var timelines: [PodStatusTimeline] = []
            try await source.run(tracker: &loopTracker) { tl in
                timelines.append(tl)
                return timelines.count < 3
            }
            #expect(timelines.map { $0.ready != nil } == [false, true, true])
            #expect(server.log.contains { $0.uri.contains("resourceVersion=3291800") })
            // A too-old resource version asks for a relist.
            let expired = try await source.watchPods(resourceVersion: "1") { _, _ in true }
            #expect(expired == .expired)
        }
    }
}
