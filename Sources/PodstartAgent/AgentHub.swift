import ContainerRuntime
import Exporter
import Foundation
import Logging
import PodstartCore
import StateStore

/// The agent's single point of truth: every source hands its observations here, the correlator
/// turns them into timelines, and each finished timeline goes to the state store and the metrics.
/// An actor, so the correlator (a value type) sees one input at a time in arrival order.
public actor AgentHub {
    private var correlator: Correlator
    private let store: TimelineStore
    private let metrics: MetricsRegistry
    private let logger: Logger
    /// How live processes are looked at (/proc on a node): the container resolver's way.
    private let processes: ContainerResolver.Processes
    /// Where each container's files come from (its overlay layers), learnt while it runs: the
    /// accesses of a finished start name the layer that provides each file.
    private var containerFiles: [String: ContainerFiles] = [:]
    /// Mount namespaces of containers, so a finished start closes its kernel start window.
    private var namespaces: [String: UInt32] = [:]
    /// Container ids of each open start, by the start's key (pod UID, or container id without a pod).
    private var startContainers: [String: Set<String>] = [:]
    private var onFinished: @Sendable ([UInt32]) -> Void = { _ in }
    /// Sees every input in the order the correlator does (`podstart agent --record-inputs`).
    private var recorder: (@Sendable (CorrelatorInput) -> Void)?
    /// Sees every start as it is recorded (`podstart trace --pod` waits for one of them).
    private var onRecorded: @Sendable (PodStartTrace) -> Void = { _ in }
    public private(set) var recorded = 0

    public struct ContainerFiles: Sendable {
        public var rootfs: OverlayRootfs
        public init(rootfs: OverlayRootfs) { self.rootfs = rootfs }
    }
    private var rootfsByNamespace: [UInt32: OverlayRootfs] = [:]
    /// The overlay of the last container in each namespace number whose init exited and whose
    /// number another container took since (bounded: the oldest are forgotten, ``MemoryBounds``).
    private var exitedRootfs: [UInt32: OverlayRootfs] = [:]
    private var exitedRootfsOrder = RecentSet<UInt32>(capacity: AgentHub.MemoryBounds.exitedNamespaces)
    /// Namespaces whose init exited, the most recent `MemoryBounds.exitedNamespaces`: a
    /// namespace forgotten here loses its overlay (its start, if one is still open, gets no layers).
    private var exitedNamespaces = RecentSet<UInt32>(capacity: AgentHub.MemoryBounds.exitedNamespaces)
    /// Container ids by namespace (the inverse of `namespaces`): an exit finds its containers at once.
    private var containersInNamespace: [UInt32: Set<String>] = [:]
    /// Container ids in the order their files were learnt (those no open start claims are kept
    /// up to `MemoryBounds.unclaimedContainers`).
    private var learnedOrder: [String] = []
    /// Sizes past which unclaimed entries are swept (doubling with what open starts claim).
    private var filesSweepAt = 2 * AgentHub.MemoryBounds.unclaimedContainers
    private var namespacesSweepAt = 2 * AgentHub.MemoryBounds.unclaimedContainers
    /// Namespaces whose container the hub already named from a cgroup.
    private var linkedNamespaces: Set<UInt32> = []
    private var triedNamespaces: Set<UInt32> = []
    private var layersByDigest: [String: ImageLayers?] = [:]
    private var hostMountNamespace: UInt32 = 0
    private var containerNames: [String: String] = [:]
    /// Unpacked size of each image (a walk of its layers, done once per image, off the hub).
    private var imageBytesByDigest: [String: UInt64] = [:]
    private var measuringImages: Set<String> = []

    /// Told of each save's outcome (readiness follows the store's health).
    private let health: StoreHealth?

    /// What the hub keeps beyond the open starts, and how much of it (docs/agent.md, Bounded
    /// under churn).
    public enum MemoryBounds {
        /// Mount namespaces whose init exited that are remembered (with their overlay).
        public static let exitedNamespaces = 4096
        /// Containers no open start claims whose overlay or mount namespace is kept (the
        /// sandboxes, containers of pods that ran before the agent, of no start).
        public static let unclaimedContainers = 1024
        /// Live mount namespaces whose overlay is kept before those no container claims are dropped.
        public static let liveNamespaces = 16_384
    }

    /// Entries each map and set of the hub (and of its correlator, prefixed) holds now.
    public var retainedCounts: [(name: String, count: Int)] {
        var counts: [(name: String, count: Int)] = []
        counts.append(("hub.containerFiles", containerFiles.count))
        counts.append(("hub.namespaces", namespaces.count))
        counts.append(("hub.containersInNamespace", containersInNamespace.count))
        counts.append(("hub.startContainers", startContainers.count))
        counts.append(("hub.containerNames", containerNames.count))
        counts.append(("hub.rootfsByNamespace", rootfsByNamespace.count))
        counts.append(("hub.exitedRootfs", exitedRootfs.count))
        counts.append(("hub.exitedNamespaces", exitedNamespaces.count))
        counts.append(("hub.linkedNamespaces", linkedNamespaces.count))
        counts.append(("hub.triedNamespaces", triedNamespaces.count))
        counts.append(("hub.learnedOrder", learnedOrder.count))
        counts.append(("hub.layersByDigest", layersByDigest.count))
        counts.append(("hub.imageBytesByDigest", imageBytesByDigest.count))
        for (name, count) in correlator.retainedCounts { counts.append(("correlator." + name, count)) }
        return counts
    }

    public init(correlator: Correlator, store: TimelineStore, metrics: MetricsRegistry, logger: Logger,
                processes: ContainerResolver.Processes = .live, health: StoreHealth? = nil) {
        self.processes = processes
        self.health = health
        self.correlator = correlator
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    public func record(inputsTo recorder: @escaping @Sendable (CorrelatorInput) -> Void) { self.recorder = recorder }

    /// Called with each start once it is recorded (enriched, saved or not).
    public func onRecorded(_ body: @escaping @Sendable (PodStartTrace) -> Void) { onRecorded = body }

    /// Called with the mount namespaces of each finished start (the kernel side stops tracing them).
    public func onStartFinished(_ body: @escaping @Sendable ([UInt32]) -> Void) { onFinished = body }

    public func ingest(_ inputs: [CorrelatorInput]) async {
        var done: [PodStartTrace] = []
        for input in inputs {
            recorder?(input)
            switch input {
            case .containerMountNamespace(let m): setNamespace(m.mountNamespace, of: m.containerID)
            case .containerCreated(let c):
                startContainers[c.uid, default: []].insert(c.containerID)
                if !c.name.isEmpty { containerNames[c.containerID] = c.name }
            // What a start waits for, in the debug log: a start that is never recorded shows
            // which of its inputs came.
            case .pod(let p):
                logger.debug("pod seen", metadata: ["pod": "\(p.namespace)/\(p.name)", "uid": "\(p.uid)", "source": "\(p.source)"])
            case .kubeletStartup(let line):
                logger.debug("kubelet startup line", metadata: ["pod": "\(line.pod)"])
            case .ready(let r):
                logger.debug("pod ready", metadata: ["uid": "\(r.uid)", "source": "\(r.source)"])
            default: break
            }
            done += correlator.ingest(input, resolve: resolve)
        }
        await record(done)
        // containers of a pod the correlator opens no start for (it ran before the agent, or was
        // reported already: a restarted container) are no start's: nothing would ever remove them
        for case .containerCreated(let c) in inputs where !correlator.isOpen(c.uid) {
            for id in startContainers.removeValue(forKey: c.uid) ?? [] { containerNames.removeValue(forKey: id) }
        }
    }

    private func setNamespace(_ ns: UInt32, of id: String) {
        if let old = namespaces.updateValue(ns, forKey: id), old != ns { containersInNamespace[old]?.remove(id) }
        containersInNamespace[ns, default: []].insert(id)
        if namespaces.count > namespacesSweepAt { sweepUnclaimedNamespaces() }
    }

    @discardableResult
    private func removeNamespace(of id: String) -> UInt32? {
        guard let ns = namespaces.removeValue(forKey: id) else { return nil }
        containersInNamespace[ns]?.remove(id)
        if containersInNamespace[ns]?.isEmpty == true { containersInNamespace.removeValue(forKey: ns) }
        return ns
    }

    /// Links of containers no open start claims, past `2 × MemoryBounds.unclaimedContainers`
    /// entries: dropped (a sandbox whose exit was lost, a container of no start).
    private func sweepUnclaimedNamespaces() {
        let claimed = Set(startContainers.values.joined())
        for id in namespaces.keys where !claimed.contains(id) { removeNamespace(of: id) }
        namespacesSweepAt = max(2 * Self.MemoryBounds.unclaimedContainers, 2 * namespaces.count)
    }

    /// The overlays of containers no open start claims, beyond the newest
    /// `MemoryBounds.unclaimedContainers`: dropped (a start they belong to later gets no layers).
    private func sweepUnclaimedFiles() {
        let claimed = Set(startContainers.values.joined())
        var keep: Set<String> = []
        for id in learnedOrder.reversed() where keep.count < Self.MemoryBounds.unclaimedContainers && !claimed.contains(id) && containerFiles[id] != nil {
            keep.insert(id)
        }
        containerFiles = containerFiles.filter { claimed.contains($0.key) || keep.contains($0.key) }
        var seen: Set<String> = []
        learnedOrder = learnedOrder.reversed().filter { containerFiles[$0] != nil && seen.insert($0).inserted }.reversed()
        filesSweepAt = max(2 * Self.MemoryBounds.unclaimedContainers, 2 * containerFiles.count)
    }

    public func ingest(kernel events: [KernelEvent]) async {
        // Each container learnt from an exec goes just before that exec (not ahead of the whole
        // batch): the correlator's claim of a reused namespace number sets the previous holder's
        // records aside (issue #19), and the exec then starts the new holder's records. Placed
        // after the exec, a container gone within the batch (ctr run --rm) lost its accesses.
        let links = learnContainers(from: events)
        var inputs: [CorrelatorInput] = []
        inputs.reserveCapacity(events.count + links.count)
        for (i, event) in events.enumerated() {
            if let link = links[i] { inputs.append(link) }
            inputs.append(.kernel(event))
        }
        await ingest(inputs)
    }

    public func setHostMountNamespace(_ ns: UInt32) { hostMountNamespace = ns }


    public func learn(containerID: String, files: ContainerFiles) {
        containerFiles[containerID] = files
        learnedOrder.append(containerID)
        if containerFiles.count > filesSweepAt || learnedOrder.count > 2 * filesSweepAt { sweepUnclaimedFiles() }
    }
    public func knowsFiles(of containerID: String) -> Bool { containerFiles[containerID] != nil }

    public var openStarts: Int { correlator.openStarts }

    /// The wall/monotonic offset the correlator converts kernel times with now.
    public var clock: WallClock { correlator.clock }

    /// Shutdown: starts that already reached ready are recorded; the others are dropped (they
    /// would be reported as failures that never happened) and counted in the log.
    @discardableResult
    public func flush() async -> (recorded: Int, dropped: Int) {
        let traces = correlator.flush(resolve: resolve)
        let ready = traces.filter { $0.outcome == .ready }
        if ready.count < traces.count {
            let dropped = traces.filter { $0.outcome != .ready }.map { $0.pod.name.isEmpty ? $0.storageKey : "\($0.pod.namespace)/\($0.pod.name)" }
            logger.info("dropping starts still in progress at shutdown",
                        metadata: ["count": "\(dropped.count)", "pods": "\(dropped.prefix(20).joined(separator: ","))"])
        }
        await record(ready)
        return (ready.count, traces.count - ready.count)
    }

    private func record(_ traces: [PodStartTrace]) async {
        for var trace in traces {
            enrich(&trace)
            var saved = true
            do {
                try await store.save(trace)
                health?.saveSucceeded()
            } catch {
                saved = false
                metrics.recordSourceError(source: "state")
                metrics.recordStoreSaveFailure()
                health?.saveFailed(error)
                logger.error("cannot save a pod start", metadata: ["pod": "\(trace.storageKey)", "error": "\(error)"])
            }
            metrics.observe(trace: trace)
            onRecorded(trace)
            // A start the store refused is in the metrics but not recorded: never logged as such.
            if saved { recorded += 1 }
            if saved { logger.info("pod start recorded", metadata: [
                "pod": "\(trace.pod.namespace)/\(trace.pod.name)", "uid": "\(trace.storageKey)",
                "outcome": "\(trace.outcome.rawValue)", "e2eSeconds": "\(trace.e2eSeconds)",
            ]) }
            var finished: [UInt32] = []
            for id in startContainers.removeValue(forKey: trace.storageKey) ?? [] {
                containerFiles.removeValue(forKey: id)
                containerNames.removeValue(forKey: id)
                if let ns = removeNamespace(of: id) {
                    finished.append(ns)
                    rootfsByNamespace.removeValue(forKey: ns)
                }
            }
            if !finished.isEmpty { onFinished(finished) }
        }
    }

    /// What the correlator cannot know, added before a start is saved: each image's unpacked size
    /// (`imageBytes`, for the share of the image read at start) and, for starts that pulled, the
    /// bytes of the image's layers (`podstart_image_pull_bytes_total`).
    private func enrich(_ trace: inout PodStartTrace) {
        let ids = startContainers[trace.storageKey] ?? []
        let pulled = trace.phases.contains { $0.name == .pull }
        var counted: Set<String> = []
        for (i, container) in trace.containers.enumerated() {
            guard let digest = container.imageDigest else { continue }
            let id = ids.first { containerNames[$0] == container.name }
            let rootfs = id.flatMap { containerFiles[$0]?.rootfs ?? namespaces[$0].flatMap { rootfsByNamespace[$0] } }
            if let bytes = imageBytesByDigest[digest] {
                trace.containers[i].imageBytes = container.imageBytes ?? bytes
            } else if let rootfs, !measuringImages.contains(digest) {
                measuringImages.insert(digest)
                let image = container.image
                Task.detached { [metrics] in
                    let bytes = rootfs.imageBytes()
                    if let bytes { metrics.setImageSize(image: image, unpackedBytes: bytes) }
                    await self.measured(digest: digest, bytes: bytes)
                }
            }
            if pulled, let rootfs, counted.insert(digest).inserted, let layers = layers(digest, rootfs: rootfs) {
                metrics.recordImagePull(image: container.image, bytes: UInt64(layers.layers.reduce(Int64(0)) { $0 + max(0, $1.sizeBytes) }))
            }
        }
    }

    private func measured(digest: String, bytes: UInt64?) {
        measuringImages.remove(digest)
        if let bytes {
            if imageBytesByDigest.count > 1024 { imageBytesByDigest.removeAll() }
            imageBytesByDigest[digest] = bytes
        }
    }

    /// The first exec in a mount namespace the hub has not seen: the overlay that process sees as
    /// `/` tells which layer provides each file, even if the container is gone by the time its
    /// start is finalised.
    /// What a container's first process tells while it lives (looked up as its exec arrives, so
    /// containers gone a few milliseconds later are covered): its container id from its cgroup,
    /// and the overlay it sees as `/`.
    /// Returns the container ids learnt, as correlator inputs, by the index of the exec they come from.
    private func learnContainers(from events: [KernelEvent]) -> [Int: CorrelatorInput] {
        learnRootfs(from: events)
        var inputs: [Int: CorrelatorInput] = [:]
        for (i, event) in events.enumerated() {
            guard case .exec(let e) = event, e.task.mountNamespace != hostMountNamespace, !e.isRuntimeProcess else { continue }
            let ns = e.task.mountNamespace
            guard !linkedNamespaces.contains(ns), let id = processes.containerID(ofProcess: Int32(bitPattern: e.task.pid)) else { continue }
            linkedNamespaces.insert(ns)
            inputs[i] = .containerMountNamespace(.init(containerID: id, mountNamespace: ns))
        }
        return inputs
    }

    /// In the batch's order: a short-lived process's exec and its exit often come in one batch,
    /// and its namespace must end up exited (taken in two passes, exits first, the exec seemed to
    /// reuse the number, and the namespace's overlay was kept for good).
    private func learnRootfs(from events: [KernelEvent]) {
        for event in events {
            switch event {
            case .exit(let e) where e.task.namespacePid == 1 && e.task.mountNamespace != hostMountNamespace:
                // the container's init is gone: its namespace number may come back for another one
                let ns = e.task.mountNamespace
                if let forgotten = exitedNamespaces.insert(ns) { forget(namespace: forgotten) }
                linkedNamespaces.remove(ns)
                // its start window is over with it (and must not close the next container's)
                for id in containersInNamespace[ns] ?? [] { removeNamespace(of: id) }
            case .exec(let e) where e.task.mountNamespace != hostMountNamespace:
                let ns = e.task.mountNamespace
                if exitedNamespaces.remove(ns) {
                    // another container took the number: keep the old overlay for the old start
                    exitedRootfs[ns] = rootfsByNamespace.removeValue(forKey: ns)
                    if exitedRootfs[ns] != nil, let forgotten = exitedRootfsOrder.insert(ns) { exitedRootfs.removeValue(forKey: forgotten) }
                    triedNamespaces.remove(ns)
                }
                guard rootfsByNamespace[ns] == nil, !triedNamespaces.contains(ns) else { continue }
                triedNamespaces.insert(ns)
                if let rootfs = processes.rootfs(Int32(bitPattern: e.task.pid)) { rootfsByNamespace[ns] = rootfs }
            default:
                break
            }
        }
        if triedNamespaces.count > 4096 { triedNamespaces = Set(rootfsByNamespace.keys) }
        if linkedNamespaces.count > 4096 { linkedNamespaces.formIntersection(containersInNamespace.keys) }
        if rootfsByNamespace.count > Self.MemoryBounds.liveNamespaces {
            // exits lost on the way: keep the overlays of namespaces some container is linked to
            rootfsByNamespace = rootfsByNamespace.filter { containersInNamespace[$0.key] != nil }
        }
    }

    /// A namespace whose init exited long ago (`MemoryBounds.exitedNamespaces` exits since):
    /// its overlay and what the hub knew of it go.
    private func forget(namespace ns: UInt32) {
        rootfsByNamespace.removeValue(forKey: ns)
        triedNamespaces.remove(ns)
        linkedNamespaces.remove(ns)
    }

    /// containerd's root as the runtime reports it (`RuntimeLayoutSource`): where an image's
    /// manifest is when the rootfs's snapshot paths do not lead there (a proxy snapshotter:
    /// stargz keeps its layers under its own root).
    private var runtimeRoot: String?

    public func learnRuntimeRoot(_ root: String?) {
        guard runtimeRoot != root else { return }
        runtimeRoot = root
        // what was loaded without it (nothing, for a proxy snapshotter's images) is loaded again
        layersByDigest = layersByDigest.filter { $0.value != nil }
    }

    private func layers(_ digest: String?, rootfs: OverlayRootfs) -> ImageLayers? {
        guard let digest, rootfs.containerdRoot != nil || runtimeRoot != nil else { return nil }
        if let known = layersByDigest[digest] { return known }
        let loaded = rootfs.imageLayers(digest: digest, runtimeRoot: runtimeRoot)
        if layersByDigest.count > 256 { layersByDigest.removeAll() }
        layersByDigest[digest] = loaded
        return loaded
    }

    private func resolve(container: Correlator.AccessContainer, path: String, file: FileIdentity) -> LayerLocation? {
        // the correlator knows the mount namespace even when no listing showed the container
        if let ns = container.mountNamespace, !container.initExited, namespaces[container.id] == nil { setNamespace(ns, of: container.id) }
        let byNamespace = container.mountNamespace.flatMap { container.initExited ? exitedRootfs[$0] : rootfsByNamespace[$0] }
        guard let rootfs = byNamespace ?? containerFiles[container.id]?.rootfs else { return nil }
        if containerFiles[container.id] == nil { containerFiles[container.id] = .init(rootfs: rootfs) }  // for enrich
        return rootfs.location(of: path, file: file, layers: layers(container.imageDigest, rootfs: rootfs))
    }
}
