/// Builds one timeline per pod start from every source's observations. Pure: no I/O, no clock
/// of its own; deterministic for a given input sequence (record real streams, replay them).
///
/// Joins by pod UID, sandbox id, container id and mount namespace. Tolerates late and
/// out-of-order input: a start is finalised only when it is ready (then a short grace for late
/// records) or when `startTimeoutNs` passes (then it is `failed` with the reason). A container
/// created after its pod was reported (a restart) does not make a new start.
public struct Correlator: Sendable {
    public struct Configuration: Sendable {
        /// A start not ready after this long is closed as failed.
        public var startTimeoutNs: Int64 = 300_000_000_000
        /// After ready, wait this long for late records (log lines trail CRI events).
        public var graceNs: Int64 = 2_000_000_000
        /// With no readiness source (no pod record from the API server or the kubelet, no prober),
        /// a start ends once every regular container runs its first process (kernel exec, else the
        /// runtime's start), recorded with readiness `unknown` (issue #21).
        public var readyWhenRunning = false
        /// With the kubelet's log read: how long after ready a start whose pod record is known
        /// waits for the kubelet's "Observed pod startup duration" line, so its SLI is the kubelet's
        /// own (the line comes at the kubelet's next pod watch event, seconds later on a quiet
        /// node). 0: not waited for.
        public var kubeletLineWaitNs: Int64 = 0
        public init() {}
    }

    struct ContainerState: Sendable {
        var id: String
        var name: String
        var image: String
        /// `image` in ImageReference's canonical spelling (compared with unassigned pulls').
        var canonicalImage: String
        var imageDigest: String?
        var isInit: Bool
        var created: Interval
        var started: Interval?
        var mountNamespace: UInt32?
        var firstExec: Int64?
        var exited: (at: Int64, code: Int32)?
        var createSource: PhaseSource
        var startSource: PhaseSource = .cri
        /// Another container took `mountNamespace`'s number: this one's records are in
        /// `retiredTrackers` (or nowhere), never in the tracker now kept under that number.
        var namespaceRetired = false
    }

    struct PodState: Sendable {
        var uid: String
        var namespace = ""
        var name = ""
        var created: Int64?
        var firstSeen: Int64
        /// When the pod was bound to the node, and who said so (`.scheduled` input).
        var scheduled: (at: Int64, source: PhaseSource)?
        /// From the pod's own record (second resolution): creation, PodScheduled, every container
        /// running; init runs; whether a readiness probe exists.
        var creationSecond: Int64?
        var scheduledSecond: Int64?
        var runningSecond: Int64?
        var statusInits: [PodStatusReport.InitContainerRun] = []
        var hasReadinessProbe: Bool?
        var statusSource: PhaseSource = .podStatus
        /// The first instant this node knew of the pod (the watch delivering it, its sandbox).
        var firstNodeInstant: Int64?
        /// When the pod record first arrived showing every container running (podstart's own
        /// `watchObservedRunningTime`).
        var runningObserved: Int64?
        /// The kubelet's own view of the start, from its "Observed pod startup duration" line.
        var kubeletLine: KubeletPodStartupObservation?
        var measurements: [PhaseMeasurement] = []
        var containers: [String: ContainerState] = [:]
        var ready: (at: Int64, source: PhaseSource)?
        var failure: (at: Int64, reason: String)?
        var reported = false
        var runtime: PodStartTrace.RuntimeIdentity?
        var sandboxID: String?
        /// `clockShift` when the start opened: its instants (and its timeout) are on the wall
        /// clock as it read then (#16.7).
        var clockShift: Int64 = 0
    }

    /// The container whose file an `AccessResolver` is asked about.
    public struct AccessContainer: Hashable, Sendable {
        public var id: String
        public var mountNamespace: UInt32?
        public var imageDigest: String?
        /// Another container took its mount namespace's number (its init exited) before the start
        /// was finalised: `mountNamespace` now names that other container's namespace.
        public var initExited: Bool
    }

    /// Maps a container's file (absolute path inside it) to the image layer providing it.
    public typealias AccessResolver = (_ container: AccessContainer, _ path: String, _ file: FileIdentity) -> LayerLocation?
    public static func noResolver(_: AccessContainer, _: String, _: FileIdentity) -> LayerLocation? { nil }

    public let configuration: Configuration
    /// The wall/monotonic offset in force now (`.clockOffset` inputs replace it).
    public private(set) var clock: WallClock
    /// How far the wall clock has been stepped since this correlator began (the sum of the
    /// `.clockOffset` changes): a start opened at shift `s` is `clockShift − s` ahead of its own
    /// wall readings, so its timeout follows CLOCK_MONOTONIC however the wall clock moved.
    private var clockShift: Int64 = 0
    private var pods: [String: PodState] = [:]
    private var containerToPod: [String: String] = [:]
    private var namespaceToContainer: [UInt32: String] = [:]
    private var trackers: [UInt32: AccessTracker] = [:]
    /// Pulls no source tied to a pod, with their image in ImageReference's canonical spelling.
    private var unassignedPulls: [UnassignedPull] = []
    private var nextPullID = 0
    /// ImageReference.canonical of the images seen lately: a node runs few images, and parsing a
    /// reference costs more than the rest of a start's pull bookkeeping. Emptied past 1,024.
    private var canonicalImages: [String: String] = [:]
    struct UnassignedPull: Sendable {
        var id: Int
        var image: String
        var canonicalImage: String
        var interval: Interval
        var source: PhaseSource
    }
    /// The runtime's writes to pull files (downloads, unpacked layers), classified as they begin,
    /// with when they began.
    private var pullWrites: [PullWriteClassifier.WriteKey: (target: PullWriteClassifier.Target, at: UInt64)] = [:]
    private var writeTotals: [WriteTotal] = []
    /// Container-scoped inputs that arrived before the container's CreateContainer: replayed then.
    private var pendingByContainer: [String: [CorrelatorInput]] = [:]
    private var pendingOrder: [String] = []
    /// Pods that ran before the agent (or were first seen ready), and pods already reported: late
    /// records of theirs open no start. Bounded (``MemoryBounds``): the least recently named are
    /// forgotten first, and every input naming a pod makes it recent again.
    private var ignored = RecentSet<String>(capacity: Correlator.MemoryBounds.forgottenPods)
    private var reportedUIDs = RecentSet<String>(capacity: Correlator.MemoryBounds.forgottenPods)
    /// Correlator time of the last sweep of idle namespaces (``sweepIdleNamespaces()``).
    private var lastSweep: Int64 = .min
    private var now: Int64 = 0
    /// No open start is due before this time (`.min`: work it out at the next input).
    private var earliestDue: Int64 = .min
    /// Access records of containers whose namespace number another container took before their
    /// start was finalised; and the namespaces whose container's init has exited.
    private var retiredTrackers: [String: AccessTracker] = [:]
    private var exitedNamespaces: Set<UInt32> = []
    /// Namespace numbers a new container claimed (from /proc) before its first exec record came:
    /// an init exit seen there before that exec is the previous holder's.
    private var claimedBeforeExec: Set<UInt32> = []

    /// `runc create` / `runc start` processes still running: pid → what they do, since when.
    private var runcRunning: [UInt32: (invocation: RuncInvocation, at: UInt64)] = [:]
    /// Finished `runc create` / `runc start` runs by container (or sandbox) id, Unix ns: the
    /// runtime's part of a start, timed by the kernel (the node alone, no log).
    private var runcSpans: [String: RuncSpans] = [:]
    private var runcOrder: [String] = []
    struct RuncSpans: Sendable { var create: Interval?; var start: Interval? }

    /// Recent exec records: pid → mount namespace, for runtime task pids that arrive later.
    private var execNamespaces: [UInt32: (ns: UInt32, at: UInt64)] = [:]
    private var pidToContainer: [UInt32: String] = [:]
    /// Kubelet startup lines whose pod no other source has named yet, by "namespace/name".
    private var pendingStartupLines: [String: KubeletPodStartupObservation] = [:]

    public init(configuration: Configuration = Configuration(), clock: WallClock) {
        self.configuration = configuration
        self.clock = clock
    }

    /// Starts in progress (not yet reported).
    public var openStarts: Int { pods.count }

    /// Whether a start under this key (pod UID, or container id without a pod) is open.
    public func isOpen(_ key: String) -> Bool { pods[key] != nil }

    /// What the correlator keeps beyond the open starts, and how much of it (docs/agent.md,
    /// Bounded under churn).
    public enum MemoryBounds {
        /// Reported and pre-existing pods remembered (each set), least recently named forgotten first.
        public static let forgottenPods = 16_384
        /// A mount namespace's records no container claims are dropped this long (correlator
        /// time) after its first exec: the sources link a container within seconds.
        public static let idleNamespaceNs: Int64 = 60_000_000_000
        /// Idle namespaces are looked for at most this often, once more than `sweepAbove` are kept.
        public static let sweepEveryNs: Int64 = 10_000_000_000
        public static let sweepAbove = 256
    }

    /// Entries each map and set holds now, by name (for the soak bench and the bound tests).
    public var retainedCounts: [(name: String, count: Int)] {
        [("pods", pods.count), ("containerToPod", containerToPod.count), ("namespaceToContainer", namespaceToContainer.count),
         ("trackers", trackers.count), ("retiredTrackers", retiredTrackers.count), ("exitedNamespaces", exitedNamespaces.count),
         ("claimedBeforeExec", claimedBeforeExec.count), ("reportedUIDs", reportedUIDs.count), ("ignored", ignored.count),
         ("pendingByContainer", pendingByContainer.count), ("pendingOrder", pendingOrder.count), ("runcRunning", runcRunning.count),
         ("runcSpans", runcSpans.count), ("execNamespaces", execNamespaces.count), ("pidToContainer", pidToContainer.count),
         ("pendingStartupLines", pendingStartupLines.count), ("unassignedPulls", unassignedPulls.count),
         ("pullWrites", pullWrites.count), ("writeTotals", writeTotals.count)]
    }

    /// Feeds one observation; returns the timelines it completed.
    public mutating func ingest(_ input: CorrelatorInput,
                                resolve: AccessResolver = Correlator.noResolver) -> [PodStartTrace] {
        // Only an exec (a container's first process) among kernel records can change when a start
        // is due; every other kind of input may.
        switch input {
        case .kernel(.exec), .kernel(.exit): earliestDue = .min
        case .kernel: break
        default: earliestDue = .min
        }
        switch input {
        case .pod(let p):
            guard var pod = state(p.uid) else { break }
            pod.namespace = p.namespace
            pod.name = p.name
            if let created = p.createdUnixNs {
                pod.created = min(pod.created ?? created, created)
                if p.source == .cri || p.source == .containerd { pod.firstNodeInstant = min(pod.firstNodeInstant ?? created, created) }
            }
            pods[p.uid] = pod
            if !p.namespace.isEmpty || !p.name.isEmpty, let line = pendingStartupLines.removeValue(forKey: "\(p.namespace)/\(p.name)") {
                applyStartupLine(line, to: p.uid)
            }
        case .scheduled(let s):
            guard var pod = state(s.uid) else { break }
            pod.scheduled = (s.atUnixNs, s.source)
            pods[s.uid] = pod
        case .podStatus(let r):
            ingestStatus(r)
        case .sandbox(let s):
            guard var pod = state(s.uid, at: s.beginUnixNs) else { break }
            pod.firstNodeInstant = min(pod.firstNodeInstant ?? s.beginUnixNs, s.beginUnixNs)
            pod.measurements.append(PhaseMeasurement(phase: .sandbox, interval: Interval(start: s.beginUnixNs, end: s.endUnixNs), source: s.source))
            if !s.sandboxID.isEmpty { pod.sandboxID = s.sandboxID }
            pods[s.uid] = pod
        case .pull(let p):
            let interval = Interval(start: p.beginUnixNs, end: p.endUnixNs)
            if let uid = p.uid {
                guard var pod = state(uid, at: p.beginUnixNs) else { break }
                pod.measurements.append(PhaseMeasurement(phase: .pull, interval: interval, source: p.source, subject: p.image))
                pods[uid] = pod
            } else {
                nextPullID += 1
                unassignedPulls.append(UnassignedPull(id: nextPullID, image: p.image, canonicalImage: canonicalImage(p.image),
                                                      interval: interval, source: p.source))
            }
        case .containerCreated(let c):
            let id = c.containerID
            guard var pod = state(c.uid, at: c.beginUnixNs) else { break }
            containerToPod[id] = c.uid
            let created = Interval(start: c.beginUnixNs, end: c.endUnixNs)
            if var known = pod.containers[id] {
                // Several sources name the same container (the runtime's listing, its log): keep
                // every identity field some source knew, and the better interval.
                if known.name.isEmpty { known.name = c.name }
                // an image id (the record of a container the kubelet created by id, as containerd's
                // event names it) gives way to a reference, the name pulls are logged under
                if known.image.isEmpty || (ImageReference.isImageID(known.image) && !c.image.isEmpty && !ImageReference.isImageID(c.image)) {
                    known.image = c.image
                    known.canonicalImage = canonicalImage(c.image)
                }
                if known.imageDigest == nil { known.imageDigest = c.imageDigest }
                known.isInit = known.isInit || c.isInit
                if Self.better(created, c.source, than: known.created, known.createSource) {
                    known.created = created
                    known.createSource = c.source
                }
                pod.containers[id] = known
            } else {
                pod.containers[id] = ContainerState(id: id, name: c.name, image: c.image, canonicalImage: canonicalImage(c.image),
                                                    imageDigest: c.imageDigest, isInit: c.isInit,
                                                    created: created, createSource: c.source)
            }
            pods[c.uid] = pod
            for early in pendingByContainer.removeValue(forKey: id) ?? [] { _ = ingest(early, resolve: resolve) }
        case .containerStarted(let s):
            let id = s.containerID
            guard let uid = containerToPod[id] else { holdUntilCreated(input, container: id); break }
            guard var pod = pods[uid], var c = pod.containers[id] else { break }
            let started = Interval(start: s.beginUnixNs, end: s.endUnixNs)
            if c.started.map({ Self.better(started, s.source, than: $0, c.startSource) }) ?? true {
                c.started = started
                c.startSource = s.source
            }
            pod.containers[id] = c
            pods[uid] = pod

        case .containerMountNamespace(let m):
            let (id, ns) = (m.containerID, m.mountNamespace)
            claim(ns, for: id)
            if trackers[ns] == nil { trackers[ns] = AccessTracker(mountNamespace: ns) }
            if containerToPod[id] == nil { holdUntilCreated(input, container: id) }
            if let uid = containerToPod[id], var pod = pods[uid] {
                pod.containers[id]?.mountNamespace = ns
                if trackers[ns] == nil { trackers[ns] = AccessTracker(mountNamespace: ns) }
                if let first = trackers[ns]?.firstExecNs, pod.containers[id]?.firstExec == nil {
                    pod.containers[id]?.firstExec = clock.unixNanoseconds(monotonic: first)
                }
                pods[uid] = pod
            }
        case .containerExited(let e):
            let id = e.containerID
            guard let uid = containerToPod[id] else { holdUntilCreated(input, container: id); break }
            guard var pod = pods[uid] else { break }
            pod.containers[id]?.exited = (e.atUnixNs, e.exitCode)
            pods[uid] = pod
        case .ready(let r):
            guard var pod = state(r.uid, at: r.atUnixNs) else { break }
            if pod.ready == nil || r.source > pod.ready!.source { pod.ready = (r.atUnixNs, r.source) }
            pods[r.uid] = pod
        case .failed(let f):
            guard var pod = state(f.uid, at: f.atUnixNs) else { break }
            pod.failure = (f.atUnixNs, f.reason)
            pods[f.uid] = pod
        case .preexisting(let uid):
            ignored.insert(uid)
            pods.removeValue(forKey: uid)
        case .runtimeContainer(let r):
            guard var pod = state(r.uid) else { break }
            pod.runtime = .init(containerdNamespace: r.containerdNamespace, containerID: r.containerID)
            pods[r.uid] = pod
        case .containerPid(let p):
            pidToContainer[p.pid] = p.containerID
            if let seen = execNamespaces[p.pid] {
                _ = ingest(.containerMountNamespace(.init(containerID: p.containerID, mountNamespace: seen.ns)), resolve: resolve)
            }
        case .kubeletStartup(let line):
            if let uid = pods.values.first(where: { $0.namespace == line.namespace && $0.name == line.name })?.uid {
                applyStartupLine(line, to: uid)
            } else {
                pendingStartupLines[line.pod] = line
            }
        case .kernel(let event):
            ingestKernel(event)
        case .aggregates(let a):
            addAggregates(openCounts: a.openCounts, writeTotals: a.writeTotals)
        case .clockOffset(let offset):
            // A step of d: wall readings from now on are d later for the same monotonic instant.
            // The correlator's clock moves with them (a step back no longer stalls it); every open
            // start keeps its monotonic deadline through its own `clockShift` (finalizeDue).
            let d = offset.saturatingSubtract(clock.offsetNs)
            clock = WallClock(offsetNs: offset)
            clockShift = clockShift.saturatingAdd(d)
            now = now.saturatingAdd(d)
            if lastSweep != .min { lastSweep = lastSweep.saturatingAdd(d) }
            earliestDue = .min
        case .tick(let t):
            now = max(now, t)
            if trackers.count > Self.MemoryBounds.sweepAbove, now >= lastSweep.saturatingAdd(Self.MemoryBounds.sweepEveryNs) {
                sweepIdleNamespaces()
            }
        }
        return finalizeDue(resolve: resolve)
    }

    /// The kubelet's own view of a start: its pull window and the instants of its SLI. Never a
    /// readiness time: the kubelet writes the line at the first pod watch event after it saw the
    /// pod running, which can be many seconds after the pod was Ready (DESIGN.md).
    private mutating func applyStartupLine(_ line: KubeletPodStartupObservation, to uid: String) {
        guard var pod = state(uid) else { return }
        if let created = line.created?.nanosecondsSinceEpoch, pod.creationSecond == nil { pod.creationSecond = created }
        if let begin = line.firstStartedPulling?.nanosecondsSinceEpoch, let end = line.lastFinishedPulling?.nanosecondsSinceEpoch, end >= begin {
            pod.measurements.append(PhaseMeasurement(phase: .pull, interval: Interval(start: begin, end: end), source: .kubeletLog))
        }
        pod.kubeletLine = line
        now = max(now, line.watchObservedRunning?.nanosecondsSinceEpoch ?? now)
        pods[uid] = pod
    }

    /// How far after the whole second an API time names a node instant may lie and still be taken
    /// for the same moment (the second's own fraction, plus the watch's delivery).
    static let subSecondWindowNs: Int64 = 2_000_000_000

    /// A second-resolution API time made sub-second by a node instant that follows it closely:
    /// `observed` when it lies within `subSecondWindowNs` after `second`, else `second` (a
    /// listing or a replay long after the change says only the second).
    static func subSecond(_ second: Int64, observed: Int64?) -> Int64 {
        guard let observed, observed >= second, observed - second < subSecondWindowNs else { return second }
        return observed
    }

    /// The pod's own record (API server watch, the kubelet's /pods).
    private mutating func ingestStatus(_ r: PodStatusReport) {
        // A pod first seen Ready in the agent's first listing started before the agent: not a start.
        if r.fromInitialList, r.readyUnixNs != nil, pods[r.uid] == nil {
            if !reportedUIDs.contains(r.uid) { ignored.insert(r.uid) }
            return
        }
        guard var pod = state(r.uid) else { return }
        if !r.namespace.isEmpty { pod.namespace = r.namespace }
        if !r.name.isEmpty { pod.name = r.name }
        pod.statusSource = r.source
        if let c = r.createdUnixNs { pod.creationSecond = c }
        if let s = r.scheduledUnixNs { pod.scheduledSecond = s }
        if let p = r.hasReadinessProbe { pod.hasReadinessProbe = p }
        if !r.initContainers.isEmpty { pod.statusInits = r.initContainers }
        if let first = pod.firstNodeInstant, !r.fromInitialList { pod.firstNodeInstant = min(first, r.observedUnixNs) } else if pod.firstNodeInstant == nil, !r.fromInitialList {
            pod.firstNodeInstant = r.observedUnixNs
        }
        if let running = r.allRunningUnixNs {
            pod.runningSecond = running
            if pod.runningObserved == nil { pod.runningObserved = Self.subSecond(running, observed: r.observedUnixNs) }
        }
        if let ready = r.readyUnixNs, pod.ready == nil || r.source > pod.ready!.source {
            pod.ready = (Self.subSecond(ready, observed: r.observedUnixNs), r.source)
        }
        pods[r.uid] = pod
        if !pod.namespace.isEmpty || !pod.name.isEmpty, let line = pendingStartupLines.removeValue(forKey: "\(pod.namespace)/\(pod.name)") {
            applyStartupLine(line, to: r.uid)
        }
    }

    /// Whether a measured interval should replace the one known: a measured span beats an
    /// instant (a listing saw only when something was done), else the more precise source wins.
    static func better(_ new: Interval, _ newSource: PhaseSource, than old: Interval, _ oldSource: PhaseSource) -> Bool {
        if (old.duration == 0) != (new.duration == 0) { return old.duration == 0 }
        return newSource > oldSource
    }

    private mutating func canonicalImage(_ image: String) -> String {
        if let known = canonicalImages[image] { return known }
        if canonicalImages.count >= 1024 { canonicalImages.removeAll(keepingCapacity: true) }
        let canonical = ImageReference.canonical(image)
        canonicalImages[image] = canonical
        return canonical
    }

    private mutating func holdUntilCreated(_ input: CorrelatorInput, container id: String) {
        if pendingByContainer[id] == nil {
            // containers no source ever creates (another runtime's, a pre-existing pod's) must
            // not pile up: the oldest are forgotten past a bound
            pendingOrder.append(id)
            if pendingOrder.count > 1024 {
                for old in pendingOrder.prefix(256) { pendingByContainer.removeValue(forKey: old) }
                pendingOrder.removeFirst(256)
            }
        }
        pendingByContainer[id, default: []].append(input)
    }

    private mutating func state(_ uid: String, at time: Int64? = nil) -> PodState? {
        if ignored.contains(uid) { ignored.touch(uid); return nil }
        if reportedUIDs.contains(uid) { reportedUIDs.touch(uid); return nil }
        if let time { now = max(now, time) }
        return pods[uid] ?? PodState(uid: uid, firstSeen: time ?? now, clockShift: clockShift)
    }

    private mutating func ingestKernel(_ event: KernelEvent) {
        now = max(now, clock.unixNanoseconds(monotonic: event.timestampNs))
        switch event {
        case .writeBegin(let w) where w.isRuntimeProcess:
            if let target = PullWriteClassifier.target(path: w.path.path) { pullWrites[.init(w)] = (target, w.timestampNs) }
        case .exec(let e):
            if e.isRuntimeProcess, let runc = RuncInvocation(e) {
                runcRunning[e.task.pid] = (runc, e.timestampNs)
                if runcRunning.count > 1024 { runcRunning = runcRunning.filter { $0.value.at + 60_000_000_000 > e.timestampNs } }
            }
            let ns = e.task.mountNamespace
            if exitedNamespaces.remove(ns) != nil {
                if let id = namespaceToContainer.removeValue(forKey: ns) {
                    if let tracker = trackers.removeValue(forKey: ns) { retiredTrackers[id] = tracker }
                    if let uid = containerToPod[id], pods[uid]?.containers[id]?.mountNamespace == ns {
                        pods[uid]?.containers[id]?.namespaceRetired = true
                    }
                } else {
                    trackers.removeValue(forKey: ns)
                }
            }
            claimedBeforeExec.remove(ns)
            rememberExec(pid: e.task.pid, mountNamespace: ns, at: e.timestampNs)
            if let id = pidToContainer[e.task.pid], namespaceToContainer[ns] == nil {
                namespaceToContainer[ns] = id
                if let uid = containerToPod[id] { pods[uid]?.containers[id]?.mountNamespace = ns }
            }
            if trackers[ns] == nil { trackers[ns] = AccessTracker(mountNamespace: ns) }
            trackers[ns]?.add(event)
            if let id = namespaceToContainer[ns], let uid = containerToPod[id], var pod = pods[uid], pod.containers[id]?.firstExec == nil {
                pod.containers[id]?.firstExec = clock.unixNanoseconds(monotonic: e.timestampNs)
                pods[uid] = pod
            }
        case .exit(let e) where e.isRuntimeProcess:
            if let (runc, at) = runcRunning.removeValue(forKey: e.task.pid), e.exitStatus == 0, e.signal == 0 {
                noteRunc(runc, Interval(start: clock.unixNanoseconds(monotonic: at), end: clock.unixNanoseconds(monotonic: e.timestampNs)))
            }
        case .exit(let e) where e.task.namespacePid == 1:
            // A container's init exited: its mount namespace's inode number may go to the next
            // container. Records still in flight (ranges drained late) keep arriving under it, so
            // it is retired only when another container's exec claims the number. An init that
            // never executed in the namespace's current records is the previous holder's, exiting
            // after the next container already claimed the number (a listing ahead of the kernel):
            // the current holder has not exited.
            let ns = e.task.mountNamespace
            if let pids = trackers[ns]?.execPids, pids.isEmpty ? claimedBeforeExec.contains(ns) : !pids.contains(e.task.pid) { break }
            exitedNamespaces.insert(ns)
        case .open(let o):
            trackers[o.task.mountNamespace]?.add(event)
        case .readRange(let r):
            trackers[r.mountNamespace]?.add(event)
        case .fuseRequest(let f):
            trackers[f.task.mountNamespace]?.add(event)
        default:
            break
        }
    }

    /// A container's process lives in `ns` (from /proc, or the runtime's pid joined with an exec):
    /// the number is this container's now. Two live containers never share a mount namespace, so
    /// a container that held the number before is gone: its records are retired under its id (its
    /// start may still be open, waiting out its grace) and the number starts clean for the new
    /// one. Without this, a link that arrives before the exec proving the reuse filed the first
    /// start's accesses under the second and the second's under the first (issue #19).
    private mutating func claim(_ ns: UInt32, for id: String) {
        if let previous = namespaceToContainer[ns], previous != id {
            if let tracker = trackers.removeValue(forKey: ns), containerToPod[previous] != nil { retiredTrackers[previous] = tracker }
            exitedNamespaces.remove(ns)
            claimedBeforeExec.insert(ns)
            if let uid = containerToPod[previous], pods[uid]?.containers[previous]?.mountNamespace == ns {
                pods[uid]?.containers[previous]?.namespaceRetired = true
            }
        }
        namespaceToContainer[ns] = id
    }

    private mutating func noteRunc(_ runc: RuncInvocation, _ span: Interval) {
        let id = runc.containerID
        if runcSpans[id] == nil {
            runcOrder.append(id)
            if runcOrder.count > 4096 {
                for old in runcOrder.prefix(1024) { runcSpans.removeValue(forKey: old) }
                runcOrder.removeFirst(1024)
            }
        }
        switch runc.step {
        case .create: runcSpans[id, default: RuncSpans()].create = span
        case .start: runcSpans[id, default: RuncSpans()].start = span
        }
    }

    /// Keeps the last few thousand exec records' namespaces (a task's pid arrives from the runtime
    /// a few milliseconds after its exec; older entries are of no use).
    private mutating func rememberExec(pid: UInt32, mountNamespace ns: UInt32, at t: UInt64) {
        execNamespaces[pid] = (ns, t)
        if execNamespaces.count > 8192 {
            let cutoff = execNamespaces.values.map(\.at).sorted()[4096]
            execNamespaces = execNamespaces.filter { $0.value.at >= cutoff }
        }
    }

    /// Kernel aggregates read at the end of a start window (open counts, write totals).
    public mutating func addAggregates(openCounts: [OpenCount], writeTotals: [WriteTotal]) {
        // the namespaces the counts name, in order (a handful: a Set would hash every count)
        var namespaces: [UInt32] = []
        for c in openCounts where namespaces.last != c.mountNamespace && !namespaces.contains(c.mountNamespace) {
            namespaces.append(c.mountNamespace)
        }
        for ns in namespaces {
            trackers[ns]?.add(openCounts: openCounts)
        }
        self.writeTotals += writeTotals
    }

    private mutating func finalizeDue(resolve: AccessResolver) -> [PodStartTrace] {
        // Most inputs are kernel records that change no start's deadline: nothing to look at
        // until the clock reaches the earliest one.
        if now < earliestDue { return [] }
        var done: [PodStartTrace] = []
        var next = Int64.max
        for uid in pods.keys.sorted() {
            guard let pod = pods[uid] else { continue }
            let start = Self.createdInstant(pod)
            let ready = pod.ready ?? runningReadiness(pod)
            let lineWait = pod.kubeletLine == nil && pod.creationSecond != nil && pod.ready != nil ? configuration.kubeletLineWaitNs : 0
            // `now` on the wall clock as it read when the start opened (#16.7): its timeout is
            // then a CLOCK_MONOTONIC span. Graces end by whichever reading is later, as their
            // instant may come from either side of a step (never waiting a step's length more).
            let lag = clockShift.saturatingSubtract(pod.clockShift)
            let startNow = now.saturatingSubtract(lag)
            let graceNow = max(now, startNow)
            if let ready, graceNow >= ready.at.saturatingAdd(max(configuration.graceNs, lineWait)) {
                done.append(finalize(pod, end: ready.at, outcome: .ready, reason: nil, resolve: resolve))
            } else if let failure = pod.failure, graceNow >= failure.at.saturatingAdd(configuration.graceNs) {
                done.append(finalize(pod, end: failure.at, outcome: .failed, reason: failure.reason, resolve: resolve))
            } else if pod.ready == nil, startNow.saturatingSubtract(start) > configuration.startTimeoutNs {
                let reason = "not ready within \(configuration.startTimeoutNs / 1_000_000_000) s"
                done.append(finalize(pod, end: start.saturatingAdd(configuration.startTimeoutNs), outcome: .failed, reason: reason, resolve: resolve))
            } else {
                // due instants on the correlator's own (current) wall reading
                let graceAhead = now.saturatingSubtract(graceNow)
                if let ready { next = min(next, ready.at.saturatingAdd(max(configuration.graceNs, lineWait)).saturatingAdd(graceAhead)) }
                if let failure = pod.failure { next = min(next, failure.at.saturatingAdd(configuration.graceNs).saturatingAdd(graceAhead)) }
                if pod.ready == nil { next = min(next, start.saturatingAdd(configuration.startTimeoutNs).saturatingAdd(1).saturatingAdd(lag)) }
            }
        }
        earliestDue = next
        return done
    }

    /// When every regular container has started (first exec, else the runtime's start): the
    /// readiness of a pod no readiness source reports, if the configuration allows it.
    private func runningReadiness(_ pod: PodState) -> (at: Int64, source: PhaseSource)? {
        guard configuration.readyWhenRunning else { return nil }
        let regular = pod.containers.values.filter { !$0.isInit }
        guard !regular.isEmpty else { return nil }
        var latest: (at: Int64, source: PhaseSource)?
        for c in regular {
            guard let started = c.started else { return nil }
            let at = c.firstExec.map { max($0, started.start) } ?? started.end
            if latest == nil || at > latest!.at { latest = (at, c.firstExec != nil ? .kernel : c.startSource) }
        }
        return latest
    }

    /// Records of mount namespaces no container claims (build sandboxes, `unshare`, containers of
    /// no start), idle since `MemoryBounds.idleNamespaceNs`: dropped even when no start finishes
    /// (``prune()`` runs only then).
    private mutating func sweepIdleNamespaces() {
        lastSweep = now
        let horizon = UInt64(clamping: now.saturatingSubtract(Self.MemoryBounds.idleNamespaceNs).saturatingSubtract(clock.offsetNs))
        let claimed = Set(pods.values.flatMap { $0.containers.values.compactMap(\.mountNamespace) })
        // links to containers no source created (a sandbox's pause, another runtime's) whose held
        // inputs are forgotten too: nothing will ever claim them
        namespaceToContainer = namespaceToContainer.filter { containerToPod[$0.value] != nil || pendingByContainer[$0.value] != nil }
        trackers = trackers.filter { ns, t in claimed.contains(ns) || namespaceToContainer[ns] != nil || (t.firstExecNs ?? .max) >= horizon }
        exitedNamespaces = exitedNamespaces.filter { trackers[$0] != nil || namespaceToContainer[$0] != nil }
        claimedBeforeExec = claimedBeforeExec.filter { trackers[$0] != nil || namespaceToContainer[$0] != nil }
    }

    /// Keeps only what an open start can still use, so memory stays flat however many starts pass.
    private mutating func prune() {
        let horizon = pods.values.map { Self.createdInstant($0) }.min() ?? now
        pendingStartupLines = pendingStartupLines.filter { ($0.value.watchObservedRunning?.nanosecondsSinceEpoch ?? now) > now.saturatingSubtract(configuration.startTimeoutNs) }
        pidToContainer = pidToContainer.filter { containerToPod[$0.value] != nil || pendingByContainer[$0.value] != nil }
        unassignedPulls.removeAll { $0.interval.end < horizon }
        let monotonicHorizon = UInt64(clamping: horizon.saturatingSubtract(clock.offsetNs))
        writeTotals.removeAll { $0.lastNs < monotonicHorizon }
        let live = Set(writeTotals.map(PullWriteClassifier.WriteKey.init))
        pullWrites = pullWrites.filter { live.contains($0.key) || $0.value.at >= monotonicHorizon }
        // access trackers of namespaces no open start claims, quiet since before the horizon
        let claimed = Set(pods.values.flatMap { $0.containers.values.compactMap(\.mountNamespace) })
        namespaceToContainer = namespaceToContainer.filter { containerToPod[$0.value] != nil || pendingByContainer[$0.value] != nil }
        trackers = trackers.filter { ns, t in claimed.contains(ns) || namespaceToContainer[ns] != nil || (t.firstExecNs ?? .max) >= monotonicHorizon }
        exitedNamespaces = exitedNamespaces.filter { trackers[$0] != nil || namespaceToContainer[$0] != nil }
        claimedBeforeExec = claimedBeforeExec.filter { trackers[$0] != nil || namespaceToContainer[$0] != nil }
    }

    /// The pulls no source tied to a pod that are this pod's: per image it runs, the pull that
    /// ended last after its sandbox was up and before it created a container of that image (the
    /// kubelet pulls an image for a pod between the two, and creates the container as soon as its
    /// pull returns); inside the kubelet's own pull window for the pod when its log gave one (the
    /// window ends as the pod's PullImage returned). One pull, one pod: a pull ending while another
    /// pod of the same image waited is not that pod's (issue #15: a burst's pods were given 2–3
    /// times their own pull). Pulls a log timed are preferred over the runtime's image events,
    /// which mark the end of the same pulls.
    private func ownPulls(_ pod: PodState, window: Interval, after sandboxEnd: Int64) -> [UnassignedPull] {
        let slackNs: Int64 = 10_000_000
        let kubelet = pod.measurements.filter { $0.phase == .pull && $0.source == .kubeletLog }.map(\.interval)
        var firstCreate: [String: Int64] = [:]
        for c in pod.containers.values where !c.image.isEmpty {
            let image = c.canonicalImage
            // a log times CreateContainer from its call; CRI's createdAt is its end
            let begins = c.created.duration > 0 ? c.created.start : c.created.end
            firstCreate[image] = min(firstCreate[image] ?? begins, begins)
        }
        var own: [UnassignedPull] = []
        for (image, createBegin) in firstCreate {
            var candidates = unassignedPulls.filter {
                $0.canonicalImage == image && $0.interval.end >= sandboxEnd && $0.interval.end <= createBegin + slackNs
                    && $0.interval.start >= window.start
            }
            if candidates.contains(where: { $0.interval.duration > 0 }) { candidates.removeAll { $0.interval.duration == 0 } }
            if !kubelet.isEmpty {
                candidates.removeAll { p in !kubelet.contains { p.interval.end >= $0.start && p.interval.end <= $0.end + slackNs } }
            }
            if let last = candidates.max(by: { $0.interval.end < $1.interval.end }) { own.append(last) }
        }
        return own
    }

    /// Closes every open start now (shutdown): ready ones as ready, others as failed.
    public mutating func flush(resolve: AccessResolver = Correlator.noResolver) -> [PodStartTrace] {
        pods.keys.sorted().compactMap { uid in
            guard let pod = pods[uid] else { return nil }
            if let ready = pod.ready ?? runningReadiness(pod) { return finalize(pod, end: ready.at, outcome: .ready, reason: nil, resolve: resolve) }
            return finalize(pod, end: max(now, pod.firstSeen), outcome: .failed,
                            reason: pod.failure?.reason ?? "agent stopped before the pod was ready", resolve: resolve)
        }
    }

    private mutating func finalize(_ pod: PodState, end: Int64, outcome: PodStartTrace.Outcome, reason: String?,
                                   resolve: AccessResolver) -> PodStartTrace {
        pods.removeValue(forKey: pod.uid)
        reportedUIDs.insert(pod.uid)
        let created = Self.createdInstant(pod)
        var measurements = pod.measurements
        let window = Interval(start: created, end: max(created, end))

        // schedule: created → bound to the node (zero for a pod created with its node name)
        var scheduleSource: PhaseSource?
        if let scheduled = Self.scheduledInstant(pod) {
            scheduleSource = scheduled.source
            measurements.append(PhaseMeasurement(phase: .schedule, interval: Interval(start: created, end: max(created, scheduled.at)),
                                                 source: scheduled.source))
        }
        // init containers as their status tells (the runtime's measurement, when there is one, wins)
        for run in pod.statusInits {
            guard let started = run.startedUnixNs, let finished = run.finishedUnixNs else { continue }
            measurements.append(PhaseMeasurement(phase: .`init`, interval: Interval(start: started, end: finished), source: pod.statusSource,
                                                 subject: run.name))
        }

        // The sandbox's pause container started by runc (kernel): where RunPodSandbox ends when
        // no log timed the call (a listing sees the sandbox only at its next poll).
        if !measurements.contains(where: { $0.phase == .sandbox && $0.source != .derived }),
           let sighted = measurements.last(where: { $0.phase == .sandbox }),
           let pause = pod.sandboxID.flatMap({ runcSpans[$0]?.start }), pause.end >= sighted.interval.start {
            measurements.append(PhaseMeasurement(phase: .sandbox, interval: Interval(start: sighted.interval.start, end: pause.end), source: .kernel))
        }
        // What the node alone tells of some steps is when they ended (an image stored, a
        // container created): such a step began when the pod's previous step ended, as the
        // kubelet makes its calls one after the other.
        var stepEnds = PhaseAttribution.preferPrecise(measurements.filter { $0.phase == .sandbox || $0.phase == .pull })
            .map(\.interval.end)
        func previousStepEnd(before t: Int64) -> Int64? {
            stepEnds.filter { $0 <= t && $0 >= window.start }.max()
        }

        // Init containers, as the pod's record names them (the runtime's labels do not say which
        // containers are init containers): the kubelet's next step after one is after its exit.
        let initNames = Set(pod.statusInits.map(\.name))
        func isInit(_ c: ContainerState) -> Bool { c.isInit || initNames.contains(c.name) }
        for c in pod.containers.values where isInit(c) {
            if let exited = c.exited { stepEnds.append(exited.at) }
        }

        // pulls whose pod no source named: each to the one pod that asked for it
        let sandboxEnd = PhaseAttribution.preferPrecise(measurements.filter { $0.phase == .sandbox }).map(\.interval.end).max() ?? window.start
        let own = ownPulls(pod, window: window, after: sandboxEnd)
        let claimed = Set(own.map(\.id))
        unassignedPulls.removeAll { claimed.contains($0.id) }
        for p in own {
            var interval = p.interval
            if interval.duration == 0 {
                // the runtime's event that the image was stored: the pull began when the pod's previous step ended
                guard let begin = previousStepEnd(before: interval.end) else { continue }
                interval.start = begin
            }
            measurements.append(PhaseMeasurement(phase: .pull, interval: interval, source: p.source, subject: p.image))
            stepEnds.append(interval.end)
        }
        var running: Int64?
        for c in pod.containers.values.sorted(by: { $0.created.start < $1.created.start }) {
            var created = c.created
            // CRI's createdAt is taken as CreateContainer finishes: the call began where the pod's
            // previous step ended
            if created.duration == 0, let begin = previousStepEnd(before: created.end) { created.start = begin }
            measurements.append(PhaseMeasurement(phase: .create, interval: created, source: c.createSource, subject: c.name))
            let runc = runcSpans[c.id]
            let runcStart = runc?.start.map { Interval(start: runc?.create?.start ?? $0.start, end: $0.end) }
            if let s = c.started ?? runcStart {
                // start = StartContainer → the first exec in the container's mount namespace; where
                // no exec was seen, until runc started the container (kernel), else the call's end
                let end = c.firstExec.map { max($0, s.start) } ?? runcStart.map { max($0.end, s.start) } ?? s.end
                let source: PhaseSource = c.firstExec != nil || runcStart != nil ? .kernel : (c.started != nil ? c.startSource : .kernel)
                measurements.append(PhaseMeasurement(phase: .start, interval: Interval(start: s.start, end: end), source: source, subject: c.name))
                stepEnds.append(end)
                if isInit(c), let exited = c.exited {
                    measurements.append(PhaseMeasurement(phase: .`init`, interval: Interval(start: end, end: exited.at), source: .cri, subject: c.name))
                } else if !isInit(c) {
                    running = max(running ?? end, end)
                }
            }
        }
        if running == nil, let second = pod.runningSecond {
            running = second
        }
        // An init container runs before any pull of the regular containers' images: a pull window
        // that spans init runs (the kubelet's first pull → last pull) does not claim them.
        // Each init container's run as precisely as it was measured: the runtime's exit beats its
        // status, whose whole seconds start up to a second early and would cut the pull before it.
        let initRuns = PhaseAttribution.union(PhaseAttribution.preferPrecise(measurements.filter { $0.phase == .`init` }).map(\.interval))
        if !initRuns.isEmpty {
            measurements = measurements.flatMap { m -> [PhaseMeasurement] in
                guard m.phase == .pull else { return [m] }
                return Self.subtract(initRuns, from: m.interval).map { var part = m; part.interval = $0; return part }
            }
        }
        // running → Ready: `probe` when a readiness probe decides it, else the kubelet reporting it
        if let running, outcome == .ready, let ready = pod.ready {
            let phase: PhaseName = pod.hasReadinessProbe.map { $0 ? .probe : .readyReport } ?? (ready.source == .prober ? .probe : .readyReport)
            measurements.append(PhaseMeasurement(phase: phase, interval: Interval(start: running, end: end),
                                                 source: ready.source))
        }
        let writes = PullWriteClassifier.intervals(totals: writeTotals, clock: clock) { pullWrites[$0]?.target }
        var phases = PhaseAttribution.attribute(window: window, measurements: measurements,
                                                download: writes.download, decompress: writes.decompress)
        if let scheduleSource, !phases.contains(where: { $0.name == .schedule }) {
            // bound as it was created: scheduling took no time, and says so
            phases.insert(PhaseSpan(name: .schedule, start: created, end: created, parent: nil, source: scheduleSource), at: 0)
        }
        let sli = Self.startSLI(pod, measurements: measurements)

        // the records of a container: retired with its namespace number, or under the number it
        // still holds — never those of the container that took the number since
        func tracker(_ c: ContainerState) -> AccessTracker? {
            retiredTrackers[c.id] ?? (c.namespaceRetired ? nil : c.mountNamespace.flatMap { trackers[$0] })
        }
        phases += Self.lazyFetchSpans(
            waits: pod.containers.values.flatMap { c in
                (tracker(c)?.fuseWaits ?? []).map {
                    Interval(start: clock.unixNanoseconds(monotonic: UInt64($0.start)), end: clock.unixNanoseconds(monotonic: UInt64($0.end)))
                }
            },
            within: phases)
        let containers = pod.containers.values.sorted(by: { $0.created.start < $1.created.start }).map { c in
            let tracker = tracker(c)
            let retired = retiredTrackers[c.id] != nil || c.namespaceRetired
            func resolveHere(_ path: String, _ file: FileIdentity) -> LayerLocation? {
                resolve(AccessContainer(id: c.id, mountNamespace: c.mountNamespace, imageDigest: c.imageDigest, initExited: retired), path, file)
            }
            return PodStartTrace.Container(
                name: c.name, image: c.image, imageDigest: c.imageDigest, exitCode: c.exited.map { $0.code },
                firstExec: tracker?.firstExecNs.map { clock.unixNanoseconds(monotonic: $0) } ?? c.firstExec,
                accesses: tracker.map { $0.accesses(resolve: resolveHere) } ?? [],
                lazyFetches: tracker.map { $0.lazyFetches(resolve: resolveHere) } ?? [])
        }
        for c in pod.containers.values {
            if let ns = c.mountNamespace, !c.namespaceRetired, namespaceToContainer[ns] == c.id || namespaceToContainer[ns] == nil {
                trackers.removeValue(forKey: ns)
                namespaceToContainer.removeValue(forKey: ns)
                exitedNamespaces.remove(ns)
            }
            containerToPod.removeValue(forKey: c.id)
            retiredTrackers.removeValue(forKey: c.id)
            pidToContainer = pidToContainer.filter { $0.value != c.id }
        }
        prune()
        var trace = PodStartTrace(pod: .init(namespace: pod.namespace, name: pod.name, uid: pod.uid), runtime: pod.runtime,
                                  created: created, ready: outcome == .ready ? end : nil, outcome: outcome,
                                  failureReason: reason, phases: phases, containers: containers, sli: sli)
        // ready with no readiness source's word: the containers ran, whether the pod was Ready is not known
        if outcome == .ready, pod.ready == nil { trace.readiness = .unknown }
        return trace
    }

    /// The `lazy_fetch` sub-phase: the instants some container task of the pod had a FUSE request
    /// in flight, split at the top-level phases they fall in (each piece's parent; mostly `start`,
    /// while runc execs the entrypoint, and `probe`, while the application loads).
    static func lazyFetchSpans(waits: [Interval], within phases: [PhaseSpan]) -> [PhaseSpan] {
        guard !waits.isEmpty else { return [] }
        let merged = PhaseAttribution.union(waits)
        var spans: [PhaseSpan] = []
        for top in phases where top.parent == nil {
            let bounds = Interval(start: top.start, end: top.end)
            for w in merged {
                guard let piece = w.clamped(to: bounds) else { continue }
                spans.append(PhaseSpan(name: .lazyFetch, start: piece.start, end: piece.end, parent: top.name, source: .kernel))
            }
        }
        return spans
    }

    /// When the pod was created, as precisely as the sources allow: the API's creationTimestamp
    /// is a whole second, so the first instant the node knew of the pod (the watch delivering it,
    /// else its sandbox) stands for it when it lies within that second; else the second itself.
    /// Without the pod's record: the earliest creation a source gave, else the first sighting.
    static func createdInstant(_ pod: PodState) -> Int64 {
        guard let second = pod.creationSecond else { return pod.created ?? pod.firstSeen }
        if let first = pod.firstNodeInstant, first >= second, first < second + 1_000_000_000 { return first }
        return second
    }

    /// When the pod was bound to this node: PodScheduled's second made sub-second by the node
    /// learning of the pod (its watch only shows bound pods), else a `.scheduled` input's time.
    static func scheduledInstant(_ pod: PodState) -> (at: Int64, source: PhaseSource)? {
        if let second = pod.scheduledSecond {
            if let first = pod.firstNodeInstant, first >= second, first < second + 1_000_000_000 { return (first, pod.statusSource) }
            return (second, pod.statusSource)
        }
        return pod.scheduled
    }

    /// `interval` without the parts `holes` (sorted, disjoint) cover.
    static func subtract(_ holes: [Interval], from interval: Interval) -> [Interval] {
        var parts: [Interval] = []
        var start = interval.start
        for h in holes where h.end > start && h.start < interval.end {
            if h.start > start { parts.append(Interval(start: start, end: h.start)) }
            start = max(start, h.end)
        }
        if start < interval.end { parts.append(Interval(start: start, end: interval.end)) }
        return parts
    }

    /// The kubelet v1.28 SLI of the start: the kubelet's own instants when its startup line was
    /// read; else podstart's: creationTimestamp, its pulls' first start and last end (the pull
    /// measurements before init runs were cut out of them, as the kubelet's window spans them),
    /// and the pod record's first arrival showing every container running.
    static func startSLI(_ pod: PodState, measurements: [PhaseMeasurement]) -> PodStartTrace.StartSLI? {
        if let line = pod.kubeletLine, let created = line.created?.nanosecondsSinceEpoch,
           let running = line.watchObservedRunning?.nanosecondsSinceEpoch {
            return .init(createdUnixNs: created, firstStartedPullingUnixNs: line.firstStartedPulling?.nanosecondsSinceEpoch,
                         lastFinishedPullingUnixNs: line.lastFinishedPulling?.nanosecondsSinceEpoch,
                         watchObservedRunningUnixNs: running, source: .kubeletLog)
        }
        guard let created = pod.creationSecond, let running = pod.runningObserved else { return nil }
        let pulls = measurements.filter { $0.phase == .pull }.map(\.interval)
        return .init(createdUnixNs: created, firstStartedPullingUnixNs: pulls.map(\.start).min(), lastFinishedPullingUnixNs: pulls.map(\.end).max(),
                     watchObservedRunningUnixNs: running, source: pod.statusSource)
    }
}
