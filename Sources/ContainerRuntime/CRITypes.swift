import PodstartCore
/// The pod a sandbox or container belongs to, as the kubelet names it: the same value the trace
/// JSON carries.
public typealias PodIdentity = PodStartTrace.Pod

extension PodStartTrace.Pod {
    /// The kubelet's `io.kubernetes.pod.*` labels (docs/inputs.md#labels-and-annotations), or nil when one is missing.
    public init?(labels: [String: String]) {
        guard let ns = labels[KubeletLabels.podNamespace], let name = labels[KubeletLabels.podName],
              let uid = labels[KubeletLabels.podUID] else { return nil }
        self.init(namespace: ns, name: name, uid: uid)
    }
}

/// Label and annotation keys the kubelet and containerd put on CRI objects
/// (docs/inputs.md#labels-and-annotations; kubernetes/kubernetes pkg/kubelet/kuberuntime/labels.go).
public enum KubeletLabels {
    public static let podName = "io.kubernetes.pod.name"
    public static let podNamespace = "io.kubernetes.pod.namespace"
    public static let podUID = "io.kubernetes.pod.uid"
    public static let containerName = "io.kubernetes.container.name"
    public static let containerHash = "io.kubernetes.container.hash"
    public static let containerRestartCount = "io.kubernetes.container.restartCount"
    public static let terminationMessagePath = "io.kubernetes.container.terminationMessagePath"
    public static let terminationMessagePolicy = "io.kubernetes.container.terminationMessagePolicy"
    public static let terminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
    public static let containerType = "io.kubernetes.container.type"
    public static let configSeen = "kubernetes.io/config.seen"
    public static let configSource = "kubernetes.io/config.source"
    /// containerd's own label on its containers: `sandbox` or `container`.
    public static let criContainerdKind = "io.cri-containerd.kind"
}

/// `VersionResponse`.
public struct RuntimeVersion: Sendable, Hashable {
    public var runtimeName: String
    public var runtimeVersion: String
    public var runtimeAPIVersion: String
}

public enum SandboxState: String, Sendable, Hashable {
    case ready, notReady
}

public enum ContainerState: String, Sendable, Hashable {
    case created, running, exited, unknown
}

/// A pod sandbox as `ListPodSandbox` / `PodSandboxStatus` describe it.
public struct PodSandboxInfo: Sendable, Hashable {
    public var id: String
    /// From the sandbox metadata (name, namespace, uid), which the kubelet fills from the pod.
    public var pod: PodIdentity
    public var attempt: UInt32
    public var state: SandboxState
    /// Nanoseconds since the Unix epoch.
    public var createdAtUnixNs: Int64
    public var labels: [String: String]
    public var annotations: [String: String]
    public var runtimeHandler: String
    /// The pod's primary IP (PodSandboxStatus only; empty from ListPodSandbox).
    public var ip: String
}

/// Extra facts of `PodSandboxStatus(verbose: true)`: containerd's `info` JSON.
public struct SandboxVerboseInfo: Sendable, Hashable {
    /// Host pid of the pause process.
    public var pid: Int32?
    /// The network namespace the pod's containers share (`/var/run/netns/cni-…`).
    public var networkNamespacePath: String?
    public var snapshotKey: String?
    public var snapshotter: String?
}

/// A container as `ListContainers` describes it.
public struct ContainerInfo: Sendable, Hashable {
    public var id: String
    public var sandboxID: String
    public var name: String
    public var attempt: UInt32
    /// The image as the container was created with it (`ContainerConfig.image.image`).
    public var image: String
    /// Digested reference of the image in use (`repo@sha256:…`) or the image id, per runtime.
    public var imageRef: String
    public var state: ContainerState
    /// Nanoseconds since the Unix epoch.
    public var createdAtUnixNs: Int64
    public var labels: [String: String]
    public var annotations: [String: String]

    /// The pod, from the kubelet's labels on the container.
    public var pod: PodIdentity? { PodIdentity(labels: labels) }
}

/// `ContainerStatus`; times are nanoseconds since the Unix epoch, 0 when not reached.
public struct ContainerStatusInfo: Sendable, Hashable {
    public var id: String
    public var name: String
    public var attempt: UInt32
    public var state: ContainerState
    public var createdAtUnixNs: Int64
    public var startedAtUnixNs: Int64
    public var finishedAtUnixNs: Int64
    /// Meaningful only when `finishedAtUnixNs != 0`.
    public var exitCode: Int32
    public var image: String
    public var imageRef: String
    public var reason: String
    public var message: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var logPath: String
    /// Present when asked with `verbose: true` and the runtime is containerd.
    public var verbose: ContainerVerboseInfo?

    public var pod: PodIdentity? { PodIdentity(labels: labels) }
    public var hasExited: Bool { finishedAtUnixNs != 0 }
}

/// Extra facts of `ContainerStatus(verbose: true)`: containerd's `info` JSON.
public struct ContainerVerboseInfo: Sendable, Hashable {
    public var sandboxID: String?
    /// Host pid of the container's init process; nil or 0 once it exited.
    public var pid: Int32?
    /// The snapshot key of the container's rootfs (the container id for CRI containers).
    public var snapshotKey: String?
    public var snapshotter: String?
}

/// An image as `ListImages` / `ImageStatus` describe it.
public struct ImageInfo: Sendable, Hashable {
    /// The image id: `sha256:<config digest>` for containerd.
    public var id: String
    public var repoTags: [String]
    /// `repo@sha256:<manifest digest>` references.
    public var repoDigests: [String]
    public var sizeBytes: UInt64
    public var pinned: Bool

    /// The manifest digest (`sha256:…`) of the first `repoDigests` reference.
    public var manifestDigest: String? { repoDigests.first.flatMap(ImageReference.digest(in:)) }
}

/// One `GetContainerEvents` message: what happened to which container, with the pod's state.
public struct ContainerEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case created, started, stopped, deleted }
    public var containerID: String
    public var kind: Kind
    public var createdAtUnixNs: Int64
    public var sandbox: PodSandboxInfo?
    public var containers: [ContainerStatusInfo]
}

/// What `RunPodSandbox` (and `PullImage`/`CreateContainer`, which repeat it) is given.
public struct PodSandboxConfig: Sendable, Hashable {
    public var pod: PodIdentity
    public var attempt: UInt32 = 0
    public var hostname: String
    /// Directory the container logs go to (`/var/log/pods/<ns>_<name>_<uid>` on a node).
    public var logDirectory: String
    public var labels: [String: String]
    public var annotations: [String: String]
    /// cgroupfs-style parent cgroup of the pod.
    public var cgroupParent: String
    public var dnsServers: [String] = []
    public var dnsSearches: [String] = []
    public var dnsOptions: [String] = []
    /// The pod's `hostNetwork` / `hostPID`: share the node's network or pid namespace (node agents).
    public var hostNetwork = false
    public var hostPID = false

    public init(pod: PodIdentity, hostname: String, logDirectory: String, labels: [String: String],
                annotations: [String: String], cgroupParent: String) {
        self.pod = pod
        self.hostname = hostname
        self.logDirectory = logDirectory
        self.labels = labels
        self.annotations = annotations
        self.cgroupParent = cgroupParent
    }
}

/// What `CreateContainer` is given.
public struct ContainerConfig: Sendable, Hashable {
    public struct EnvVar: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }
    public var name: String
    public var attempt: UInt32 = 0
    /// The image to run: the kubelet passes the image id `PullImage`/`ImageStatus` returned.
    public var image: String
    /// The image as the user wrote it in the pod spec (`ImageSpec.user_specified_image`).
    public var userSpecifiedImage: String = ""
    /// Entrypoint override (the pod spec's `command`); empty = the image's.
    public var command: [String] = []
    /// The pod spec's `args`; empty = the image's cmd (when `command` is empty too).
    public var args: [String] = []
    public var workingDir: String = ""
    public var env: [EnvVar] = []
    public var labels: [String: String] = [:]
    public var annotations: [String: String] = [:]
    /// Relative to the sandbox's log directory: `<name>/<attempt>.log`.
    public var logPath: String
    /// Host paths bind-mounted into the container (the pod's hostPath volumes).
    public var mounts: [Mount] = []
    /// securityContext.readOnlyRootFilesystem.
    public var readOnlyRootFilesystem = false
    /// securityContext.capabilities (names without `CAP_`, `ALL` for every one); nil = the
    /// runtime's default set.
    public var capabilities: Capabilities?

    public struct Capabilities: Sendable, Hashable {
        public var add: [String]
        public var drop: [String]
        public init(add: [String] = [], drop: [String] = []) {
            self.add = add
            self.drop = drop
        }
    }
    /// Must repeat the sandbox's `hostNetwork` / `hostPID`, as the kubelet does.
    public var hostNetwork = false
    public var hostPID = false

    /// A bind mount of a host path, as the kubelet makes one for a hostPath volume.
    public struct Mount: Sendable, Hashable {
        public enum Propagation: Sendable, Hashable { case `private`, hostToContainer, bidirectional }
        public var containerPath: String
        public var hostPath: String
        public var readOnly: Bool
        public var propagation: Propagation
        public init(containerPath: String, hostPath: String, readOnly: Bool = true, propagation: Propagation = .private) {
            self.containerPath = containerPath
            self.hostPath = hostPath
            self.readOnly = readOnly
            self.propagation = propagation
        }
    }

    public init(name: String, image: String, logPath: String) {
        self.name = name
        self.image = image
        self.logPath = logPath
    }
}

/// Result of `ExecSync`.
public struct ExecResult: Sendable, Hashable {
    public var exitCode: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
}

/// Where the runtime keeps its files, as containerd's CRI plugin reports its configuration in a
/// verbose `Status` (the `config` document): learned from the runtime, never assumed, since k3s,
/// RKE2, MicroK8s and nodes with a non-default root put them elsewhere.
public struct RuntimeLayout: Sendable, Hashable {
    /// containerd's `root` (`/var/lib/containerd`): content store and snapshots.
    public var containerdRoot: String?
    /// containerd's `state` (`/run/containerd`): tasks, and the containers' rootfs mounts under
    /// `io.containerd.runtime.v2.task/<namespace>/<id>/rootfs`.
    public var containerdState: String?
    /// The snapshotter the CRI plugin unpacks images with (`overlayfs`, `stargz`, …).
    public var snapshotter: String?

    public init(containerdRoot: String?, containerdState: String?, snapshotter: String?) {
        self.containerdRoot = containerdRoot
        self.containerdState = containerdState
        self.snapshotter = snapshotter
    }

    /// Where the runtime mounts the containers' root file systems (nil when the state is unknown).
    public var taskDirectory: String? { containerdState.map { $0 + "/io.containerd.runtime.v2.task" } }
}
