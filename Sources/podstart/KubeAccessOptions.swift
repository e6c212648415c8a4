import ArgumentParser
import Foundation

/// How a command reaches the API server and the kubelet, and which node it is: the agent's
/// pod records and `trace --pod`'s. For `@OptionGroup var kube: KubeAccessOptions`.
struct KubeAccessOptions: ParsableArguments {
    @Option(name: .customLong("kubeconfig"), help: "Outside a cluster: a kubeconfig whose current context reaches the API server (in a pod, the service account is used).")
    var kubeconfig: String?

    @Option(name: .customLong("kubelet-url"), help: "The kubelet (e.g. https://$HOST_IP:10250): its /pods while the API server is unreachable or not configured (the agent also scrapes its /metrics).")
    var kubeletURL: String?

    @Option(name: .customLong("kubelet-token-file"), help: "Bearer token for the kubelet (default: the service account's, when mounted).")
    var kubeletTokenFile: String?

    @Option(name: .customLong("kubelet-ca-file"), help: "CA bundle for the kubelet's serving certificate.")
    var kubeletCAFile: String?

    @Flag(name: .customLong("kubelet-insecure-skip-tls-verify"), help: "Do not verify the kubelet's serving certificate (most kubelets' is self-signed); the connection is still encrypted.")
    var kubeletInsecureSkipTLSVerify = false

    @Option(name: .customLong("node-name"), help: "This node's name as the pods' spec.nodeName says it (default: $NODE_NAME, else the host name).")
    var nodeName: String?

    /// Whether any of these flags was given.
    var anyGiven: Bool {
        kubeconfig != nil || kubeletURL != nil || kubeletTokenFile != nil || kubeletCAFile != nil || kubeletInsecureSkipTLSVerify || nodeName != nil
    }

    /// `--node-name`, else `$NODE_NAME`, else the host name.
    var node: String { nodeName ?? ProcessInfo.processInfo.environment["NODE_NAME"] ?? ProcessInfo.processInfo.hostName }
}
