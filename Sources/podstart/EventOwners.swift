import ContainerRuntime
import PodstartCore

/// Names the container, and the pod it belongs to, of each kernel event `podstart probe` prints,
/// through the ``ContainerResolver`` (CRI listings, containerd's task events, and the kernel's own
/// exec/fork/exit records, which bind a pid to its container even after it is gone).
actor EventOwners {
    let resolver: ContainerResolver
    let hostMountNamespace: UInt32
    /// Containers by mount namespace number, forgotten when the namespace's init exits (the
    /// kernel may give the number to the next container).
    private var byNamespace: [UInt32: ContainerMetadata] = [:]
    /// Namespaces asked about by pid and not found, with when (a new container is listed within
    /// a poll: ask again after `retryNs`).
    private var missed: [UInt32: UInt64] = [:]
    static let retryNs: UInt64 = 200_000_000

    init(resolver: ContainerResolver, hostMountNamespace: UInt32) {
        self.resolver = resolver
        self.hostMountNamespace = hostMountNamespace
    }

    /// The event's container (nil: a host process, or a container the runtime does not know).
    func owner(of event: KernelEvent) async -> ContainerMetadata? {
        var pid: UInt32, mountNamespace: UInt32?, cgroupID: UInt64 = 0
        switch event {
        case .exec(let e): pid = e.task.pid; mountNamespace = e.task.mountNamespace; cgroupID = e.task.cgroupID
            await resolver.observe(e.task)
        case .fork(let e): pid = e.parent.pid; mountNamespace = e.parent.mountNamespace; cgroupID = e.parent.cgroupID
            await resolver.observe(e.parent)
        case .exit(let e): pid = e.task.pid; mountNamespace = e.task.mountNamespace; cgroupID = e.task.cgroupID
            await resolver.observe(e.task)
            if e.task.namespacePid == 1 {
                let owner = await lookup(pid, mountNamespace, cgroupID)
                byNamespace[e.task.mountNamespace] = nil
                return owner
            }
        case .open(let e): pid = e.task.pid; mountNamespace = e.task.mountNamespace; cgroupID = e.task.cgroupID
        case .writeBegin(let e): pid = e.task.pid; mountNamespace = e.task.mountNamespace; cgroupID = e.task.cgroupID
        case .readRange(let e): pid = e.pid; mountNamespace = e.mountNamespace
        case .blockIO(let e): pid = e.pid; mountNamespace = e.mountNamespace
        case .fuseRequest(let e): pid = e.task.pid; mountNamespace = e.task.mountNamespace; cgroupID = e.task.cgroupID
        }
        return await lookup(pid, mountNamespace, cgroupID)
    }

    private func lookup(_ pid: UInt32, _ mountNamespace: UInt32?, _ cgroupID: UInt64) async -> ContainerMetadata? {
        if let mountNamespace, let known = byNamespace[mountNamespace] { return known }
        if let mountNamespace, mountNamespace != hostMountNamespace,
           let found = await resolver.metadata(mountNamespaceInode: UInt64(mountNamespace)) {
            byNamespace[mountNamespace] = found
            return found
        }
        // the runtime's helpers (runc init) run in the container's cgroup before they unshare
        if cgroupID > 1, let found = await resolver.metadata(cgroupID: cgroupID) { return found }
        guard let mountNamespace, mountNamespace != hostMountNamespace else { return nil }
        let now = Instant.now().monotonicNs
        if let at = missed[mountNamespace], now - at < Self.retryNs { return nil }
        // a container not listed yet: its live process's cgroup names it (and makes the resolver list again)
        if let found = try? await resolver.metadata(pid: Int32(bitPattern: pid)) {
            missed[mountNamespace] = nil
            byNamespace[mountNamespace] = found
            return found
        }
        missed[mountNamespace] = now
        if missed.count > 4096 { missed.removeAll() }
        return nil
    }
}
