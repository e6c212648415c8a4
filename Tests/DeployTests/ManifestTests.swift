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
        #expect(output.contains("checked .: 10 objects"), "\(output)")
        #expect(output.contains("checked base: 9 objects"), "\(output)")
        #expect(output.contains("checked podmonitor: 10 objects"), "\(output)")
        #expect(output.contains("ServiceMonitor/podstart-agent") && output.contains("PodMonitor/podstart-agent"))
        // one overlay per distribution's containerd, and one for nodes without shared mounts,
        // each resolved (its JSON6902 patches applied) and checked like the base
        for overlay in ["kubeadm", "k3s", "rke2", "microk8s", "no-propagation"] {
            #expect(output.contains("checked overlays/\(overlay): 9 objects"), "\(output)")
        }
    }

    /// Each mistake the validator exists to catch, made in a copy of deploy/: it must say so.
    @Test(arguments: [
        ("base/daemonset.yaml", "hostPID: true", "hostPID: true\n      hostPIDs: true", "'hostPIDs' was unexpected"),
        ("base/daemonset.yaml", "privileged: false", "privileged: true", "privileged: true"),
        ("base/daemonset.yaml", "- DAC_READ_SEARCH", "- DAC_READ_SEARCH\n                - SYS_ADMIN", "beyond the justified set: ['SYS_ADMIN']"),
        ("base/daemonset.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"),
        ("base/daemonset.yaml", "httpGet: {path: /readyz, port: metrics}", "httpGet: {path: /readyz, port: metric}", "readinessProbe port 'metric'"),
        ("base/daemonset.yaml", "fieldPath: spec.nodeName", "fieldPath: metadata.name", "NODE_NAME must come from the downward API"),
        ("base/daemonset.yaml", "fieldPath: status.hostIP", "fieldPath: status.podIP", "HOST_IP (the kubelet's address) must come from the downward API"),
        ("base/daemonset.yaml", "cpu: 25m", "cpu: lots", "resources.requests.cpu"),
        ("base/rbac.yaml", "verbs: [list, watch]", "verbs: [list, watch, delete]", "verbs beyond list/watch for ['pods']"),
        ("base/rbac.yaml", "verbs: [get]", "verbs: [get, create]", "verbs beyond get for ['nodes/metrics', 'nodes/proxy']"),
        ("base/rbac.yaml", "resources: [pods]", "resources: [pods, secrets]", "resources beyond pods, events and the kubelet's"),
        // the pods' events: one list per start, never a watch of the cluster's events
        ("base/rbac.yaml", "resources: [events]\n    verbs: [list]", "resources: [events]\n    verbs: [list, watch]", "verbs beyond list for ['events']"),
        ("base/config.yaml", "log-format: json", "log-format: json\n    log-colour: true", "'log-colour' is not a flag of podstart agent"),
        // issue #16: /v1 authenticated in the shipped deployment, with the RBAC that needs
        ("base/config.yaml", "api-auth: delegated", "api-auth: none", "/v1 served without authentication to the pod network"),
        ("base/config.yaml", "api-auth: delegated", "api-auth: token\n    api-token-file: /etc/podstart/token", "the token would cross the network in clear text"),
        ("base/rbac.yaml", "name: system:auth-delegator", "name: system:basic-user", "bound to ClusterRole system:auth-delegator"),
        ("base/rbac.yaml", "nonResourceURLs: [\"/v1\", \"/v1/*\"]", "nonResourceURLs: [\"/v1\", \"/v1/*\", \"/debug/*\"]", "nonResourceURLs beyond the agent's /v1"),
        ("base/rbac.yaml", "nonResourceURLs: [\"/v1\", \"/v1/*\"]\n    verbs: [get]", "nonResourceURLs: [\"/v1\", \"/v1/*\"]\n    verbs: [get, post]", "verbs beyond get for the agent's /v1"),
        ("base/service.yaml", "targetPort: metrics", "targetPort: http", "targetPort 'http' is not a container port"),
        ("servicemonitor.yaml", "- port: metrics", "- port: web", "endpoint port 'web' is not a port name"),
        ("servicemonitor.yaml", "interval: 30s", "interval: thirty", "interval"),
        ("podmonitor/podmonitor.yaml", "targetLabel: node", "targetLabel: nodename", "must relabel __meta_kubernetes_pod_node_name to node"),
        ("kustomization.yaml", "  - servicemonitor.yaml", "  - servicemonitor.yaml\n  - podmonitor/podmonitor.yaml", "both a ServiceMonitor and a PodMonitor"),
        ("podmonitor/kustomization.yaml", "  - podmonitor.yaml", "  - podmonitor.yaml\n  - ../servicemonitor.yaml", "outside the kustomization's directory"),
        // #21: overlays whose socket mount and cri-endpoint disagree, log files not mounted, patches
        // that no longer fit the base or that the script cannot resolve, type checks that fail a
        // pod where a path is absent, propagation left out without saying so
        ("overlays/k3s/config.yaml", "cri-endpoint: unix:///run/k3s/containerd/containerd.sock", "cri-endpoint: unix:///run/containerd/containerd.sock", "cri-endpoint /run/containerd/containerd.sock is not under any hostPath mount"),
        ("overlays/rke2/config.yaml", "kubelet-log: /var/lib/rancher/rke2/agent/logs/kubelet.log", "kubelet-log: /var/lib/rancher/rke2/agent/log/kubelet.log", "kubelet-log /var/lib/rancher/rke2/agent/log/kubelet.log is not under any hostPath mount"),
        ("overlays/microk8s/daemonset.yaml", "volumes/5/name, value: containerd-run}", "volumes/5/name, value: containerd-lib}", "test /spec/template/spec/volumes/5/name: is 'containerd-run', not 'containerd-lib'"),
        ("overlays/k3s/daemonset.yaml", "value: {path: /run/k3s/containerd}}", "value: {path: /run/k3s/containerd, type: Directory}}", "hostPath /run/k3s/containerd has type Directory"),
        ("overlays/k3s/daemonset.yaml", "mountPath, value: /var/lib/rancher/k3s/agent/containerd}", "mountPath, value: /var/lib/containerd}", "mount host paths at the same path"),
        ("overlays/kubeadm/kustomization.yaml", "  - ../../base\n", "  - ../../base\npatches:\n  - patch: '{spec: {template: {spec: {hostNetwork: true}}}}'\n    target: {kind: DaemonSet, name: podstart-agent}\n", "strategic merge patches are not supported"),
        ("overlays/kubeadm/kustomization.yaml", "  - ../../base\n", "  - ../../base\npatchesStrategicMerge:\n  - patch.yaml\n", "patchesStrategicMerge is not supported"),
        ("overlays/no-propagation/daemonset.yaml", "podstart.dev/mount-propagation: none", "podstart.dev/mount-propagation: unknown", "has no mountPropagation: HostToContainer"),
        ("overlays/k3s/kustomization.yaml", "{kind: ConfigMap, name: podstart-agent}", "{kind: ConfigMap, name: podstart}", "matches no object"),
        ("base/daemonset.yaml", "mountPropagation: HostToContainer", "mountPropagation: Bidirectional", "mountPropagation Bidirectional"),
        ("base/daemonset.yaml", "hostPath: {path: /var/lib/containerd}", "hostPath: {path: /var/lib/containerd, type: Directory}", "hostPath /var/lib/containerd has type Directory"),
        ("base/daemonset.yaml", "hostPath: {path: /run/log/journal, type: DirectoryOrCreate}", "hostPath: {path: /run/log/journal, type: Socket}", "has type Socket"),
        ("base/daemonset.yaml", "{name: logs, mountPath: /var/log, readOnly: true}", "{name: logs, mountPath: /var/log}", "(/var/log) must be readOnly"),
        // the journal source reads the node's journals: both directories mounted, read-only
        ("base/daemonset.yaml", "            - {name: journal-run, mountPath: /run/log/journal, readOnly: true}\n", "", "journal: true reads /run/log/journal, which is not under any hostPath mount"),
        ("base/daemonset.yaml", "{name: journal-run, mountPath: /run/log/journal, readOnly: true}", "{name: journal-run, mountPath: /run/log/journal}", "(/run/log/journal) must be readOnly"),
        ("overlays/k3s/config.yaml", "      journal: true\n", "", "journal-directory and journal-*-unit are read only with journal: true"),
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
