import ContainerRuntime
import Exporter
import Foundation
import KernelProbes
import KubeletSources
import Logging
import PodstartCore

/// Backoff for a source that lost its input: 200 ms doubling to 5 s, reset after a success.
struct Backoff {
    var delay: Duration = .milliseconds(200)
    mutating func next() -> Duration {
        defer { delay = min(delay * 2, .seconds(5)) }
        return delay
    }
    mutating func reset() { delay = .milliseconds(200) }
}

/// The sources' first look at the node (the CRI listing that marks what already runs, the log
/// tails that skip old lines, the event subscription): the agent reports ready only after them, so
/// a pod started right after /readyz says 200 is a start, and a log line it writes is read.
final class StartupGate: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: Set<String>

    init(_ names: [String]) { pending = Set(names) }

    func primed(_ name: String) { _ = lock.withLock { pending.remove(name) } }

    /// Waits until every source has primed or `timeout` passes; returns those that have not (a
    /// source whose input is down must not keep the agent from serving the rest).
    func wait(timeout: Duration) async -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = lock.withLock { pending.sorted() }
            if left.isEmpty || ContinuousClock.now >= deadline { return left }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Pods and containers as the runtime lists them through CRI, polled (containerd 1.6 has no
/// GetContainerEvents) at the pace a PollPacer sets. The first listing marks what already runs as pre-existing: those are never
/// reported as starts. When the socket goes away the source reconnects with backoff and counts the
/// error; the rest of the agent keeps serving.
struct CRIPollSource: Sendable {
    var endpoint: CRIEndpoint
    var interval: Duration
    var pacer = PollPacer()
    var gate: StartupGate?
    var hub: AgentHub
    var metrics: MetricsRegistry
    var logger: Logger

    /// What the previous listings showed.
    struct Known {
        var sandboxes: [String: String] = [:]  // sandbox id → pod uid
        var containers: [String: ContainerState] = [:]
        var preexistingSandboxes: Set<String> = []
        var images: [String: (name: String, digest: String?)] = [:]  // image ref → name, manifest digest
        var primed = false
    }

    func run() async {
        var known = Known()
        var backoff = Backoff()
        var down = false
        var healthy = false
        while !Task.isCancelled {
            do {
                try await CRIClient.withClient(endpoint: endpoint) { client in
                    while !Task.isCancelled {
                        guard pacer.shouldPoll() else { try await Task.sleep(for: interval); continue }
                        let inputs = try await poll(client, &known)
                        gate?.primed("cri")
                        if down {
                            logger.info("CRI runtime reachable again", metadata: ["endpoint": "\(endpoint)"])
                            down = false
                        }
                        healthy = true
                        backoff.reset()
                        if !inputs.isEmpty { await hub.ingest(inputs) }
                        try await Task.sleep(for: interval)
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }  // a call cut short by shutdown is no outage
                // A connection that worked and then closed (the runtime's server ends long-lived
                // HTTP/2 connections now and then) is reconnected at once; only a reconnect that
                // fails too is an outage.
                if healthy {
                    healthy = false
                    logger.debug("CRI connection closed; reconnecting", metadata: ["error": "\(error)"])
                    continue
                }
                metrics.recordSourceError(source: "cri")
                if !down {
                    logger.warning("CRI runtime unreachable; retrying with backoff", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                    down = true
                }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    func poll(_ client: CRIClient, _ known: inout Known) async throws -> [CorrelatorInput] {
        let sightedAt = WallClock.unixNow()
        let sandboxes = try await client.listPodSandboxes()
        let containers = try await client.listContainers()
        var inputs: [CorrelatorInput] = []
        for sandbox in sandboxes where known.sandboxes[sandbox.id] == nil {
            known.sandboxes[sandbox.id] = sandbox.pod.uid
            if !known.primed {
                known.preexistingSandboxes.insert(sandbox.id)
                inputs.append(.preexisting(uid: sandbox.pod.uid))
                continue
            }
            inputs.append(.pod(PodSighting(uid: sandbox.pod.uid, namespace: sandbox.pod.namespace, name: sandbox.pod.name,
                                           createdUnixNs: sandbox.createdAtUnixNs, source: .cri)))
            // The listing shows a sandbox only once RunPodSandbox is done: its end is a sighting.
            inputs.append(.sandbox(SandboxCreation(uid: sandbox.pod.uid, sandboxID: sandbox.id, beginUnixNs: sandbox.createdAtUnixNs,
                                                   endUnixNs: max(sandbox.createdAtUnixNs, sightedAt), source: .derived)))
        }
        let listed = Set(sandboxes.map(\.id))
        for id in known.sandboxes.keys where !listed.contains(id) {
            known.sandboxes.removeValue(forKey: id)
            known.preexistingSandboxes.remove(id)
        }

        for container in containers where known.containers[container.id] != container.state {
            let previous = known.containers[container.id]
            known.containers[container.id] = container.state
            guard known.primed, !known.preexistingSandboxes.contains(container.sandboxID),
                  let uid = container.pod?.uid ?? known.sandboxes[container.sandboxID] else { continue }
            let status: ContainerStatusInfo
            do {
                status = try await client.containerStatus(id: container.id, verbose: true)
            } catch let error as CRIError where error.isNotFound {
                continue
            }
            if previous == nil {
                let image = await image(container, client: client, known: &known)
                inputs.append(.containerCreated(ContainerCreation(uid: uid, containerID: container.id, name: container.name, image: image.name,
                                                                  imageDigest: image.digest, isInit: false, beginUnixNs: status.createdAtUnixNs,
                                                                  endUnixNs: status.createdAtUnixNs, source: .cri)))
            }
            if status.startedAtUnixNs > 0 {
                // StartContainer follows CreateContainer at once in the kubelet's sync: until a
                // log or the kernel says better, it spans created → started.
                inputs.append(.containerStarted(ContainerStart(containerID: container.id, beginUnixNs: status.createdAtUnixNs,
                                                               endUnixNs: max(status.createdAtUnixNs, status.startedAtUnixNs), source: .derived)))
                if let pid = status.verbose?.pid, pid > 0 {
                    inputs.append(.containerPid(ContainerInitProcess(containerID: container.id, pid: UInt32(pid))))
                    var st = stat()
                    if stat("/proc/\(pid)/ns/mnt", &st) == 0 {
                        inputs.append(.containerMountNamespace(ContainerMountNamespace(containerID: container.id, mountNamespace: UInt32(truncatingIfNeeded: st.st_ino))))
                    }
                }
                if !(await hub.knowsFiles(of: container.id)), let rootfs = OverlayRootfs.find(containerID: container.id) {
                    await hub.learn(containerID: container.id, files: .init(rootfs: rootfs))
                }
            }
            if status.state == .exited, status.finishedAtUnixNs > 0 {
                inputs.append(.containerExited(ContainerExit(containerID: container.id, atUnixNs: status.finishedAtUnixNs, exitCode: status.exitCode)))
            }
        }
        let listedContainers = Set(containers.map(\.id))
        known.containers = known.containers.filter { listedContainers.contains($0.key) }
        known.primed = true
        return inputs
    }

    /// The image as people name it (the kubelet creates containers with the image id) and its
    /// manifest digest, from ImageStatus; cached per image id.
    private func image(_ container: ContainerInfo, client: CRIClient, known: inout Known) async -> (name: String, digest: String?) {
        if let image = known.images[container.imageRef] { return image }
        let status = try? await client.imageStatus(container.imageRef)
        let name = status?.repoTags.first ?? status?.repoDigests.first ?? container.image
        let digest = status?.manifestDigest
            ?? (container.imageRef.contains("@") ? container.imageRef.split(separator: "@").last.map(String.init) : nil)
        known.images[container.imageRef] = (name, digest)
        return (name, digest)
    }
}

/// A log file followed across rotation (LogFileTailer), each complete line handed to `parse`.
/// A missing file is not fatal: the source waits for it and counts the error once per outage.
struct LogFileSource: Sendable {
    var name: String
    var path: String
    var interval: Duration = .milliseconds(250)
    var gate: StartupGate?
    var hub: AgentHub
    var metrics: MetricsRegistry
    var logger: Logger
    var parse: @Sendable ([UInt8]) -> [CorrelatorInput]

    func run() async {
        let tailer = LogFileTailer(path: path)
        var failing = false
        var first = true
        while !Task.isCancelled {
            do {
                let lines = try tailer.poll()
                if failing { logger.info("log readable again", metadata: ["source": "\(name)", "path": "\(path)"]) }
                failing = false
                // Lines written before the agent started describe starts it did not see begin.
                if first { first = false; gate?.primed(name); try? await Task.sleep(for: interval); continue }
                var inputs: [CorrelatorInput] = []
                for line in lines { inputs += parse(line) }
                if !inputs.isEmpty { await hub.ingest(inputs) }
            } catch {
                metrics.recordSourceError(source: name)
                if !failing {
                    logger.warning("cannot read log; retrying", metadata: ["source": "\(name)", "path": "\(path)", "error": "\(error)"])
                    failing = true
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// containerd's CRI log lines (FORMATS.md §5.2) as correlator inputs: the exact begin and end of
/// RunPodSandbox, PullImage, CreateContainer and StartContainer, as containerd logged them.
final class ContainerdLogInputs: @unchecked Sendable {
    private let lock = NSLock()
    private var sandboxBegin: [String: Int64] = [:]  // pod uid
    private var sandboxPod: [String: String] = [:]  // sandbox id → pod uid
    private var pullBegin: [String: Int64] = [:]
    private var createBegin: [String: Int64] = [:]  // "sandbox/name"
    private var startBegin: [String: Int64] = [:]
    private let metrics: MetricsRegistry

    init(metrics: MetricsRegistry) { self.metrics = metrics }

    func inputs(line: [UInt8]) -> [CorrelatorInput] {
        guard let outcome = ContainerdLineParser.parse(String(decoding: line, as: UTF8.self)) else { return [] }
        switch outcome {
        case .event(let event): return lock.withLock { inputs(event) }
        default:
            metrics.recordSourceError(source: "containerd-log")
            return []
        }
    }

    private func inputs(_ event: ContainerdCRIEvent) -> [CorrelatorInput] {
        let t = event.time.nanosecondsSinceEpoch
        switch event.kind {
        case .sandboxRequested(_, let uid, _):
            sandboxBegin[uid] = t
        case .sandboxReady(_, let uid, let sandboxID):
            sandboxPod[sandboxID] = uid
            if let begin = sandboxBegin.removeValue(forKey: uid) {
                return [.sandbox(SandboxCreation(uid: uid, sandboxID: sandboxID, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        case .pullStarted(let image):
            pullBegin[image] = t
        case .pullFinished(let image, _):
            if let begin = pullBegin.removeValue(forKey: image) {
                return [.pull(ImagePull(uid: nil, image: image, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        case .containerCreateRequested(let sandboxID, let name):
            createBegin["\(sandboxID)/\(name)"] = t
        case .containerCreated(let sandboxID, let name, let containerID):
            if let begin = createBegin.removeValue(forKey: "\(sandboxID)/\(name)"), let uid = sandboxPod[sandboxID] {
                return [.containerCreated(ContainerCreation(uid: uid, containerID: containerID, name: name, image: "", imageDigest: nil,
                                                            isInit: false, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        case .containerStartRequested(let containerID):
            startBegin[containerID] = t
        case .containerStarted(let containerID):
            if let begin = startBegin.removeValue(forKey: containerID) {
                return [.containerStarted(ContainerStart(containerID: containerID, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        default:
            break
        }
        if sandboxBegin.count + pullBegin.count + createBegin.count + startBegin.count > 10_000 {
            // requests whose answer never came (failed calls): forget them rather than grow
            sandboxBegin.removeAll(); pullBegin.removeAll(); createBegin.removeAll(); startBegin.removeAll()
        }
        if sandboxPod.count > 10_000 { sandboxPod.removeAll() }
        return []
    }
}

/// The kubelet's "Observed pod startup duration" lines.
enum KubeletLogInputs {
    static func inputs(line: [UInt8], metrics: MetricsRegistry) -> [CorrelatorInput] {
        switch StartupLineParser.parse(String(decoding: line, as: UTF8.self)) {
        case .success(let observation)?: return [.kubeletStartup(observation)]
        case .failure?: metrics.recordSourceError(source: "kubelet-log"); return []
        case nil: return []
        }
    }
}

/// The kubelet's /metrics, scraped so an unreachable kubelet shows up as source errors (and the
/// scrape's pod-start histogram stays comparable with podstart's own).
struct KubeletMetricsSource: Sendable {
    var url: String
    var tokenFile: String?
    var caFile: String?
    var interval: Duration = .seconds(30)
    var metrics: MetricsRegistry
    var logger: Logger

    func run() async {
        var failing = false
        while !Task.isCancelled {
            do {
                let token = try tokenFile.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
                let endpoint = try KubeletEndpoints(KubeEndpoint(url: url, bearerToken: token, caFile: caFile))
                _ = try await endpoint.scrapeMetrics()
                if failing { logger.info("kubelet metrics reachable again", metadata: ["url": "\(url)"]) }
                failing = false
            } catch {
                metrics.recordSourceError(source: "kubelet-metrics")
                if !failing {
                    logger.warning("cannot scrape the kubelet's metrics; retrying", metadata: ["url": "\(url)", "error": "\(error)"])
                    failing = true
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// The kernel side of the agent: exec/fork/exit always attached; the per-syscall and per-read
/// hooks only inside start windows (StartWindowDriver); in-kernel aggregates read while a window
/// is open; per-program counters exported.
final class KernelSource: Sendable {
    let session: KernelProbeSession
    let driver: StartWindowDriver
    let hub: AgentHub
    let metrics: MetricsRegistry
    let logger: Logger

    init(startupWindow: Duration, hub: AgentHub, metrics: MetricsRegistry, logger: Logger) throws {
        session = try KernelProbeSession()
        var configuration = StartWindowTracker.Configuration()
        configuration.startupWindowNs = UInt64(startupWindow.components.seconds) * 1_000_000_000
            + UInt64(startupWindow.components.attoseconds / 1_000_000_000)
        driver = StartWindowDriver(session: session, configuration: configuration)
        self.hub = hub
        self.metrics = metrics
        self.logger = logger
        try session.attach([.process])
    }

    func run() async {
        let stream: AsyncStream<RawEventBatch>
        do {
            stream = try session.events()
        } catch {
            metrics.recordSourceError(source: "kernel")
            logger.error("cannot read kernel events", metadata: ["error": "\(error)"])
            return
        }
        await hub.setHostMountNamespace(session.hostMountNamespace)
        await hub.onStartFinished { [driver, logger] namespaces in
            for ns in namespaces {
                do { try driver.markReady(mountNamespace: ns) } catch { logger.warning("cannot close a start window", metadata: ["error": "\(error)"]) }
            }
        }
        let housekeeping = Task { await self.housekeeping() }
        defer { housekeeping.cancel() }
        for await batch in stream {
            let events = batch.decode()
            do {
                for decision in try driver.handle(events) { logger.debug("start window", metadata: ["decision": "\(decision)"]) }
            } catch {
                metrics.recordSourceError(source: "kernel")
                logger.warning("start window change failed", metadata: ["error": "\(error)"])
            }
            await purgeExitedNamespaces(events)
            await hub.ingest(kernel: events)
        }
    }

    /// When a container's init exits, the kernel may give its mount namespace's number to the next
    /// container at once; the in-kernel aggregates keyed by that number (open counts, open runs of
    /// pages) would then pass the new container's first opens off as repeats. They are read out
    /// for the old container and deleted before the new one can use the number.
    private func purgeExitedNamespaces(_ events: [KernelEvent]) async {
        var exited: Set<UInt32> = []
        for case .exit(let e) in events where e.task.namespacePid == 1 && e.task.mountNamespace != session.hostMountNamespace {
            exited.insert(e.task.mountNamespace)
        }
        guard !exited.isEmpty else { return }
        do {
            let ranges = try session.drainReadRanges(mountNamespaces: exited)
            let counts = try session.openCounts(mountNamespaces: exited, remove: true)
            await hub.ingest(ranges.map { CorrelatorInput.kernel(.readRange($0)) } + [.aggregates(KernelAggregates(openCounts: counts, writeTotals: []))])
        } catch {
            metrics.recordSourceError(source: "kernel")
            logger.warning("cannot clear a finished container's kernel aggregates", metadata: ["error": "\(error)"])
        }
    }

    /// Every 500 ms: ticks the start windows, moves the kernel's aggregates (read ranges, open
    /// counts, runtime write totals) into the correlator, and updates the probe counters.
    private func housekeeping() async {
        var wasOpen = false
        var ticks = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            do {
                for decision in try driver.tick() { logger.debug("start window", metadata: ["decision": "\(decision)"]) }
                let open = driver.isOpen
                if open || wasOpen {
                    let ranges = try session.drainReadRanges()
                    if !ranges.isEmpty { await hub.ingest(kernel: ranges.map(KernelEvent.readRange)) }
                    await hub.ingest([.aggregates(KernelAggregates(openCounts: try session.openCounts(), writeTotals: try session.writeTotals(remove: true)))])
                }
                wasOpen = open
                ticks += 1
                if ticks % 4 == 0 {
                    for (program, stats) in try session.statistics() {
                        metrics.setProbeTotals(program: program.rawValue, events: stats.events, lost: stats.lost)
                    }
                }
            } catch {
                metrics.recordSourceError(source: "kernel")
                logger.warning("kernel housekeeping failed", metadata: ["error": "\(error)"])
            }
        }
    }

    func close() { session.close() }
}

/// containerd's own event stream, every namespace: containers started straight through containerd
/// (`ctr run`, nerdctl — any namespace but the CRI plugin's) are starts of their own, keyed by
/// container id, with their containerd namespace; for CRI containers, the task's pid the moment it
/// starts (joined with the kernel's exec records, it gives the mount namespace of a container that
/// is gone before any listing shows it).
struct ContainerdEventSource: Sendable {
    var endpoint: CRIEndpoint
    var criNamespace = "k8s.io"
    /// Told of every CRI-namespace event, and of whether the stream flows.
    var pacer: PollPacer?
    var gate: StartupGate?
    var hub: AgentHub
    var metrics: MetricsRegistry
    var logger: Logger

    /// What the stream told of a container not yet started.
    struct Pending { var createdAt: Int64; var taskCreatedAt: Int64? }

    func run() async {
        var backoff = Backoff()
        var failing = false
        while !Task.isCancelled {
            do {
                let client = try ContainerdClient(endpoint: endpoint)
                defer { client.close() }
                let stream = client.events()
                // what runs already is not a start (listed after subscribing, so nothing falls between)
                var inputs: [CorrelatorInput] = []
                for namespace in try await client.namespaces() where namespace != criNamespace {
                    for container in try await client.containers(namespace: namespace) { inputs.append(.preexisting(uid: container.id)) }
                }
                await hub.ingest(inputs)
                gate?.primed("containerd-events")
                if failing { logger.info("containerd events flowing again", metadata: ["endpoint": "\(endpoint)"]) }
                failing = false
                backoff.reset()
                pacer?.eventsFlowing(true)
                defer { pacer?.eventsFlowing(false) }
                var pending: [String: Pending] = [:]
                for try await event in stream {
                    if event.namespace == criNamespace { pacer?.nudge() }
                    var inputs = Self.inputs(event, criNamespace: criNamespace, pending: &pending)
                    if event.namespace == criNamespace, case .containerCreate(let id, let image, _) = event.payload {
                        inputs += await criContainer(id: id, image: image, at: event.timestamp, client: client)
                    }
                    // its layers, for a container gone before its first process could be looked at
                    if case .taskCreate(let id, _, _, let rootfs?) = event.payload, !(await hub.knowsFiles(of: id)) {
                        await hub.learn(containerID: id, files: .init(rootfs: rootfs))
                    }
                    if !inputs.isEmpty { await hub.ingest(inputs) }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                metrics.recordSourceError(source: "containerd-events")
                if !failing {
                    logger.warning("containerd event stream lost; retrying with backoff", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                    failing = true
                }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// A CRI container the moment containerd records it: its pod, name and image from the record's
    /// kubelet labels, and the image's manifest digest from CRI ImageStatus. A container gone
    /// before the next CRI listing (a job that ends in milliseconds, or a pod deleted at once)
    /// still gets its image, so its pull and its layers are attributed. Sandboxes are skipped.
    func criContainer(id: String, image: String, at t: Int64, client: ContainerdClient) async -> [CorrelatorInput] {
        guard let record = try? await client.container(namespace: criNamespace, id: id),
              record.labels["io.cri-containerd.kind"] == "container",
              let uid = record.labels["io.kubernetes.pod.uid"] else { return [] }
        let status = try? await CRIClient.withClient(endpoint: endpoint, timeout: .seconds(5)) { try await $0.imageStatus(image) }
        return [.containerCreated(ContainerCreation(uid: uid, containerID: id, name: record.labels["io.kubernetes.container.name"] ?? "",
                                                    image: image, imageDigest: status?.manifestDigest, isInit: false, beginUnixNs: t, endUnixNs: t, source: .containerd))]
    }

    static func inputs(_ event: ContainerdEvent, criNamespace: String, pending: inout [String: Pending]) -> [CorrelatorInput] {
        let t = event.timestamp
        let cri = event.namespace == criNamespace
        switch event.payload {
        case .taskStart(let id, let pid) where cri:
            return [.containerPid(ContainerInitProcess(containerID: id, pid: pid))]
        case _ where cri:
            return []
        case .containerCreate(let id, let image, _):
            pending[id] = Pending(createdAt: t)
            if pending.count > 4096 { pending.removeAll() }
            return [.runtimeContainer(RuntimeContainer(uid: id, containerdNamespace: event.namespace, containerID: id)),
                    .pod(PodSighting(uid: id, namespace: "", name: "", createdUnixNs: t, source: .containerd)),
                    .containerCreated(ContainerCreation(uid: id, containerID: id, name: id, image: image, imageDigest: nil, isInit: false,
                                                        beginUnixNs: t, endUnixNs: t, source: .containerd))]
        case .taskCreate(let id, _, _, _):
            guard var p = pending[id] else { return [] }
            p.taskCreatedAt = t
            pending[id] = p
            // create: the container record → runc has created the task
            return [.containerCreated(ContainerCreation(uid: id, containerID: id, name: id, image: "", imageDigest: nil, isInit: false,
                                                        beginUnixNs: p.createdAt, endUnixNs: t, source: .containerd))]
        case .taskStart(let id, let pid):
            guard let p = pending.removeValue(forKey: id) else { return [] }
            return [.containerStarted(ContainerStart(containerID: id, beginUnixNs: p.taskCreatedAt ?? p.createdAt, endUnixNs: t, source: .containerd)),
                    .containerPid(ContainerInitProcess(containerID: id, pid: pid))]
        case .taskExit(let id, let execID, _, let status, let exitedAt) where execID.isEmpty || execID == id:
            return [.containerExited(ContainerExit(containerID: id, atUnixNs: exitedAt, exitCode: Int32(truncatingIfNeeded: status)))]
        case .containerDelete(let id):
            pending.removeValue(forKey: id)
            return []
        default:
            return []
        }
    }
}
