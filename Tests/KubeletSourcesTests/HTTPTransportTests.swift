import Foundation
import HTTPTransport
import NIOHTTP1
import PodstartCore
import PodstartTestSupport
import Testing
@testable import KubeletSources

/// The shared HTTP client (HTTPTransport) against real sockets: where credentials go on
/// redirects, body caps, skip-verify, client certificates, and the real kubelet's recorded
/// /metrics and /pods served back over TLS.
@Suite(.serialized) struct HTTPTransportTests {
    static let token = "transport-token-7a6b"

    /// `/metrics` needs the token; `/elsewhere` and `/nearby` redirect to other origins,
    /// `/same` to `/metrics` on this origin.
    static func redirecting(elsewhere: String, nearby: String) -> @Sendable (String, String?) -> TestRoute {
        { uri, auth in
            switch uri {
            case "/metrics":
                guard auth == "Bearer \(token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized\n"]) }
                return TestRoute(contentType: "text/plain", chunks: ["kubelet_started_pods_total 3\n"])
            case "/same": return TestRoute(status: .found, chunks: [], headers: [("Location", "/metrics")])
            case "/elsewhere": return TestRoute(status: .temporaryRedirect, chunks: [], headers: [("Location", elsewhere)])
            case "/nearby": return TestRoute(status: .movedPermanently, chunks: [], headers: [("Location", nearby)])
            case "/loop": return TestRoute(status: .found, chunks: [], headers: [("Location", "/loop")])
            default: return TestRoute(status: .notFound, chunks: ["not found"])
            }
        }
    }

    static let landing: @Sendable (String, String?) -> TestRoute = { _, _ in TestRoute(contentType: "text/plain", chunks: ["landed\n"]) }

    @Test func redirectToAnotherHostOrPortCarriesNoAuthorizationButSameOriginRedirectsKeepIt() async throws {
        let otherHost = try await TestHTTPSServer(pki: nil, host: "127.0.0.2", route: Self.landing)
        let otherPort = try await TestHTTPSServer(pki: nil, host: "127.0.0.1", route: Self.landing)
        let origin = try await TestHTTPSServer(pki: nil, route: Self.redirecting(
            elsewhere: "http://127.0.0.2:\(otherHost.port)/landing", nearby: "http://127.0.0.1:\(otherPort.port)/landing"))
        defer { Task { try? await origin.shutdown(); try? await otherHost.shutdown(); try? await otherPort.shutdown() } }
        let client = try HTTPTransport(HTTPEndpoint(url: "http://127.0.0.1:\(origin.port)", bearerToken: Self.token))

        // Same origin: followed, the token goes along, and /metrics accepts it.
        #expect(String(decoding: try await client.get("/same"), as: UTF8.self) == "kubelet_started_pods_total 3\n")
        #expect(origin.log.map(\.uri) == ["/same", "/metrics"])
        #expect(origin.log.allSatisfy { $0.authorization == "Bearer \(Self.token)" })

        // Another host (127.0.0.2) and another port: followed, without the token.
        #expect(String(decoding: try await client.get("/elsewhere"), as: UTF8.self) == "landed\n")
        #expect(String(decoding: try await client.get("/nearby"), as: UTF8.self) == "landed\n")
        #expect(origin.log.last?.authorization == "Bearer \(Self.token)")
        #expect(otherHost.log.map(\.uri) == ["/landing"] && otherHost.log.allSatisfy { $0.authorization == nil })
        #expect(otherPort.log.map(\.uri) == ["/landing"] && otherPort.log.allSatisfy { $0.authorization == nil })

        // An Authorization given for one request is bound to its origin the same way.
        _ = try await client.send(.GET, "/elsewhere", authorization: "Basic bm9kZTpwdw==")
        #expect(otherHost.log.count == 2 && otherHost.log.allSatisfy { $0.authorization == nil })

        // A redirect loop ends at the limit with an error naming it.
        await #expect {
            _ = try await client.get("/loop")
        } throws: { e in
            guard case HTTPTransportError.tooManyRedirects(_, let limit) = e else { return false }
            return limit == 5
        }
    }

    @Test func bodyOverTheCapIsAClearErrorNotABuffer() async throws {
        let big = String(repeating: "kubelet_runtime_operations_total{operation_type=\"x\"} 1\n", count: 2_000)  // ~110 kB
        let server = try await TestHTTPSServer(pki: nil) { uri, _ in
            uri == "/watch" ? TestRoute(chunks: [String(repeating: "x", count: 70_000), "\n"]) : TestRoute(contentType: "text/plain", chunks: [big, big])
        }
        defer { Task { try? await server.shutdown() } }
        let capped = try HTTPTransport(HTTPEndpoint(url: "http://127.0.0.1:\(server.port)", maxBodyBytes: 64 << 10))
        let error = await #expect(throws: HTTPTransportError.self) { _ = try await capped.get("/metrics") }
        #expect(error == .bodyTooLarge(url: "http://127.0.0.1:\(server.port)/metrics", limitBytes: 64 << 10))
        #expect("\(error!)".contains("larger than the 65536-byte limit"), "\(error!)")
        // A stream's line is held to the same cap.
        await #expect(throws: HTTPTransportError.bodyTooLarge(url: "http://127.0.0.1:\(server.port)/watch", limitBytes: 64 << 10)) {
            try await capped.streamLines("/watch") { _ in true }
        }
        // Under the cap all of it arrives.
        let roomy = try HTTPTransport(HTTPEndpoint(url: "http://127.0.0.1:\(server.port)", maxBodyBytes: 1 << 20))
        #expect(try await roomy.get("/metrics").count == 2 * big.utf8.count)
    }

    /// What a kubelet with a self-signed serving certificate looks like: unusable without a CA
    /// unless skip-verify is set explicitly. The real kubelet's /metrics and /pods are served.
    @Test func realKubeletRecordingsOverSelfSignedTLSOnlyWithInsecureSkipTLSVerify() async throws {
        let pki = try TestPKI.make(selfSigned: true)
        let metricsText = try Samples.text("real-cluster-1.28/kubelet-metrics-final.txt")
        let podsJSON = try Samples.text("real-cluster-1.28/kubelet-pods-final.json")
        let server = try await TestHTTPSServer(pki: pki) { uri, auth in
            guard auth == "Bearer \(Self.token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized\n"]) }
            switch uri {
            case "/metrics":
                // In pieces, as a real chunked response arrives.
                let lines = metricsText.split(separator: "\n", omittingEmptySubsequences: false)
                let parts = stride(from: 0, to: lines.count, by: 400).map { lines[$0..<min($0 + 400, lines.count)].joined(separator: "\n") }
                return TestRoute(contentType: "text/plain; version=0.0.4", chunks: parts.enumerated().map { $0.offset < parts.count - 1 ? $0.element + "\n" : $0.element })
            case "/pods": return TestRoute(chunks: [podsJSON])
            default: return TestRoute(status: .notFound, chunks: ["not found"])
            }
        }
        defer { Task { try? await server.shutdown() } }
        let url = "https://127.0.0.1:\(server.port)"

        let verifying = try KubeEndpoint(url: url, bearerToken: Self.token)
        await #expect {
            _ = try await KubeletEndpoints(verifying).scrapeMetrics()
        } throws: { e in
            guard case HTTPTransportError.tls = e else { Issue.record("not a TLS error: \(e)"); return false }
            return true
        }
        #expect(server.log.isEmpty, "no request may reach a server that failed verification")

        let skipping = try KubeEndpoint(url: url, bearerToken: Self.token, insecureSkipTLSVerify: true)
        let (metrics, exposition) = try await KubeletEndpoints(skipping).scrapeMetrics()
        #expect(exposition.errors.isEmpty)
        #expect(exposition.families == PrometheusText.parse(metricsText).families)
        #expect(metrics.sli?.count == 14 && metrics.startedPods == 14)
        let pods = try await KubeletEndpoints(skipping).pods()
        #expect(pods.count == 14)
        #expect(Set(pods.map(\.metadata.name)).isSuperset(of: ["pod-a-reader", "pod-b-slowready", "pod-c-large", "pod-d-init"]))
        #expect(server.log.allSatisfy { $0.authorization == "Bearer \(Self.token)" })
    }

    @Test func clientCertificateIsPresentedToAServerThatRequiresOne() async throws {
        let pki = try TestPKI.make()
        let server = try await TestHTTPSServer(pki: pki, requireClientCertificate: true) { _, _ in
            TestRoute(contentType: "text/plain", chunks: ["kubelet_started_pods_total 1\n"])
        }
        defer { Task { try? await server.shutdown() } }
        let url = "https://127.0.0.1:\(server.port)"
        let anonymous = try HTTPTransport(HTTPEndpoint(url: url, caFile: pki.caFile))
        await #expect(throws: HTTPTransportError.self) { _ = try await anonymous.get("/metrics") }
        #expect(server.log.isEmpty)

        let authenticated = try HTTPTransport(HTTPEndpoint(url: url, caFile: pki.caFile, clientCertificateFile: pki.clientCertFile,
                                                           clientKeyFile: pki.clientKeyFile))
        #expect(String(decoding: try await authenticated.get("/metrics"), as: UTF8.self) == "kubelet_started_pods_total 1\n")
        #expect(server.log.count == 1)

        // A certificate without its key is refused before any connection.
        #expect(throws: HTTPTransportError.tlsFile(path: pki.clientCertFile,
                                                   reason: "a client certificate needs its key file, and a key its certificate file")) {
            _ = try HTTPTransport(HTTPEndpoint(url: url, clientCertificateFile: pki.clientCertFile))
        }
    }

    @Test func tokenFileIsReadAgainWhenItChanges() async throws {
        let server = try await TestHTTPSServer(pki: nil) { _, auth in TestRoute(chunks: [auth ?? "none"]) }
        defer { Task { try? await server.shutdown() } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-token-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "first\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let client = try HTTPTransport(HTTPEndpoint(url: "http://127.0.0.1:\(server.port)", tokenFile: dir + "/token"))
        #expect(String(decoding: try await client.get("/"), as: UTF8.self) == "Bearer first")
        // Rotated as kubelet does it: a new file put in place (new size and time).
        try "second-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        #expect(String(decoding: try await client.get("/"), as: UTF8.self) == "Bearer second-token")
        try FileManager.default.removeItem(atPath: dir + "/token")
        await #expect(throws: HTTPTransportError.self) { _ = try await client.get("/") }
    }
}
