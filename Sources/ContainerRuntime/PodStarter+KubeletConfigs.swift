import PodstartCore

/// The configs the kubelet sends with RunPodSandbox and CreateContainer
/// (docs/inputs.md#labels-and-annotations; kubernetes/kubernetes pkg/kubelet/kuberuntime/labels.go).
extension PodStarter {
    func kubeletSandboxConfig(_ options: PodStartOptions) -> PodSandboxConfig {
        let pod = options.pod
        var config = PodSandboxConfig(
            pod: pod, hostname: pod.name, logDirectory: options.logDirectory,
            labels: [
                KubeletLabels.podName: pod.name,
                KubeletLabels.podNamespace: pod.namespace,
                KubeletLabels.podUID: pod.uid,
                // A pod label of our own, copied to the sandbox like any pod label, so leftovers of
                // an interrupted start can be found.
                "podstart.dev/trace": "true",
            ],
            annotations: [
                KubeletLabels.configSeen: Self.rfc3339Nano(Instant.now().unixNs),
                KubeletLabels.configSource: "api",
            ],
            cgroupParent: options.cgroupParent)
        config.attempt = 0
        config.hostNetwork = options.hostNetwork
        config.hostPID = options.hostPID
        // The kubelet leaves the hostname empty for host-network pods: they share the node's UTS
        // namespace, where runc refuses to set one.
        if options.hostNetwork { config.hostname = "" }
        return config
    }

    /// The sandbox config a start with `options` uses (CreateContainer of extra containers in the
    /// same pod must repeat it).
    public func kubeletSandboxConfigForTests(_ options: PodStartOptions) -> PodSandboxConfig {
        kubeletSandboxConfig(options)
    }

    func kubeletContainerConfig(_ options: PodStartOptions, imageID: String) -> ContainerConfig {
        let pod = options.pod
        var config = ContainerConfig(name: options.containerName, image: imageID,
                                     logPath: "\(options.containerName)/0.log")
        config.userSpecifiedImage = options.image
        config.command = options.command
        config.args = options.args
        config.env = options.env
        config.mounts = options.mounts
        config.readOnlyRootFilesystem = options.readOnlyRootFilesystem
        config.capabilities = options.capabilities
        config.hostNetwork = options.hostNetwork
        config.hostPID = options.hostPID
        config.labels = [
            KubeletLabels.podName: pod.name,
            KubeletLabels.podNamespace: pod.namespace,
            KubeletLabels.podUID: pod.uid,
            KubeletLabels.containerName: options.containerName,
        ]
        var hasher = FNV1a64()
        hasher.add(options.containerName); hasher.add(options.image)
        for part in options.command + options.args { hasher.add(part) }
        config.annotations = [
            KubeletLabels.containerHash: String(hasher.value, radix: 16),
            KubeletLabels.containerRestartCount: "0",
            KubeletLabels.terminationMessagePath: "/dev/termination-log",
            KubeletLabels.terminationMessagePolicy: "File",
            KubeletLabels.terminationGracePeriod: "30",
            KubeletLabels.containerType: "container",
        ]
        return config
    }

    static func rfc3339Nano(_ unixNs: Int64) -> String { Timestamp.rfc3339(unixNanoseconds: unixNs) }
}

/// FNV-1a, 64 bit: a stable stand-in for the kubelet's container hash annotation.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ text: String) {
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
        value ^= 0xff
        value = value &* 0x100_0000_01b3
    }
}
