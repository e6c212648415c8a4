import Foundation
import PodstartCore

/// What to start: one pod with one container, and how to tell it is ready.
public struct PodStartOptions: Sendable {
    /// The image as a user writes it in a pod spec (`127.0.0.1:5000/app:1`, `busybox:1.36`).
    public var image: String
    /// Overrides the image's entrypoint (the pod spec's `command`); empty = the image's.
    public var command: [String] = []
    /// The pod spec's `args`.
    public var args: [String] = []
    public var env: [ContainerConfig.EnvVar] = []
    public var readiness: ReadinessCheck = .running
    /// Time between readiness checks, like the kubelet's `periodSeconds` (finer by default, since
    /// the probe phase can be no more precise than this).
    public var probePeriod: Duration = .milliseconds(100)
    /// Limit of one readiness check (`timeoutSeconds`).
    public var probeTimeout: Duration = .seconds(1)
    /// Limit of the whole start, from RunPodSandbox to ready.
    public var timeout: Duration = .seconds(300)
    /// Remove the image (and so its content and snapshots) first, so the pull is real.
    public var cold: Bool = false
    public var pod: PodIdentity
    public var containerName: String = "main"
    /// Parent of the pods' log directories (`/var/log/pods` on a node).
    public var logRoot: String
    /// cgroupfs parent of the pod cgroups. Not `/kubepods`: a kubelet on the same node would treat
    /// pod cgroups there that it does not know as orphans.
    public var cgroupRoot: String = "/podstart"
    /// The pod's `hostNetwork` / `hostPID` (node agents, like node-exporter).
    public var hostNetwork = false
    public var hostPID = false
    /// Host paths bind-mounted into the container, as hostPath volumes.
    public var mounts: [ContainerConfig.Mount] = []
    public var readOnlyRootFilesystem = false
    /// securityContext.capabilities of the container; nil = the runtime's default set.
    public var capabilities: ContainerConfig.Capabilities?
    /// The pod's init containers: each pulled if missing, created, started and waited for until it
    /// exits (code 0, else the start fails), one after the other before the container, as the
    /// kubelet runs them. Pod-level settings (network, PID namespace) are the pod's; the
    /// container-level ones above are the container's only.
    public var initContainers: [InitContainer] = []

    /// One init container of the pod spec.
    public struct InitContainer: Sendable {
        public var name: String
        /// The image as written in the pod spec.
        public var image: String
        public var command: [String]
        public var args: [String]
        public init(name: String, image: String, command: [String] = [], args: [String] = []) {
            self.name = name
            self.image = image
            self.command = command
            self.args = args
        }
    }

    public init(image: String, pod: PodIdentity = PodStartOptions.newPod()) {
        self.image = image
        self.pod = pod
        let env = ProcessInfo.processInfo.environment["PODSTART_POD_LOG_DIR"]
        self.logRoot = env.flatMap { $0.isEmpty ? nil : $0 } ?? "/var/log/pods"
    }

    /// A fresh pod identity in namespace `podstart` with a random UID, as the API server would
    /// assign one.
    public static func newPod(name: String = "trace") -> PodIdentity {
        let uid = UUID().uuidString.lowercased()
        return PodIdentity(namespace: "podstart", name: "\(name)-\(uid.prefix(8))", uid: uid)
    }

    /// The options an init container is created with: its name, image and command in this pod.
    func forInit(_ c: InitContainer) -> PodStartOptions {
        var o = PodStartOptions(image: c.image, pod: pod)
        o.logRoot = logRoot
        o.cgroupRoot = cgroupRoot
        o.hostNetwork = hostNetwork
        o.hostPID = hostPID
        o.containerName = c.name
        o.command = c.command
        o.args = c.args
        return o
    }

    public var logDirectory: String { "\(logRoot)/\(pod.namespace)_\(pod.name)_\(pod.uid)" }
    public var cgroupParent: String { "\(cgroupRoot)/pod\(pod.uid)" }
}
