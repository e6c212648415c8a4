import Foundation
import PodstartCore
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
    /// The containerd namespace (`k8s.io` for CRI, `default` for ctr, …), when learned from
    /// containerd's own API; nil when only CRI was asked.
    public var containerdNamespace: String? = nil
}

/// Resolves processes, mount namespaces and cgroup ids to containers and pods, from the runtime's
/// CRI answers, kept current with GetContainerEvents where the runtime has it and by polling
/// ListContainers otherwise (containerd 1.6). Entries outlive their processes, so a container that
/// ran for milliseconds still resolves by cgroup id or mount namespace afterwards; deleted
/// containers are forgotten after `retention`.
///
/// Where the runtime is containerd, `run()` also follows containerd's own events in every
/// namespace (``apply(_:)``): `ctr run`/nerdctl containers become entries too, and TaskCreate /
/// TaskStart give a container's init pid the moment it exists. Kernel records fed through
/// ``observe(_:)`` (exec, fork, exit: pid → mount namespace, cgroup id) bind that pid to the
/// container's mount namespace and cgroup without /proc, whichever of the two arrives first, so
/// a container that exited within milliseconds still resolves by pid, mount namespace and cgroup.
public actor ContainerResolver {
    public let endpoint: CRIEndpoint
    public let pollInterval: Duration
    public let retention: Duration
    /// How live processes are looked at (/proc on a node); every pid lookup goes through it.
    public nonisolated let processes: Processes
    private var byID: [String: ContainerMetadata] = [:]
    private var byMountNamespace: [UInt64: String] = [:]
    private var byCgroupID: [UInt64: String] = [:]
    private var sandboxes: [String: PodSandboxInfo] = [:]
    private var imageDigests: [String: String] = [:]
    private var deletedAt: [String: UInt64] = [:]
    /// Host pid → container, from containerd's task events and kernel records: kept after the
    /// process is gone (until the container is forgotten or the pid is reused by another one).
    private var byPid: [Int32: String] = [:]
    /// The latest kernel record per pid (pid → mount namespace, cgroup id), oldest evicted first.
    private var kernelRecords: [Int32: KernelRecord] = [:]
    private var kernelRecordOrder: [Int32] = []
    private var kernelRecordHead = 0
    /// The host's and podstart's own mount namespaces (pid 1's may be unreadable in a sandbox):
    /// records in them never bind a container.
    private let hostMountNamespaces: Set<UInt64> = Set(["1", "self"].compactMap(ProcessNamespace.mount(procEntry:)))
    /// Unified-hierarchy index from /proc/self/mountinfo; nil on a v1-only host.
    private let cgroups: CgroupIndex? = try? CgroupIndex()
    /// How the resolver is kept current: "events" or "polling".
    public private(set) var mode = "polling"
    /// True while `run()` follows containerd's own event stream.
    public private(set) var followsContainerd = false
    /// Events from containerd whose payload did not decode.
    public private(set) var malformedContainerdEvents = 0
    /// How many kernel records are kept (the newest per pid).
    public static let kernelRecordLimit = 65536

    struct KernelRecord {
        var mountNamespace: UInt64
        var cgroupID: UInt64
    }

    public init(endpoint: CRIEndpoint, pollInterval: Duration = .milliseconds(200), retention: Duration = .seconds(120),
                processes: Processes = .live) {
        self.endpoint = endpoint
        self.pollInterval = pollInterval
        self.retention = retention
        self.processes = processes
    }

    /// Keeps the cache current until cancelled: one full listing, then the event stream, or
    /// listings every `pollInterval` when the runtime has no event stream; alongside, containerd's
    /// own events (``followContainerd()``) when the runtime is containerd.
    /// Cancelling it ends it at once with `CancellationError`, whatever the transport made of a
    /// call it cut short (grpc-swift-2 reports some as "unknown: The transport threw an unexpected
    /// error", its issue #9). The work winds down in the background: about once in a hundred
    /// cancellations a gRPC client's shutdown waited more than a minute, and a caller that
    /// cancelled must not wait for it.
    public func run() async throws {
        let (ended, continuation) = AsyncThrowingStream<Never, Error>.makeStream()
        let work = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.followCRI() }
                    group.addTask { try await self.followContainerd() }
                    for try await _ in group {}
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        defer { work.cancel() }
        do {
            for try await _ in ended {}  // ends when the work does, or at once when cancelled
        } catch where Task.isCancelled {
            throw CancellationError()
        }
        try Task.checkCancellation()
    }

    /// Follows containerd's event stream (every namespace) until cancelled, after listing what
    /// exists. Returns at once when the runtime is not containerd (the API is unimplemented);
    /// throws, naming the socket, when containerd goes away.
    public func followContainerd() async throws {
        let client = try ContainerdClient(endpoint: endpoint)
        defer { client.close() }
        let events = client.events()
        do {
            for namespace in try await client.namespaces() {
                let tasks = try await client.tasks(namespace: namespace)
                for container in try await client.containers(namespace: namespace) {
                    learn(container, namespace: namespace)
                    if let task = tasks.first(where: { $0.containerID == container.id }) {
                        switch task.status {
                        case .stopped: exited(namespace: namespace, id: container.id, status: task.exitStatus)
                        default: started(namespace: namespace, id: container.id, pid: task.pid, running: task.status != .created)
                        }
                    }
                }
            }
        } catch let error as CRIError where error.isUnimplemented {
            return
        }
        followsContainerd = true
        defer { followsContainerd = false }
        for try await event in events {
            if case let .containerCreate(id, _, _) = event.payload, byID[id]?.containerdNamespace == nil {
                // The record has the labels (CRI containers: the pod) the event lacks.
                if let record = try? await client.container(namespace: event.namespace, id: id) {
                    learn(record, namespace: event.namespace)
                }
            }
            apply(event)
        }
    }

    private func followCRI() async throws {
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
            if let known = byID[container.id], known.state == container.state, known.state != .created,
               !known.sandboxID.isEmpty { continue }
            try await learn(container, client: client)
        }
        if only == nil {
            // Containers known from containerd's own events leave through their ContainerDelete.
            for (id, entry) in byID where !listedIDs.contains(id) && deletedAt[id] == nil && entry.containerdNamespace == nil {
                deletedAt[id] = now
            }
        }
        // The clock again: while this refresh waited on the runtime, a deletion event may have
        // been stamped later than `now` (an actor method re-enters at every await).
        let limit = UInt64(retention.components.seconds) * 1_000_000_000
        let checked = Instant.now().monotonicNs
        for (id, at) in deletedAt where checked > at && checked - at > limit { forget(id) }
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
        // An entry made from containerd's events first lacks what only CRI knows.
        entry.sandboxID = container.sandboxID
        entry.containerName = container.name
        entry.image = container.image
        entry.imageRef = container.imageRef
        if let pod = container.pod ?? sandboxes[container.sandboxID].map(\.pod) { entry.pod = pod }
        entry.state = status.state
        entry.exitCode = status.hasExited ? status.exitCode : nil
        if entry.imageDigest == nil { entry.imageDigest = await digest(of: container.imageRef, client: client) }
        if let pid = status.verbose?.pid, pid > 0 {
            entry.pid = pid
            if let ns = processes.mountNamespace(pid) { entry.mountNamespaceInode = ns }
            if entry.cgroupPath == nil, let text = processes.cgroups(pid) {
                entry.cgroupPath = CgroupPaths.unifiedPath(procCgroup: text)
            }
        } else {
            entry.pid = nil
        }
        if entry.cgroupPath == nil, let pod = entry.pod {
            // cgroupfs layout podstart and the kubelet (cgroupfs driver) use: <parent>/<id>.
            entry.cgroupPath = findCgroup(containerID: container.id, podUID: pod.uid)
        }
        if entry.cgroupID == nil, let path = entry.cgroupPath { entry.cgroupID = cgroupInode(path) }
        byID[container.id] = entry
        if let ns = entry.mountNamespaceInode { byMountNamespace[ns] = container.id }
        if let cg = entry.cgroupID { byCgroupID[cg] = container.id }
    }

    // MARK: containerd events and kernel records

    /// Updates the cache from one containerd event (what ``followContainerd()`` does with each;
    /// public so a caller with its own stream can feed it).
    public func apply(_ event: ContainerdEvent) {
        let ns = event.namespace
        switch event.payload {
        case let .containerCreate(id, image, _):
            if byID[id] == nil {
                learn(ContainerdContainer(id: id, image: image, labels: [:], runtime: "", snapshotter: "",
                                          snapshotKey: "", createdAt: event.timestamp, updatedAt: event.timestamp),
                      namespace: ns)
            }
        case let .containerUpdate(id, image, labels):
            if var entry = byID[id] {
                if entry.pod == nil { entry.pod = PodIdentity(labels: labels) }
                if !image.isEmpty, entry.image.isEmpty { entry.image = image }
                byID[id] = entry
            }
        case let .taskCreate(id, _, pid, _):
            started(namespace: ns, id: id, pid: pid, running: false)
        case let .taskStart(id, pid):
            started(namespace: ns, id: id, pid: pid, running: true)
        case let .taskExit(id, execID, _, status, _) where execID.isEmpty:
            exited(namespace: ns, id: id, status: status)
        case let .taskDelete(id, _, status, _):
            if let entry = byID[id], entry.state != .exited { exited(namespace: ns, id: id, status: status) }
        case let .containerDelete(id):
            if byID[id] != nil, deletedAt[id] == nil { deletedAt[id] = Instant.now().monotonicNs }
        case .malformed:
            malformedContainerdEvents += 1
        default:
            break
        }
    }

    /// Takes one kernel record's task (exec, fork, exit, …): the pid's mount namespace and cgroup
    /// id. Binds them to the container whose init pid it is (from TaskCreate/TaskStart, before or
    /// after this record), and the pid to the container whose mount namespace or cgroup it is in,
    /// so the pid resolves after the process is gone.
    public func observe(_ task: TaskContext) {
        let pid = Int32(bitPattern: task.pid)
        let record = KernelRecord(mountNamespace: UInt64(task.mountNamespace), cgroupID: task.cgroupID)
        if kernelRecords.updateValue(record, forKey: pid) == nil { remember(pid) }
        if let id = byPid[pid], byID[id] != nil {
            bind(id, record)
        } else if let id = byMountNamespace[record.mountNamespace] {
            byPid[pid] = id
        } else if record.cgroupID > 1, let id = byCgroupID[record.cgroupID] ?? containerID(cgroupID: record.cgroupID) {
            // The runtime moves its own helpers (runc init before it unshares) into the
            // container's cgroup: the cgroup says which container, not which mount namespace.
            if var entry = byID[id], entry.cgroupID == nil {
                entry.cgroupID = record.cgroupID
                byCgroupID[record.cgroupID] = id
                if entry.cgroupPath == nil { entry.cgroupPath = cgroups?.path(cgroupID: record.cgroupID) }
                byID[id] = entry
            }
            if !hostMountNamespaces.contains(record.mountNamespace) { byPid[pid] = id }
        }
    }

    private func remember(_ pid: Int32) {
        if kernelRecordOrder.count < Self.kernelRecordLimit {
            kernelRecordOrder.append(pid)
            return
        }
        let evicted = kernelRecordOrder[kernelRecordHead]
        kernelRecordOrder[kernelRecordHead] = pid
        kernelRecordHead = (kernelRecordHead + 1) % Self.kernelRecordLimit
        if evicted != pid { kernelRecords[evicted] = nil }
    }

    /// Binds the mount namespace and cgroup of a record of the container's init pid (which
    /// exists only inside the container's namespaces) to the container.
    private func bind(_ id: String, _ record: KernelRecord) {
        guard var entry = byID[id], record.mountNamespace != 0, !hostMountNamespaces.contains(record.mountNamespace) else { return }
        if entry.mountNamespaceInode == nil {
            entry.mountNamespaceInode = record.mountNamespace
            byMountNamespace[record.mountNamespace] = id
        }
        // 1 is the root cgroup, and what the probes report where only v1 hierarchies exist.
        if entry.cgroupID == nil, record.cgroupID > 1 {
            entry.cgroupID = record.cgroupID
            byCgroupID[record.cgroupID] = id
            if entry.cgroupPath == nil { entry.cgroupPath = cgroups?.path(cgroupID: record.cgroupID) }
        }
        byID[id] = entry
    }

    /// A containerd container record → an entry (pod from the kubelet's labels when CRI made it).
    private func learn(_ container: ContainerdContainer, namespace: String) {
        var entry = byID[container.id] ?? ContainerMetadata(
            containerID: container.id, sandboxID: "",
            pod: container.pod,
            // a pod's sandbox (pause) container has no container name: "POD", as the kubelet named it
            containerName: container.kubeletContainerName ?? (container.labels[KubeletLabels.criContainerdKind] == "sandbox" ? "POD" : container.id),
            image: container.image, imageRef: container.image, imageDigest: nil, state: .created)
        entry.containerdNamespace = namespace
        if entry.pod == nil { entry.pod = container.pod }
        if entry.image.isEmpty { entry.image = container.image }
        byID[container.id] = entry
    }

    /// The container's init process exists (TaskCreate) or runs (TaskStart) with host pid `pid`.
    private func started(namespace: String, id: String, pid: UInt32, running: Bool) {
        if byID[id] == nil {
            learn(ContainerdContainer(id: id, image: "", labels: [:], runtime: "", snapshotter: "", snapshotKey: "",
                                      createdAt: 0, updatedAt: 0), namespace: namespace)
        }
        guard var entry = byID[id], pid > 0 else { return }
        let hostPid = Int32(bitPattern: pid)
        if entry.state != .exited { entry.state = running ? .running : .created }
        entry.pid = hostPid
        entry.containerdNamespace = entry.containerdNamespace ?? namespace
        byID[id] = entry
        byPid[hostPid] = id
        // While the process lives /proc answers at once; the kernel record covers it when not.
        if let ns = processes.mountNamespace(hostPid), !hostMountNamespaces.contains(ns) {
            var cgroupID: UInt64 = 0
            if let text = processes.cgroups(hostPid), let path = CgroupPaths.unifiedPath(procCgroup: text),
               let found = cgroups?.cgroupID(path: path) {
                cgroupID = found
            }
            bind(id, KernelRecord(mountNamespace: ns, cgroupID: cgroupID))
        }
        if let record = kernelRecords[hostPid] { bind(id, record) }
    }

    private func exited(namespace: String, id: String, status: UInt32) {
        guard var entry = byID[id] else { return }
        entry.state = .exited
        entry.exitCode = Int32(bitPattern: status)
        if let pid = entry.pid, byPid[pid] == id { entry.pid = nil }
        byID[id] = entry
    }

    /// The container a cgroup id belongs to, by matching its path against the known ids.
    private func containerID(cgroupID: UInt64) -> String? {
        guard cgroupID > 1, let path = cgroups?.path(cgroupID: cgroupID) else { return nil }
        return CgroupPaths.containerID(inPath: Substring(path), knownIDs: Set(byID.keys)).flatMap { byID[$0] != nil ? $0 : nil }
    }

    private func digest(of imageRef: String, client: CRIClient) async -> String? {
        if let known = imageDigests[imageRef] { return known }
        guard let image = try? await client.imageStatus(imageRef),
              let digest = image.manifestDigest else { return nil }
        imageDigests[imageRef] = digest
        return digest
    }

    private func forget(_ id: String) {
        if let entry = byID.removeValue(forKey: id) {
            if let ns = entry.mountNamespaceInode, byMountNamespace[ns] == id { byMountNamespace[ns] = nil }
            if let cg = entry.cgroupID, byCgroupID[cg] == id { byCgroupID[cg] = nil }
            byPid = byPid.filter { $0.value != id }
        }
        deletedAt[id] = nil
    }

    // MARK: lookups

    public func metadata(containerID: String) -> ContainerMetadata? { byID[containerID] }
    public func metadata(mountNamespaceInode inode: UInt64) -> ContainerMetadata? { byMountNamespace[inode].flatMap { byID[$0] } }
    public func metadata(cgroupID: UInt64) -> ContainerMetadata? {
        if let id = byCgroupID[cgroupID] { return byID[id] }
        return containerID(cgroupID: cgroupID).flatMap { byID[$0] }
    }
    public var all: [ContainerMetadata] { Array(byID.values) }

    /// The container of a process: while it lives, its cgroup names the container id (any id
    /// shape known to the resolver) or, failing that, its mount namespace does; once it is gone,
    /// what containerd's task events and the kernel records said about the pid. Refreshes once
    /// when a live process's cgroup names a container id not known yet.
    public func metadata(pid: Int32) async throws -> ContainerMetadata? {
        let cgroupText = processes.cgroups(pid)
        let mntns = processes.mountNamespace(pid)
        func lookup() -> ContainerMetadata? {
            if let text = cgroupText, let id = CgroupPaths.containerID(procCgroup: text, knownIDs: Set(byID.keys)),
               let hit = byID[id] { return hit }
            if let mntns, let hit = metadata(mountNamespaceInode: mntns) { return hit }
            if cgroupText == nil, mntns == nil {
                if let id = byPid[pid], let hit = byID[id] { return hit }
                if let record = kernelRecords[pid] {
                    return metadata(mountNamespaceInode: record.mountNamespace) ?? metadata(cgroupID: record.cgroupID)
                }
            }
            return nil
        }
        if let hit = lookup() { return hit }
        guard cgroupText.flatMap(CgroupPaths.containerID(procCgroup:)) != nil else { return nil }
        try await refresh()
        return lookup()
    }

    // MARK: cgroup helpers

    private func cgroupInode(_ path: String) -> UInt64? {
        cgroups?.cgroupID(path: path)
    }

    /// `<any parent>/pod<uid>/<id>` in the unified hierarchy (cgroupfs driver layout).
    private func findCgroup(containerID: String, podUID: String) -> String? {
        for parent in ["/podstart", "/kubepods", "/kubepods/burstable", "/kubepods/besteffort"] {
            let path = "\(parent)/pod\(podUID)/\(containerID)"
            if cgroupInode(path) != nil { return path }
        }
        return nil
    }
}
