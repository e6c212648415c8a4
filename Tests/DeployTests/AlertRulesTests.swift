import Foundation
import PodstartTestSupport
import Testing

/// alerts/: promtool checks the rules and runs their unit tests, which cover every alert both
/// firing and not firing.
@Suite struct AlertRulesTests {
    static let alertNames = [
        "PodStartupSLOBreach", "PodStartPullsDominate", "PodStartDecompressionDominatesPulls", "PodStartLongReadinessWaits",
        "PodstartProbeEventsLost", "PodstartAgentDown", "PodstartAgentAbsent", "PodstartSourceFailing", "PodstartKernelProbesOff",
        "PodstartProbeEventsDropped", "PodstartProbeEventsRejected", "PodstartStoreUnhealthy", "PodstartStoreSaveFailures",
        "PodstartSourceStreamClosing", "PodStartNodeWarningEvents",
    ]

    @Test func promtoolChecksTheRules() throws {
        let promtool = try DeployFiles.requirePromtool()
        let (status, output) = try Command.run(promtool, ["check", "rules", DeployFiles.rules])
        #expect(status == 0, "\(output)")
        #expect(output.contains("SUCCESS: \(Self.alertNames.count) rules found"), "\(output)")
        let rules = try String(contentsOfFile: DeployFiles.rules, encoding: .utf8)
        for name in Self.alertNames { #expect(rules.contains("- alert: \(name)\n"), "no rule \(name)") }
        // every alert tells the one who is paged what to do
        #expect(rules.components(separatedBy: "runbook: >-").count - 1 == Self.alertNames.count)
    }

    @Test func promtoolUnitTestsPass() throws {
        let promtool = try DeployFiles.requirePromtool()
        let (status, output) = try Command.run(promtool, ["test", "rules", DeployFiles.ruleTests])
        #expect(status == 0 && output.contains("SUCCESS"), "\(output)")
    }

    /// Each alert has a case where it fires and one where it must not (an empty exp_alerts at an
    /// evaluation time of its own).
    @Test func everyAlertIsTestedFiringAndNotFiring() throws {
        let text = try String(contentsOfFile: DeployFiles.ruleTests, encoding: .utf8)
        var firing = Set<String>(), silent = Set<String>()
        var current: String?
        for line in text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("alertname: ") { current = String(line.dropFirst("alertname: ".count)) }
            if let current, line == "exp_alerts: []" { silent.insert(current) }
            if let current, line.hasPrefix("- exp_labels:") { firing.insert(current) }
        }
        for name in Self.alertNames {
            #expect(firing.contains(name), "\(name) is never tested firing")
            #expect(silent.contains(name), "\(name) is never tested not firing")
        }
    }

    /// The unit tests can fail: with the SLO threshold moved from 5 s to 50 s the breach no longer
    /// fires, and promtool says so.
    @Test func unitTestsFailWhenARuleChanges() throws {
        let promtool = try DeployFiles.requirePromtool()
        let copy = try DeployFiles.copy("\(DeployFiles.root)/alerts")
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: copy).deletingLastPathComponent().path) }
        try DeployFiles.edit("\(copy)/podstart.rules.yaml", "[5m]))) > 5\n", "[5m]))) > 50\n")
        let (status, output) = try Command.run(promtool, ["test", "rules", "\(copy)/podstart.rules.test.yaml"])
        #expect(status != 0, "promtool test passed with a changed threshold:\n\(output)")
        #expect(output.contains("alertname: PodStartupSLOBreach"), "\(output)")
    }
}
