import ContainerRuntime
import Logging

/// Learns where the runtime keeps its files once it answers (containerd's root, state and
/// snapshotter, from CRI's verbose `Status`) and checks that the containers' rootfs mounts it
/// makes from now on will appear in the agent's mount table. When they will not (a private mount:
/// the node's `/` is not shared, or the DaemonSet's `mountPropagation` was removed) it says so
/// once, with what to do, and `podstart_runtime_info{mount_propagation="private"}` shows it: starts
/// are still recorded, but only containers whose first exec the kernel probes see get a rootfs.
public struct RuntimeLayoutSource: AgentSource {
    public let name = "runtime-layout"
    public var endpoint: CRIEndpoint
    /// Where a found layout goes (the metrics), with the mount check's verdict.
    public var learned: @Sendable (RuntimeLayout, RuntimeMountVisibility) -> Void
    /// The mount check (this process's mount table unless a test gives another).
    public var visibility: @Sendable (String) -> RuntimeMountVisibility

    public init(endpoint: CRIEndpoint, learned: @escaping @Sendable (RuntimeLayout, RuntimeMountVisibility) -> Void) {
        self.endpoint = endpoint
        self.learned = learned
        visibility = { RuntimeMountVisibility.current(taskDirectory: $0, runtimePid: endpoint.runtimePid()) }
    }

    /// Logged (once, at warning) when new rootfs mounts will not reach the agent's mount table.
    public static let privateMountMessage = "the runtime's new rootfs mounts will not reach the agent's mount table (private mount)"

    public var logMetadata: Logger.Metadata { ["cri": "\(endpoint)"] }
    public var outageMessage: String { "cannot ask the runtime for its layout; retrying" }

    public func run(_ context: SourceContext) async throws {
        let reported = try await CRIClient.withClient(endpoint: endpoint) { try await $0.runtimeLayout() }
        context.up()
        let layout = reported ?? RuntimeLayout(containerdRoot: nil, containerdState: nil, snapshotter: nil)
        let verdict = layout.taskDirectory.map(visibility)
            ?? .unknown(reason: "the runtime's CRI Status reports no state directory (not containerd?)")
        learned(layout, verdict)
        var fields: Logger.Metadata = [
            "containerdRoot": "\(layout.containerdRoot ?? "unknown")", "containerdState": "\(layout.containerdState ?? "unknown")",
            "snapshotter": "\(layout.snapshotter ?? "unknown")", "mountPropagation": "\(verdict.label)",
        ]
        switch verdict {
        case .notPropagated(let mountPoint):
            fields["mountPoint"] = "\(mountPoint)"
            fields["consequence"] = "accesses of containers whose first exec the kernel probes do not see get no layer and no image bytes"
            fields["fix"] = "mount the state directory with mountPropagation: HostToContainer and make the node's / shared (mount --make-rshared /); docs/deployment.md, Nodes without systemd"
            context.logger.warning("\(Self.privateMountMessage)", metadata: fields)
        case .unknown(let reason):
            fields["reason"] = "\(reason)"
            context.logger.notice("runtime layout learned; whether new rootfs mounts are visible is unknown", metadata: fields)
        case .sameNamespace, .propagated:
            context.logger.info("runtime layout learned", metadata: fields)
        }
    }
}
