import ContainerRuntime

/// How the agent looks at a live process of a container (its mount namespace, the container id
/// its cgroup names): /proc on a node, recorded answers in tests.
public struct ContainerProcesses: Sendable {
    public var mountNamespace: @Sendable (Int32) -> UInt64?
    public var containerID: @Sendable (Int32) -> String?

    public init(mountNamespace: @escaping @Sendable (Int32) -> UInt64?, containerID: @escaping @Sendable (Int32) -> String?) {
        self.mountNamespace = mountNamespace
        self.containerID = containerID
    }

    /// /proc, through ContainerRuntime's one reader of each.
    public static let live = ContainerProcesses(mountNamespace: { ProcessNamespace.mount(pid: $0) },
                                                containerID: { ProcessCgroup.containerID(ofProcess: $0) })
    /// No process is visible (recorded inputs replayed off the node).
    public static let none = ContainerProcesses(mountNamespace: { _ in nil }, containerID: { _ in nil })
}
