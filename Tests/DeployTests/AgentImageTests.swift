import Foundation
import PodstartTestSupport
import Testing

/// The agent's OCI image, assembled by scripts/build-agent-image.sh from the debug binary the test
/// build made (a release build with --static-swift-stdlib takes ~10 min on 2 cores; the script's
/// default is that build), pushed to the local registry, then pulled and started through CRI as
/// the DaemonSet runs it and scraped while a real pod starts (DaemonSetImageRun says what holds).
@Suite(.serialized) struct AgentImageTests {
    let env: LocalEnvironment
    let binary: String

    init() throws {
        env = try LocalEnvironment.shared()
        binary = try LocalEnvironment.podstartBinary()
    }

    /// Builds and pushes the image; returns its reference in the local registry.
    func buildAndPush(tag: String) throws -> String {
        let out = try Command.temporaryDirectory("podstart-agent-image")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, output) = try Command.run("/bin/bash", [DeployFiles.imageScript, "--binary", binary, "--tag", tag,
                                                             "--out", "\(out)/oci", "--push", "\(env.registry)/podstart-test"])
        try #require(status == 0, "build-agent-image.sh failed (exit \(status)):\n\(output)")
        let reference = try #require(output.split(separator: "\n").last.map(String.init))
        #expect(reference == "\(env.registry)/podstart-test/\(tag)")
        return reference
    }

    @Test func imageStartsThroughCRIWithTheDaemonSetsCapabilitiesAndServesMetricsOnTheHostNetwork() async throws {
        let tag = "podstart-agent:test-\(UInt32.random(in: 0 ... .max))"
        let reference = try buildAndPush(tag: tag)
        try DaemonSetImageRun.expectContainerfileConfig(reference)
        try await DaemonSetImageRun.startAndCheck(reference, env: env)
    }
}

/// An agent's HTTP endpoint on 127.0.0.1 (a process AgentProcess did not start: one in a container).
struct AgentEndpoint: Sendable {
    var port: Int

    func get(_ path: String) async throws -> (Int, String) {
        let curl = try #require(Command.which("curl"), "curl is not installed: run scripts/install-deps.sh")
        let (status, output) = try Command.run(curl, ["-s", "--max-time", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        guard status == 0, let newline = output.lastIndex(of: "\n") else { return (0, output) }
        return (Int(output[output.index(after: newline)...]) ?? 0, String(output[..<newline]))
    }

    func waitFor<T>(_ what: String, timeout: TimeInterval, _ body: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try await body() { return value }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw LocalEnvironment.StartFailure(description: "timed out after \(timeout) s waiting for \(what)")
    }
}
