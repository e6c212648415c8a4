import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// `podstart agent --api-auth delegated` as the DaemonSet runs it (#16.4): the built binary, the
/// API server replaced by a TLS test server that answers TokenReviews and SubjectAccessReviews
/// with the bodies of authentication.k8s.io/v1 and authorization.k8s.io/v1
/// (ReviewingAPIServer), reached through a kubeconfig with the test CA and the agent's own token.
@Suite(.serialized) struct DelegatedAuthAgentTests {
    /// status and body of a GET by curl (a client of its own, outside the test process).
    static func get(_ port: Int, _ path: String, token: String? = nil) throws -> (Int, String) {
        guard let curl = Command.which("curl") else { throw TestServerError("curl is not installed: apt-get install curl") }
        var args = ["-s", "-w", "\n%{http_code}", "--max-time", "30", "http://127.0.0.1:\(port)\(path)"]
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        let (status, output) = try Command.run(curl, args)
        guard status == 0, let last = output.split(separator: "\n").last, let code = Int(last) else {
            throw TestServerError("curl \(path) failed (\(status)): \(output)")
        }
        return (code, String(output.dropLast(last.count)))
    }

    static func kubeconfig(server port: Int, pki: TestPKI, in dir: String) throws -> String {
        let path = dir + "/kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster: {server: "https://127.0.0.1:\(port)", certificate-authority: "\(pki.caFile)"}
            users:
            - name: agent
              user: {token: "\(ReviewingAPIServer.agentToken)"}
            contexts:
            - name: test
              context: {cluster: test, user: agent}
            current-context: test
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func v1AnswersOnlyReviewedAndAuthorizedTokensCachesDecisionsAnd503WhenTheAPIServerFails() async throws {
        let env = try LocalEnvironment.shared()
        let binary = try LocalEnvironment.podstartBinary()
        let pki = try TestPKI.make()
        defer { try? FileManager.default.removeItem(atPath: pki.directory) }
        let api = ReviewingAPIServer()
        let server = try await TestHTTPSServer(pki: pki, handle: { api.handle($0) })
        let dir = try Command.temporaryDirectory("podstart-delegated")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let agent = try await AgentProcess.start(binary: binary, stateDirectory: dir + "/state", arguments: [
            "--cri-endpoint", env.endpoint.description, "--no-kernel",
            "--kubeconfig", try Self.kubeconfig(server: server.port, pki: pki, in: dir), "--node-name", "test-node",
            "--api-auth", "delegated",
        ])
        // no token: refused without asking the API server
        let (anonymous, anonymousBody) = try Self.get(agent.port, "/v1/pods")
        #expect(anonymous == 401, "\(anonymousBody)")
        #expect(api.count("TokenReview") == 0)
        // a token the API server does not know
        let (forged, forgedBody) = try Self.get(agent.port, "/v1/pods", token: "forged")
        #expect(forged == 401, "\(forgedBody)")
        #expect(forgedBody.contains("invalid bearer token"), "\(forgedBody)")
        #expect(api.count("SubjectAccessReview") == 0, "an unauthenticated token was sent for authorization")
        // authenticated, but RBAC does not let it get /v1
        let (forbidden, reason) = try Self.get(agent.port, "/v1/pods", token: ReviewingAPIServer.strangerToken)
        #expect(forbidden == 403, "\(reason)")
        #expect(reason.contains("may not get /v1/pods"), "\(reason)")
        // allowed: five requests, one pair of reviews (decisions cached)
        for _ in 0..<5 {
            let (status, body) = try Self.get(agent.port, "/v1/pods?limit=5", token: ReviewingAPIServer.readerToken)
            #expect(status == 200, "\(body)")
        }
        let readerReviews = api.reviews.withLock { $0 }.filter { $0.kind == "TokenReview" && $0.spec["token"]?.stringValue == ReviewingAPIServer.readerToken }
        #expect(readerReviews.count == 1)
        #expect(api.count("TokenReview") == 3)  // forged, stranger, reader
        #expect(api.count("SubjectAccessReview") == 2)  // the stranger's and the reader's
        // the review the reader's request made: its user, groups, extra, and the request's path and verb
        let access = api.reviews.withLock { $0 }.last { $0.kind == "SubjectAccessReview" }?.spec
        #expect(access?["user"]?.stringValue == ReviewingAPIServer.reader)
        #expect(access?["groups"]?.arrayValue?.compactMap(\.stringValue) == ["system:serviceaccounts", "system:authenticated"])
        #expect(access?["extra"]?["authentication.kubernetes.io/pod-name"]?.arrayValue?.first?.stringValue == "prometheus-0")
        #expect(access?["nonResourceAttributes"]?["path"]?.stringValue == "/v1/pods")
        #expect(access?["nonResourceAttributes"]?["verb"]?.stringValue == "get")
        // the reviews went with the agent's own credentials, never a client's token
        let sentWith = Set(api.agentCredentials.withLock { $0 })
        #expect(sentWith == ["Bearer \(ReviewingAPIServer.agentToken)"], "\(sentWith)")
        // scrapers and probes need no token
        #expect(try Self.get(agent.port, "/metrics").0 == 200)
        #expect(try Self.get(agent.port, "/healthz").0 == 200)

        // the API server answers errors: a token not reviewed before cannot be allowed; the
        // cached decision still answers
        api.mode.withLock { $0 = .serverError }
        let (failing, failingBody) = try Self.get(agent.port, "/v1/pods", token: "a-new-token")
        #expect(failing == 503, "\(failingBody)")
        #expect(try Self.get(agent.port, "/v1/pods?limit=5", token: ReviewingAPIServer.readerToken).0 == 200)
        // the API server goes away
        try await server.shutdown()
        let (unavailable, body) = try Self.get(agent.port, "/v1/pods", token: "another-new-token")
        #expect(unavailable == 503, "\(body)")
        // and a failure is never cached as a decision: the same token is asked about again
        let (again, _) = try Self.get(agent.port, "/v1/pods", token: "another-new-token")
        #expect(again == 503)

        let (_, metrics) = try Self.get(agent.port, "/metrics")
        #expect(metrics.contains("podstart_api_requests_refused_total{reason=\"unauthenticated\"} 2\n"), "\(metrics)")
        #expect(metrics.contains("podstart_api_requests_refused_total{reason=\"forbidden\"} 1\n"))
        #expect(metrics.contains("podstart_api_requests_refused_total{reason=\"unavailable\"} 3\n"))
        #expect(agent.process.isRunning)
        #expect(try await agent.stop() == 0)
    }

    @Test func withoutAuthenticationV1AnswersLoopbackClientsOnly() async throws {
        let env = try LocalEnvironment.shared()
        let binary = try LocalEnvironment.podstartBinary()
        let dir = try Command.temporaryDirectory("podstart-loopback")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let agent = try await AgentProcess.start(binary: binary, stateDirectory: dir + "/state",
                                                 arguments: ["--cri-endpoint", env.endpoint.description, "--no-kernel"])
        #expect(try Self.get(agent.port, "/v1/pods").0 == 200)
        #expect(try await agent.stop() == 0)
    }
}
