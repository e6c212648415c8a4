import Foundation
import PodstartTestSupport
import Testing

/// `podstart agent --api-auth delegated` as the DaemonSet runs it, the API server replaced by a
/// test HTTPS server that answers TokenReviews and SubjectAccessReviews (ReviewingAPIServer),
/// reached through a kubeconfig with the test CA and the agent's own token.
@Suite(.serialized) struct DelegatedAuthAgentTests {
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

    @Test func v1AnswersOnlyReviewedAndAuthorizedTokensAnd503WhenTheAPIServerIsGone() async throws {
        let env = try LocalEnvironment.shared()
        let binary = try LocalEnvironment.podstartBinary()
        let pki = try TestPKI.make()
        defer { try? FileManager.default.removeItem(atPath: pki.directory) }
        let api = ReviewingAPIServer()
        let server = try await TestHTTPSServer(pki: pki, handle: { api.handle($0) })
        let dir = try Command.temporaryDirectory("podstart-delegated")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kubeconfig = dir + "/kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster: {server: "https://127.0.0.1:\(server.port)", certificate-authority: "\(pki.caFile)"}
            users:
            - name: agent
              user: {token: "\(ReviewingAPIServer.agentToken)"}
            contexts:
            - name: test
              context: {cluster: test, user: agent}
            current-context: test
            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess.start(binary: binary, stateDirectory: dir + "/state", arguments: [
            "--cri-endpoint", env.endpoint.description, "--no-kernel", "--kubeconfig", kubeconfig, "--node-name", "test-node",
            "--api-auth", "delegated",
        ])
        #expect(try Self.get(agent.port, "/v1/pods").0 == 401)
        #expect(try Self.get(agent.port, "/v1/pods", token: "forged").0 == 401)
        let (forbidden, reason) = try Self.get(agent.port, "/v1/pods", token: ReviewingAPIServer.strangerToken)
        #expect(forbidden == 403, "\(reason)")
        #expect(reason.contains("may not get /v1/pods"))
        for _ in 0..<5 { #expect(try Self.get(agent.port, "/v1/pods?limit=5", token: ReviewingAPIServer.readerToken).0 == 200) }
        // five requests, one pair of reviews for the reader
        #expect(api.reviews.withLock { $0 }.filter { $0.spec["token"]?.stringValue == ReviewingAPIServer.readerToken }.count == 1)
        #expect(api.count("SubjectAccessReview") == 2)  // the stranger's and the reader's
        // scrapers and probes need no token
        #expect(try Self.get(agent.port, "/metrics").0 == 200)
        #expect(try Self.get(agent.port, "/healthz").0 == 200)

        // the API server goes away: a token not reviewed before cannot be allowed
        try await server.shutdown()
        let (unavailable, body) = try Self.get(agent.port, "/v1/pods", token: "a-new-token")
        #expect(unavailable == 503, "\(body)")
        let (_, metrics) = try Self.get(agent.port, "/metrics")
        #expect(metrics.contains("podstart_api_requests_refused_total{reason=\"unauthenticated\"} 2\n"), "\(metrics)")
        #expect(metrics.contains("podstart_api_requests_refused_total{reason=\"forbidden\"} 1\n"))
        #expect(metrics.contains("podstart_api_requests_refused_total{reason=\"unavailable\"} 1\n"))
        #expect(try await agent.stop() == 0)
    }

    @Test func withoutAuthenticationV1StillAnswersLoopback() async throws {
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
