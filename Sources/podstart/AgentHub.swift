import ContainerRuntime
import Exporter
import Foundation
import Logging
import PodstartCore
import StateStore

/// The agent's single point of truth: every source hands its observations here, the correlator
/// turns them into timelines, and each finished timeline goes to the state store and the metrics.
/// An actor, so the correlator (a value type) sees one input at a time in arrival order.
actor AgentHub {
    private var correlator: Correlator
    private let store: TimelineStore
    private let metrics: MetricsRegistry
    private let logger: Logger
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
    private(set) var recorded = 0

    struct ContainerFiles: Sendable {
        var rootfs: OverlayRootfs
    }
    private var rootfsByNamespace: [UInt32: OverlayRootfs] = [:]
    private var triedNamespaces: Set<UInt32> = []
    private var layersByDigest: [String: ImageLayers?] = [:]
    private var hostMountNamespace: UInt32 = 0

    init(correlator: Correlator, store: TimelineStore, metrics: MetricsRegistry, logger: Logger) {
        self.correlator = correlator
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    func record(inputsTo recorder: @escaping @Sendable (CorrelatorInput) -> Void) { self.recorder = recorder }

    /// Called with the mount namespaces of each finished start (the kernel side stops tracing them).
    func onStartFinished(_ body: @escaping @Sendable ([UInt32]) -> Void) { onFinished = body }

    func ingest(_ inputs: [CorrelatorInput]) async {
        var done: [PodStartTrace] = []
        for input in inputs {
            recorder?(input)
            switch input {
            case .containerMountNamespace(let id, let ns): namespaces[id] = ns
            case .containerCreated(let uid, let id, _, _, _, _, _, _, _): startContainers[uid, default: []].insert(id)
            default: break
            }
            done += correlator.ingest(input, resolve: resolve)
        }
        await record(done)
    }

    func ingest(kernel events: [KernelEvent]) async {
        learnRootfs(from: events)
        await ingest(events.map(CorrelatorInput.kernel))
    }

    func setHostMountNamespace(_ ns: UInt32) { hostMountNamespace = ns }


    func learn(containerID: String, files: ContainerFiles) { containerFiles[containerID] = files }
    func knowsFiles(of containerID: String) -> Bool { containerFiles[containerID] != nil }

    var openStarts: Int { correlator.openStarts }

    /// Shutdown: starts that already reached ready are recorded; the others are dropped (they
    /// would be reported as failures that never happened) and counted in the log.
    func flush() async {
        let traces = correlator.flush(resolve: resolve)
        let ready = traces.filter { $0.outcome == .ready }
        if ready.count < traces.count {
            logger.info("dropping starts still in progress at shutdown", metadata: ["count": "\(traces.count - ready.count)"])
        }
        await record(ready)
    }

    private func record(_ traces: [PodStartTrace]) async {
        for trace in traces {
            do {
                try await store.save(trace)
            } catch {
                metrics.recordSourceError(source: "state")
                logger.error("cannot save a pod start", metadata: ["pod": "\(trace.storageKey)", "error": "\(error)"])
            }
            metrics.observe(trace: trace)
            recorded += 1
            logger.info("pod start recorded", metadata: [
                "pod": "\(trace.pod.namespace)/\(trace.pod.name)", "uid": "\(trace.storageKey)",
                "outcome": "\(trace.outcome.rawValue)", "e2eSeconds": "\(trace.e2eSeconds)",
            ])
            var finished: [UInt32] = []
            for id in startContainers.removeValue(forKey: trace.storageKey) ?? [] {
                containerFiles.removeValue(forKey: id)
                if let ns = namespaces.removeValue(forKey: id) {
                    finished.append(ns)
                    rootfsByNamespace.removeValue(forKey: ns)
                }
            }
            if !finished.isEmpty { onFinished(finished) }
        }
    }

    /// The first exec in a mount namespace the hub has not seen: the overlay that process sees as
    /// `/` tells which layer provides each file, even if the container is gone by the time its
    /// start is finalised.
    private func learnRootfs(from events: [KernelEvent]) {
        for case .exec(let e) in events where e.task.mountNamespace != hostMountNamespace {
            let ns = e.task.mountNamespace
            guard rootfsByNamespace[ns] == nil, !triedNamespaces.contains(ns) else { continue }
            triedNamespaces.insert(ns)
            if let rootfs = OverlayRootfs.root(ofProcess: Int32(bitPattern: e.task.pid)) { rootfsByNamespace[ns] = rootfs }
        }
        if triedNamespaces.count > 4096 { triedNamespaces = Set(rootfsByNamespace.keys) }
    }

    private func layers(_ digest: String?, rootfs: OverlayRootfs) -> ImageLayers? {
        guard let digest, let root = rootfs.containerdRoot else { return nil }
        if let known = layersByDigest[digest] { return known }
        let loaded = try? ImageLayers.load(contentStoreRoot: root, digest: digest)
        if layersByDigest.count > 256 { layersByDigest.removeAll() }
        layersByDigest[digest] = loaded
        return loaded
    }

    private func resolve(container: Correlator.AccessContainer, path: String, file: FileIdentity) -> LayerLocation? {
        guard let rootfs = container.mountNamespace.flatMap({ rootfsByNamespace[$0] }) ?? containerFiles[container.id]?.rootfs else { return nil }
        let dataFile = rootfs.dataFile(of: path) ?? file.dataKey
        guard let layers = layers(container.imageDigest, rootfs: rootfs) else { return LayerLocation(layerDigest: nil, dataFile: dataFile) }
        switch rootfs.attribution(of: path, layers: layers) {
        case .layer(let layer)?: return LayerLocation(layerDigest: layer.digest, dataFile: dataFile)
        default: return LayerLocation(layerDigest: nil, dataFile: dataFile)
        }
    }
}
