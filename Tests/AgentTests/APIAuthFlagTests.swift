import Foundation
import PodstartTestSupport
import Testing

/// `--api-auth` and its companions are checked before any work starts (status 64, the flag named).
@Suite struct APIAuthFlagTests {
    @Test func inconsistentAPIAuthenticationFlagsAreUsageErrors() throws {
        let dir = try Command.temporaryDirectory("podstart-api-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = dir + "/empty", good = dir + "/token"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        try "t0ken\n".write(toFile: good, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--api-auth", "rbac"], "--api-auth must be delegated, token or none (not rbac)"),
            (["--api-auth", "loopback-only"], "--api-auth must be delegated, token or none"),
            (["--api-auth", "token"], "--api-auth token needs --api-token-file FILE"),
            (["--api-auth", "none", "--api-token-file", good], "--api-token-file goes with --api-auth token (not none)"),
            (["--api-token-file", empty], "the file is empty"),
            (["--api-token-file", dir + "/missing"], "cannot open it"),
            (["--api-max-concurrent-requests", "0"], "--api-max-concurrent-requests must be from 1 to 1024"),
            (["--api-max-response-mib", "4096"], "--api-max-response-mib must be from 1 to 1024"),
            // no API server to review tokens: neither in a cluster nor --kubeconfig
            (["--api-auth", "delegated"], "--api-auth delegated asks the API server"),
        ]
        for (flags, message) in cases {
            let (status, output) = try Command.run("/usr/bin/env", ["-u", "KUBERNETES_SERVICE_HOST", try LocalEnvironment.podstartBinary(),
                                                                    "agent", "--no-kernel", "--state-dir", dir + "/state"] + flags)
            #expect(status == 64, "\(flags): status \(status)\n\(output)")
            #expect(output.contains(message), "\(flags): \(output)")
        }
    }
}
