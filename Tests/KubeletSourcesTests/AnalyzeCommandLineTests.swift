import Foundation
import PodstartTestSupport
import Testing

/// `podstart analyze` as a CI pipeline runs it: the built binary, its exit status and its output.
@Suite struct AnalyzeCommandLineTests {
    struct Run { var status: Int32; var stdout: String; var stderr: String }

    static func analyze(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try LocalEnvironment.podstartBinary())
        process.arguments = ["analyze"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// The real v1.28 node's log: pod-a's startup line came 26 s after it was Ready, so the p99 of
    /// the SLO breaches 5 s. Without the flag that is a report (exit 0); with it, exit 2.
    @Test func failOnBreachExitsTwoWhenTheSLOIsBreachedOnTheRealNodesLog() throws {
        let log = Samples.referenceDirectory + "/real-cluster-1.28/kubelet.log"
        let plain = try Self.analyze(["--kubelet-log", log, "-o", "json"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let summaryLine = try #require(plain.stdout.split(separator: "\n").last)
        #expect(summaryLine.contains("\"met\":false"), "\(summaryLine)")

        let gated = try Self.analyze(["--kubelet-log", log, "--output", "json", "--fail-on-breach"])
        #expect(gated.status == 2)
        #expect(gated.stderr.contains("pod startup SLO breached"))
        #expect(gated.stdout == plain.stdout, "the report is written either way")
    }

    /// Only the pods whose SLO is within 5 s: the gate lets it through.
    @Test func failOnBreachExitsZeroWhenTheSLOIsMet() throws {
        let log = try String(contentsOfFile: Samples.referenceDirectory + "/real-cluster-1.28/kubelet.log", encoding: .utf8)
        let fast = log.split(separator: "\n").filter { $0.contains("Observed pod startup duration") && $0.contains("pod-e-burst") }
        #expect(fast.count == 10)
        let path = NSTemporaryDirectory() + "podstart-analyze-\(UInt32.random(in: 0 ... .max)).log"
        try (fast.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Self.analyze(["--kubelet-log", path, "-o", "json", "--fail-on-breach"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("\"met\":true"))
    }

    @Test func aBadFlagIsAUsageErrorWithStatus64() throws {
        let run = try Self.analyze(["--kubelet-log", "/dev/null", "--output", "yaml"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("yaml"))
    }

    @Test func aMissingFileIsAFailureWithStatus1NamingIt() throws {
        let run = try Self.analyze(["--kubelet-log", "/nonexistent/kubelet.log"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("/nonexistent/kubelet.log"))
    }
}
