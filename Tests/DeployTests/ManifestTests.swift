import Foundation
import PodstartTestSupport
import Testing

/// deploy/ against the Kubernetes schemas (kubernetes-validate, strict), the Operator's CRDs
/// against our own minimal schema, and the references between the objects
/// (scripts/validate-deploy.py). The ConfigMap's keys are checked against the built binary's
/// `podstart agent --help`.
@Suite struct ManifestTests {
    func validate(_ deploy: String) throws -> (Int32, String) {
        let python = try DeployFiles.requirePython()
        let binary = try LocalEnvironment.podstartBinary()
        return try Command.run(python, [DeployFiles.validator, "--deploy", deploy, "--podstart", binary])
    }

    @Test func everyKustomizationValidatesOffline() throws {
        let (status, output) = try validate(DeployFiles.deploy)
        #expect(status == 0, "validate-deploy.py:\n\(output)")
        // the three ways to apply it, with everything they hold
        #expect(output.contains("checked .: 8 objects"), "\(output)")
        #expect(output.contains("checked base: 7 objects"), "\(output)")
        #expect(output.contains("checked podmonitor: 8 objects"), "\(output)")
        #expect(output.contains("ServiceMonitor/podstart-agent") && output.contains("PodMonitor/podstart-agent"))
    }

    /// Each mistake the validator exists to catch, made in a copy of deploy/: it must say so.
    @Test(arguments: [
        ("base/daemonset.yaml", "hostPID: true", "hostPID: true\n      hostPIDs: true", "'hostPIDs' was unexpected"),
        ("base/daemonset.yaml", "privileged: false", "privileged: true", "privileged: true"),
        ("base/daemonset.yaml", "- DAC_READ_SEARCH", "- DAC_READ_SEARCH\n                - SYS_ADMIN", "beyond the justified set: ['SYS_ADMIN']"),
        ("base/daemonset.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"),
        ("base/daemonset.yaml", "httpGet: {path: /readyz, port: metrics}", "httpGet: {path: /readyz, port: metric}", "readinessProbe port 'metric'"),
        ("base/daemonset.yaml", "fieldPath: spec.nodeName", "fieldPath: metadata.name", "NODE_NAME must come from the downward API"),
        ("base/daemonset.yaml", "cpu: 25m", "cpu: lots", "resources.requests.cpu"),
        ("base/rbac.yaml", "verbs: [get, list, watch]", "verbs: [get, list, watch, delete]", "verbs beyond get/list/watch"),
        ("base/rbac.yaml", "resources: [pods, events]", "resources: [pods, events, secrets]", "resources beyond pods and events"),
        ("base/config.yaml", "log-format: json", "log-format: json\n    log-colour: true", "'log-colour' is not a flag of podstart agent"),
        ("base/service.yaml", "targetPort: metrics", "targetPort: http", "targetPort 'http' is not a container port"),
        ("servicemonitor.yaml", "- port: metrics", "- port: web", "endpoint port 'web' is not a port name"),
        ("servicemonitor.yaml", "interval: 30s", "interval: thirty", "interval"),
        ("podmonitor/podmonitor.yaml", "targetLabel: node", "targetLabel: nodename", "must relabel __meta_kubernetes_pod_node_name to node"),
        ("kustomization.yaml", "  - servicemonitor.yaml", "  - servicemonitor.yaml\n  - podmonitor/podmonitor.yaml", "both a ServiceMonitor and a PodMonitor"),
        ("podmonitor/kustomization.yaml", "  - podmonitor.yaml", "  - podmonitor.yaml\n  - ../servicemonitor.yaml", "outside the kustomization's directory"),
    ])
    func validatorRejects(file: String, find: String, replace: String, expected: String) throws {
        let copy = try DeployFiles.copy(DeployFiles.deploy)
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: copy).deletingLastPathComponent().path) }
        try DeployFiles.edit("\(copy)/\(file)", find, replace)
        let (status, output) = try validate(copy)
        #expect(status == 1, "a broken \(file) passed:\n\(output)")
        #expect(output.contains(expected), "expected an error containing \(expected):\n\(output)")
    }
}
