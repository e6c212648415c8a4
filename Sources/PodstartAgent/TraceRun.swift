import ContainerRuntime
import Foundation
import KernelProbes
import PodstartCore

/// One pod start with the kernel probes recording it.
public struct TraceRun: Sendable {
    public var options: PodStartOptions
    public var endpoint: CRIEndpoint
    public var kernel: Bool
    /// Called about four times a second while the pod starts with the bytes the runtime has
    /// downloaded and unpacked so far (kernel probes only; nil: not measured).
    public var progress: (@Sendable (PullProgress) -> Void)?

    public init(options: PodStartOptions, endpoint: CRIEndpoint, kernel: Bool,
                progress: (@Sendable (PullProgress) -> Void)? = nil) {
        self.options = options
        self.endpoint = endpoint
        self.kernel = kernel
        self.progress = progress
    }

    /// Kernel records collected while the pod starts, kept raw: decoding waits until the pod
    /// is ready, so the start being measured does not share its CPUs with podstart's decoding.
    /// Kept as copies, so the ring's space goes back to the kernel at once.
    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var batches: [RawEventBatch] = []
        func append(_ batch: RawEventBatch) {
            let copy = batch.detached()
            lock.withLock { batches.append(copy) }
        }
        /// The batches appended since `next` (an index this call advances), still kept for `take`.
        func batches(from next: inout Int) -> [RawEventBatch] {
            let start = next
            let new = lock.withLock { Array(batches[min(start, batches.count)...]) }
            next = start + new.count
            return new
        }
        func take() -> [KernelEvent] {
            let taken = lock.withLock { let b = batches; batches = []; return b }
            return taken.flatMap { $0.decode() }
        }
    }

    public func trace() async throws -> PodStartTrace {
        let clock = WallClock.measure()
        var session: KernelProbeSession?
        var consumer: Task<Void, Never>?
        let collected = Collected()
        let families: Set<ProbeFamily> = [.process, .opens, .reads, .writes, .fuse]
        if kernel {
            do {
                let s = try KernelProbeSession()
                try s.attach(families)
                let stream = try s.events()
                consumer = Task { for await batch in stream { collected.append(batch) } }
                session = s
            } catch {
                FileHandle.standardError.write(Data("podstart: kernel probes unavailable (\(error)); phases from CRI timings only, no accesses. Pass --no-kernel to silence this.\n".utf8))
            }
        }
        defer { session?.close() }
        let ticker = session.flatMap { s in progress.map { Self.reportProgress(session: s, collected: collected, to: $0) } }
        defer { ticker?.cancel() }

        // containerd's root as the runtime reports it, asked before the pod starts: the
        // image's manifest is there when the snapshot paths do not lead to it (stargz)
        let runtimeRoot = try? await CRIClient.withClient(endpoint: endpoint) { try await $0.runtimeLayout()?.containerdRoot }
        var trace: PodStartTrace?
        _ = try await PodStarter(endpoint: endpoint).run(options, whileReady: { record in
            // Stop recording at ready, read the kernel's aggregates, and attribute while the
            // container's root filesystem still exists (its writable layer goes with teardown).
            var openCounts: [OpenCount] = []
            var writeTotals: [WriteTotal] = []
            var readRanges: [ReadRangeEvent] = []
            ticker?.cancel()
            await ticker?.value
            if let session {
                session.detach(families)
                readRanges = (try? session.drainReadRanges()) ?? []
                openCounts = (try? session.openCounts()) ?? []
                writeTotals = (try? session.writeTotals()) ?? []
                session.close()
                await consumer?.value
            }
            let layers = record.rootfs?.imageLayers(digest: record.imageDigest, runtimeRoot: runtimeRoot)
            var correlator = Correlator(clock: clock)
            for input in Self.inputs(record) { _ = correlator.ingest(input) }
            for event in collected.take() + readRanges.map(KernelEvent.readRange) { _ = correlator.ingest(.kernel(event)) }
            correlator.addAggregates(openCounts: openCounts, writeTotals: writeTotals)
            // Without the image's layers a path still has its data file (the layer's copy that
            // page-cache fills and FUSE reads name); only the layer digest is then unknown.
            let resolve: Correlator.AccessResolver = { _, path, identity in
                record.rootfs?.location(of: path, file: identity, layers: layers)
            }
            trace = correlator.flush(resolve: resolve).first { $0.pod.uid == record.pod.uid }
            // The image's unpacked size, while its layers are certainly on disk: access
            // profiles report the share of it a start read (README "Trace JSON", imageBytes).
            if let imageBytes = record.rootfs?.imageBytes(), var t = trace {
                for i in t.containers.indices where t.containers[i].name == record.containerName {
                    t.containers[i].imageBytes = imageBytes
                }
                trace = t
            }
        })
        guard let trace else { throw TraceError.failed(run: 1, of: 1, error: "no timeline was built for the pod") }
        return trace
    }

    /// Reports the pull's bytes as the kernel sees the runtime write them: begins classified as
    /// they arrive (the few records that name a file), totals read from the kernel's write map.
    static func reportProgress(session: KernelProbeSession, collected: Collected,
                               to report: @escaping @Sendable (PullProgress) -> Void) -> Task<Void, Never> {
        Task {
            var kinds: [PullWriteClassifier.WriteKey: PullWriteClassifier.Kind] = [:]
            var next = 0
            var last = PullProgress()
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                if Task.isCancelled { return }
                for batch in collected.batches(from: &next) {
                    for case .writeBegin(let b) in batch.decode() where b.isRuntimeProcess {
                        if let kind = PullWriteClassifier.classify(path: b.path.path) { kinds[.init(b)] = kind }
                    }
                }
                guard !kinds.isEmpty, let totals = try? session.writeTotals() else { continue }
                let now = PullWriteClassifier.progress(totals: totals) { kinds[$0] }
                if now != last { report(now) }
                last = now
            }
        }
    }

    /// The CRI timings of a start as the correlator's inputs.
    public static func inputs(_ record: PodStartRecord) -> [CorrelatorInput] {
        let uid = record.pod.uid
        var inputs: [CorrelatorInput] = [
            .pod(PodSighting(uid: uid, namespace: record.pod.namespace, name: record.pod.name, createdUnixNs: record.created.unixNs, source: .cri)),
        ]
        if let sandbox = record.call("RunPodSandbox") {
            inputs.append(.sandbox(SandboxCreation(uid: uid, sandboxID: record.sandboxID, beginUnixNs: sandbox.begin.unixNs, endUnixNs: sandbox.end.unixNs, source: .cri)))
        }
        if let pull = record.call("PullImage") {
            inputs.append(.pull(ImagePull(uid: uid, image: record.image, beginUnixNs: pull.begin.unixNs, endUnixNs: pull.end.unixNs, source: .cri)))
        }
        if let create = record.call("CreateContainer") {
            inputs.append(.containerCreated(ContainerCreation(uid: uid, containerID: record.containerID, name: record.containerName,
                                            image: record.image, imageDigest: record.imageDigest, isInit: false,
                                            beginUnixNs: create.begin.unixNs, endUnixNs: create.end.unixNs, source: .cri)))
        }
        if let start = record.call("StartContainer") {
            // Until the first exec is seen, the container counts as started when podstart saw it running.
            inputs.append(.containerStarted(ContainerStart(containerID: record.containerID, beginUnixNs: start.begin.unixNs,
                                            endUnixNs: record.running.unixNs, source: .cri)))
        }
        if let ns = record.mountNamespaceInode {
            inputs.append(.containerMountNamespace(ContainerMountNamespace(containerID: record.containerID, mountNamespace: UInt32(truncatingIfNeeded: ns))))
        }
        inputs.append(.ready(PodReadiness(uid: uid, atUnixNs: record.ready.unixNs, source: .prober)))
        return inputs
    }
}


public enum TraceError: Error, CustomStringConvertible {
    case interrupted
    case failed(run: Int, of: Int, error: String)
    /// `--image` beside a kubelet, which removes pods it did not create.
    case kubeletRuns(pid: Int32, commandLine: String)

    public var description: String {
        switch self {
        case .interrupted: "interrupted: the pod was torn down"
        case let .kubeletRuns(pid, commandLine):
            "a kubelet runs on this node (pid \(pid): \(commandLine.prefix(120))): it removes pods it did not create, so a pod started by --image would be killed as an orphan. Create the pod with kubectl and trace it with --pod NAMESPACE/NAME, or pass --force to start it anyway."
        case let .failed(run, total, error): total > 1 ? "run \(run) of \(total): \(error)" : error
        }
    }
}
