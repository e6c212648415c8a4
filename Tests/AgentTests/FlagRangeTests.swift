import Foundation
import PodstartTestSupport
import Testing

/// Flag values at and past the ends of their ranges (#16.1): `validate()` refuses them with a
/// usage error (status 64) naming the flag and the range, before any work starts. They used to
/// trap (exit 132) converting the value, or overflow later in the store's arithmetic.
@Suite struct FlagRangeTests {
    static func podstart(_ arguments: [String]) throws -> (Int32, String) {
        try Command.run(try LocalEnvironment.podstartBinary(), arguments)
    }

    @Test func agentDurationAndRetentionFlagsOutsideTheirRangeAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["--start-timeout", "1e30s"], "--start-timeout"),
            (["--start-timeout", "9223372036854775807"], "--start-timeout"),
            (["--start-timeout", "8d"], "--start-timeout"),
            (["--cri-poll-interval", "1e300"], "--cri-poll-interval"),
            (["--cri-poll-interval", "1ms"], "--cri-poll-interval: 1ms is outside 10ms…1h"),
            (["--cri-idle-poll-interval", "nan"], "--cri-idle-poll-interval"),
            (["--startup-window", "inf"], "--startup-window"),
            (["--startup-window", "0x10s"], "--startup-window"),
            (["--startup-window", "-1s"], "--startup-window"),
            (["--retention-hours", "9223372036854775807"], "--retention-hours must be from 0 to 87600"),
            (["--retention-hours", "-1"], "--retention-hours"),
            (["--state-max-mib", "9223372036854775807"], "--state-max-mib must be from 0 to 1048576"),
            (["--pod-events-limit", "0"], "--pod-events-limit must be from 1 to 1000"),
            (["--pod-events-limit", "1001"], "--pod-events-limit must be from 1 to 1000"),
            (["--pod-events-limit", "9223372036854775808"], "--pod-events-limit"),
        ]
        for (flags, message) in cases {
            let (status, output) = try Self.podstart(["agent", "--no-kernel"] + flags)
            #expect(status == 64, "\(flags): status \(status)\n\(output)")
            #expect(output.contains(message), "\(flags): \(output)")
        }
    }

    @Test func traceAndProbeDurationsOutsideTheirRangeAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["trace", "--image", "x", "--timeout", "1e30s"], "--timeout"),
            (["trace", "--image", "x", "--probe-period", "99999999h"], "--probe-period"),
            (["probe", "--duration", "1e300"], "--duration must be more than 0 and at most"),
            (["probe", "--duration", "nan"], "--duration"),
        ]
        for (arguments, message) in cases {
            let (status, output) = try Self.podstart(arguments)
            #expect(status == 64, "\(arguments): status \(status)\n\(output)")
            #expect(output.contains(message), "\(arguments): \(output)")
        }
    }

    @Test func tracePodAndProbeNameFlagsThatDoNotFitAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["trace", "--pod", "web-0"], "--pod wants NAMESPACE/NAME"),
            (["trace", "--pod", "default/"], "--pod wants NAMESPACE/NAME"),
            (["trace", "--pod", "a/b/c"], "--pod wants NAMESPACE/NAME"),
            (["trace", "--pod", "default/web-0", "--image", "x"], "give --pod NAMESPACE/NAME"),
            (["trace", "--pod", "default/web-0", "--ready-file", "/tmp/ready"], "--ready-file starts a pod of podstart's own"),
            (["trace", "--pod", "default/web-0", "--force"], "--force starts a pod of podstart's own"),
            (["trace", "--pod", "default/web-0", "--timeout", "0s"], "--timeout"),
            (["trace", "--image", "x", "--kubeconfig", "k"], "go with --pod"),
            (["trace", "--image", "x", "--kubelet-ca-file", "ca"], "go with --pod"),
            (["trace", "--image", "x", "--no-pod-events"], "--no-pod-events and --pod-events-limit go with --pod"),
            (["trace", "--pod", "default/web-0", "--pod-events-limit", "0"], "--pod-events-limit must be from 1 to 1000"),
            (["probe", "--pod", ""], "--pod wants a name"),
            (["probe", "--container", ""], "--container wants a name"),
        ]
        for (arguments, message) in cases {
            let (status, output) = try Self.podstart(arguments)
            #expect(status == 64, "\(arguments): status \(status)\n\(output)")
            #expect(output.contains(message), "\(arguments): \(output)")
        }
    }
}
