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
            let scraped = try await KubeletEndpoints(ep).scrapeMetrics().0
            let first = KubeletMetricsInterval(previous: nil, current: scraped)
            #expect(first.sli?.count == 14 && first.startedPods == 14)
            let second = KubeletMetricsInterval(previous: scraped, current: try await KubeletEndpoints(ep).scrapeMetrics().0)
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
            let r = try #require(PodStatusReport(pod: pods[0], observedUnixNs: 0))
            #expect(r.readyUnixNs! - r.allRunningUnixNs! == 5_000_000_000 && r.scheduledUnixNs == r.createdUnixNs)
        }
    }

    @Test func listThenWatchPodsFromTheListsVersionAndRelistWhenItExpired() async throws {
        try await Self.withServer(tls: true) { server, pki in
            let ep = try KubeEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: Self.token, caFile: pki!.caFile)
            let source = try APIServerPodSource(ep, nodeName: Self.node)
            let list = try await source.listPods()
            #expect(list.metadata?.resourceVersion == "3291741")
            for p in list.items {
                let r = try #require(PodStatusReport(pod: p, observedUnixNs: 0, fromInitialList: true))
                #expect(r.scheduledUnixNs != nil && r.allRunningUnixNs == nil && r.readyUnixNs == nil)
            }
            var seen: [(String, PodStatusReport?)] = []
            let outcome = try await source.watchPods(resourceVersion: list.metadata?.resourceVersion) { type, pod in
                seen.append((type, PodStatusReport(pod: pod, observedUnixNs: 0)))
                return true
            }
            #expect(seen.map(\.0) == ["MODIFIED"])
            #expect(seen.first?.1?.readyUnixNs != nil, "the watched change made the pod Ready")
            // the bookmark's version is where the next watch resumes
            #expect(outcome == .ended(resourceVersion: "3291800"))
            #expect(server.log.contains { $0.uri.contains("watch=true") && $0.uri.contains("allowWatchBookmarks=true") && $0.uri.contains("resourceVersion=3291741") })
            // a handler that has seen enough stops the watch
            let stopped = try await source.watchPods(resourceVersion: "3291800") { _, _ in false }
            #expect(stopped == .stopped)
            // A too-old resource version asks for a relist.
            let expired = try await source.watchPods(resourceVersion: "1") { _, _ in true }
            #expect(expired == .expired)
        }
    }
}
