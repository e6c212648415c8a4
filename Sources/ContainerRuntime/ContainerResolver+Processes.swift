import PodstartCore

extension ContainerResolver {
    /// How podstart looks at a live process of a container: its mount namespace and its cgroups,
    /// from /proc on a node, recorded answers in tests. The one way pid → container is read: the
    /// resolver's own cache, the agent's hub and CRI listing, and `trace`'s pod start use it.
    public struct Processes: Sendable {
        /// Inode of the process's mount namespace (`/proc/PID/ns/mnt`, the probes' key); nil when
        /// the process is gone or not readable.
        public var mountNamespace: @Sendable (Int32) -> UInt64?
        /// The text of the process's `/proc/PID/cgroup`; nil when it is gone.
        public var cgroups: @Sendable (Int32) -> String?
        /// The overlay the process sees as `/` (from `/proc/PID/mountinfo`); nil when it is gone
        /// or its root is no overlay.
        public var rootfs: @Sendable (Int32) -> OverlayRootfs?

        public init(mountNamespace: @escaping @Sendable (Int32) -> UInt64?, cgroups: @escaping @Sendable (Int32) -> String?,
                    rootfs: @escaping @Sendable (Int32) -> OverlayRootfs? = { OverlayRootfs.root(ofProcess: $0) }) {
            self.mountNamespace = mountNamespace
            self.cgroups = cgroups
            self.rootfs = rootfs
        }

        /// /proc.
        public static let live = Processes(mountNamespace: { ProcessNamespace.mount(pid: $0) },
                                           cgroups: { ProcFile.read("/proc/\($0)/cgroup") })
        /// No process is visible (recorded inputs replayed off the node).
        public static let none = Processes(mountNamespace: { _ in nil }, cgroups: { _ in nil }, rootfs: { _ in nil })

        /// The container id the process's cgroups name (cgroupfs and systemd layouts, v1 and v2),
        /// or nil when the process is gone or in no container's cgroup.
        public func containerID(ofProcess pid: Int32) -> String? {
            cgroups(pid).flatMap { CgroupPaths.containerID(procCgroup: $0) }
        }
    }
}

extension ContainerdContainer {
    /// The pod of a container or sandbox CRI made, from the kubelet's labels on its record; nil
    /// for containers made straight through containerd.
    public var pod: PodIdentity? { PodIdentity(labels: labels) }

    /// Whether CRI made this record for a container, not for a pod sandbox (containerd's label).
    public var isCRIContainer: Bool { labels[KubeletLabels.criContainerdKind] == "container" }

    /// The container's name in its pod spec (the kubelet's label), for containers CRI made.
    public var kubeletContainerName: String? { labels[KubeletLabels.containerName] }
}
