import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who a container is: its pod, name, image and the kernel-side keys (mount namespace, cgroup id)
/// under which the probes see its processes.
public struct ContainerMetadata: Sendable, Hashable {
    public var containerID: String
    public var sandboxID: String
    /// From the kubelet's labels; nil for containers not made through CRI by a kubelet-like client.
    public var pod: PodIdentity?
    public var containerName: String
    /// The image as the pod spec names it (user_specified_image when the runtime keeps it).
    public var image: String
    /// The runtime's image reference (containerd: the image id `sha256:…` or a repo digest).
    public var imageRef: String
    /// `sha256:<manifest digest>`, when the runtime's image has a repo digest.
    public var imageDigest: String?
    public var state: ContainerState
    /// Exit code, once the container exited.
    public var exitCode: Int32?
    /// Host pid of the container's first process, while it runs.
    public var pid: Int32?
    /// Inode of `/proc/PID/ns/mnt`, learned while the first process ran.
    public var mountNamespaceInode: UInt64?
    /// The container's cgroup path (cgroupfs style, from the runtime spec).
    public var cgroupPath: String?
    /// Inode of the container's cgroup in the unified hierarchy: bpf_get_current_cgroup_id().
    public var cgroupID: UInt64?
}

/// Resolves processes, mount namespaces and cgroup ids to containers and pods, from the runtime's
/// CRI answers, kept current with GetContainerEvents where the runtime has it and by polling
/// ListContainers otherwise (containerd 1.6). Entries outlive their processes, so a container that
/// ran for milliseconds still resolves by cgroup id or mount namespace afterwards; deleted
/// containers are forgotten after `retention`.
public actor ContainerResolver {
    public let endpoint: CRIEndpoint
    public let pollInterval: Duration
    public let retention: Duration
    private var byID: [String: ContainerMetadata] = [:]
    private var byMountNamespace: [UInt64: String] = [:]
    private var byCgroupID: [UInt64: String] = [:]
    private var sandboxes: [String: PodSandboxInfo] = [:]
    private var imageDigests: [String: String] = [:]
    private var deletedAt: [String: UInt64] = [:]
    /// How the resolver is kept current: "events" or "polling".
    public private(set) var mode = "polling"

    public init(endpoint: CRIEndpoint, pollInterval: Duration = .milliseconds(200), retention: Duration = .seconds(120)) {
        self.endpoint = endpoint
        self.pollInterval = pollInterval
        self.retention = retention
    }

    /// Keeps the cache current until cancelled: one full listing, then the event stream, or
    /// listings every `pollInterval` when the runtime has no event stream.
    public func run() async throws {
        try await CRIClient.withClient(endpoint: endpoint) { client in
            try await self.refresh(client)
            do {
                self.mode = "events"
                try await client.watchContainerEvents { event in
                    try await self.refresh(client, only: event.containerID, deleted: event.kind == .deleted)
                }
            } catch let error as CRIError where error.isUnimplemented {
                self.mode = "polling"
                while !Task.isCancelled {
                    try await Task.sleep(for: self.pollInterval)
                    try await self.refresh(client)
                }
            }
        }
    }

    /// One listing through a client of its own (for one-shot use without `run()`).
    public func refresh() async throws {
        try await CRIClient.withClient(endpoint: endpoint) { client in try await self.refresh(client) }
    }

    /// Lists containers and fetches the details of those not known yet or whose state changed.
    func refresh(_ client: CRIClient, only: String? = nil, deleted: Bool = false) async throws {
        let now = Instant.now().monotonicNs
        if let only, deleted {
            deletedAt[only] = now
            return
        }
        let listed = try await client.listContainers()
        let listedIDs = Set(listed.map(\.id))
        for container in listed where only == nil || container.id == only {
            if let known = byID[container.id], known.state == container.state, known.state != .created { continue }
            try await learn(container, client: client)
        }
        if only == nil {
            for id in byID.keys where !listedIDs.contains(id) && deletedAt[id] == nil { deletedAt[id] = now }
        }
        let limit = UInt64(retention.components.seconds) * 1_000_000_000
        for (id, at) in deletedAt where now - at > limit { forget(id) }
    }

    private func learn(_ container: ContainerInfo, client: CRIClient) async throws {
        let status: ContainerStatusInfo
        do {
            status = try await client.containerStatus(id: container.id, verbose: true)
        } catch let error as CRIError where error.isNotFound {
            return
        }
        if sandboxes[container.sandboxID] == nil {
            sandboxes[container.sandboxID] = try? await client.podSandboxStatus(id: container.sandboxID).0
        }
        var entry = byID[container.id] ?? ContainerMetadata(
            containerID: container.id, sandboxID: container.sandboxID,
            pod: container.pod ?? sandboxes[container.sandboxID].map(\.pod),
            containerName: container.name, image: container.image, imageRef: container.imageRef,
            imageDigest: nil, state: container.state)
        entry.state = status.state
        entry.exitCode = status.hasExited ? status.exitCode : nil
        if entry.imageDigest == nil { entry.imageDigest = await digest(of: container.imageRef, client: client) }
        if let pid = status.verbose?.pid, pid > 0 {
            entry.pid = pid
            var st = stat()
            if stat("/proc/\(pid)/ns/mnt", &st) == 0 { entry.mountNamespaceInode = UInt64(st.st_ino) }
            if entry.cgroupPath == nil, let text = ProcFile.read("/proc/\(pid)/cgroup") {
                entry.cgroupPath = CgroupPaths.unifiedPath(procCgroup: text)
            }
        } else {
            entry.pid = nil
        }
        if entry.cgroupPath == nil, let pod = entry.pod {
            // cgroupfs layout podstart and the kubelet (cgroupfs driver) use: <parent>/<id>.
            entry.cgroupPath = Self.findCgroup(containerID: container.id, podUID: pod.uid)
        }
        if entry.cgroupID == nil, let path = entry.cgroupPath { entry.cgroupID = Self.cgroupInode(path) }
        byID[container.id] = entry
        if let ns = entry.mountNamespaceInode { byMountNamespace[ns] = container.id }
        if let cg = entry.cgroupID { byCgroupID[cg] = container.id }
    }

    private func digest(of imageRef: String, client: CRIClient) async -> String? {
        if let known = imageDigests[imageRef] { return known }
        guard let image = try? await client.imageStatus(imageRef),
              let digest = image.repoDigests.first?.split(separator: "@").last.map(String.init) else { return nil }
        imageDigests[imageRef] = digest
        return digest
    }

    private func forget(_ id: String) {
        if let entry = byID.removeValue(forKey: id) {
            if let ns = entry.mountNamespaceInode, byMountNamespace[ns] == id { byMountNamespace[ns] = nil }
            if let cg = entry.cgroupID, byCgroupID[cg] == id { byCgroupID[cg] = nil }
        }
        deletedAt[id] = nil
    }

    // MARK: lookups

    public func metadata(containerID: String) -> ContainerMetadata? { byID[containerID] }
    public func metadata(mountNamespaceInode inode: UInt64) -> ContainerMetadata? { byMountNamespace[inode].flatMap { byID[$0] } }
    public func metadata(cgroupID: UInt64) -> ContainerMetadata? { byCgroupID[cgroupID].flatMap { byID[$0] } }
    public var all: [ContainerMetadata] { Array(byID.values) }

    /// The container of a live process: its cgroup names the container id; failing that (other
    /// cgroup layouts) its mount namespace. Refreshes once when the id is not known yet.
    public func metadata(pid: Int32) async throws -> ContainerMetadata? {
        let cgroupText = ProcFile.read("/proc/\(pid)/cgroup")
        var st = stat()
        let mntns = stat("/proc/\(pid)/ns/mnt", &st) == 0 ? UInt64(st.st_ino) : nil
        func lookup() -> ContainerMetadata? {
            if let text = cgroupText, let id = CgroupPaths.containerID(procCgroup: text), let hit = byID[id] { return hit }
            if let mntns, let hit = metadata(mountNamespaceInode: mntns) { return hit }
            return nil
        }
        if let hit = lookup() { return hit }
        guard cgroupText.flatMap(CgroupPaths.containerID(procCgroup:)) != nil else { return nil }
        try await refresh()
        return lookup()
    }

    // MARK: cgroup helpers

    static func unifiedRoot() -> String {
        var st = stat()
        if stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0 || stat("/sys/fs/cgroup/unified/cgroup.procs", &st) == 0 {
            return "/sys/fs/cgroup/unified"
        }
        return "/sys/fs/cgroup"
    }

    static func cgroupInode(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(unifiedRoot() + path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// `<root>/<any parent>/pod<uid>/<id>` in the unified hierarchy.
    static func findCgroup(containerID: String, podUID: String) -> String? {
        let root = unifiedRoot()
        for parent in ["/podstart", "/kubepods", "/kubepods/burstable", "/kubepods/besteffort"] {
            let path = "\(parent)/pod\(podUID)/\(containerID)"
            var st = stat()
            if stat(root + path, &st) == 0 { return path }
        }
        return nil
    }
}
