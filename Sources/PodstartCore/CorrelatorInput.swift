/// What the sources tell the correlator, normalised. Sources only report; the correlator alone
/// decides phases.
///
/// Times: every time field is Unix nanoseconds (`Int64`, nanoseconds since 1970-01-01 UTC) and its
/// name ends in `UnixNs` (`beginUnixNs`, `atUnixNs`). Kernel records are the one exception: they
/// keep their CLOCK_MONOTONIC `timestampNs` (`UInt64`) and the correlator converts them with its
/// `WallClock`. Plain suffixed `Int64`s rather than a wrapper type: the payloads are built in hot
/// loops, encoded to JSON as integers and compared against `Interval`, which is Unix ns too.
///
/// Each case carries one named payload; a case with a single field (`preexisting`, `tick`) keeps
/// it as a labelled value, since a one-field struct would add a name and nothing else.
public enum CorrelatorInput: Sendable, Hashable {
    /// A pod exists: identity and creation time (API server, kubelet /pods, CRI sandbox config).
    case pod(PodSighting)
    /// The pod was bound to this node (PodScheduled / Scheduled event).
    case scheduled(PodScheduling)
    /// The pod's own record as the API server's watch (or the kubelet's /pods) delivered it:
    /// creation, scheduling, init container runs, containers running, Ready, readiness probes.
    case podStatus(PodStatusReport)
    /// RunPodSandbox ran.
    case sandbox(SandboxCreation)
    /// An image pull, for a known pod or not (e.g. from a containerd log line).
    case pull(ImagePull)
    /// CreateContainer ran.
    case containerCreated(ContainerCreation)
    /// StartContainer ran.
    case containerStarted(ContainerStart)
    /// The container's processes live in this mount namespace (from /proc of its pid).
    case containerMountNamespace(ContainerMountNamespace)
    /// The container's init process exited.
    case containerExited(ContainerExit)
    /// The pod became ready (Ready condition, or the prober's first success).
    case ready(PodReadiness)
    /// The start failed for a reason a source knows (image not found, container exited).
    case failed(PodFailure)
    /// Pods or containers that were running before the agent started: never reported as starts.
    case preexisting(uid: String)
    /// A start without a pod (a container started straight through containerd).
    case runtimeContainer(RuntimeContainer)
    /// The container's init process (from the runtime's task-start event). Joined with the kernel's
    /// exec records, it gives the container's mount namespace even when the process has already
    /// exited and /proc no longer has it.
    case containerPid(ContainerInitProcess)
    /// The kubelet's "Observed pod startup duration" line: joined by namespace/name, it gives the
    /// pull window the kubelet measured and when the kubelet saw every container running.
    /// Boxed: at 265 bytes it would make every input (kernel records above all) that large.
    indirect case kubeletStartup(KubeletPodStartupObservation)
    /// A kernel record.
    case kernel(KernelEvent)
    /// The kernel's in-map aggregates, read while a start window is open.
    case aggregates(KernelAggregates)
    /// Time passes (closes starts that never became ready).
    case tick(nowUnixNs: Int64)
    /// The wall clock was stepped (or slewed past a threshold): CLOCK_REALTIME − CLOCK_MONOTONIC
    /// is now `offsetNs` (issue #16.7). Kernel records after it convert with the new offset; the
    /// deadlines of starts already open keep following CLOCK_MONOTONIC.
    case clockOffset(offsetNs: Int64)
}

/// A pod exists: its identity and, when the source knows it, its creation time.
public struct PodSighting: Sendable, Hashable {
    public var uid: String
    public var namespace: String
    public var name: String
    /// When the pod object was created (Unix ns), if the source knows.
    public var createdUnixNs: Int64?
    public var source: PhaseSource
    public init(uid: String, namespace: String, name: String, createdUnixNs: Int64?, source: PhaseSource) {
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.createdUnixNs = createdUnixNs
        self.source = source
    }
}

/// The pod was bound to this node.
public struct PodScheduling: Sendable, Hashable {
    public var uid: String
    /// When it was bound (Unix ns).
    public var atUnixNs: Int64
    public var source: PhaseSource
    public init(uid: String, atUnixNs: Int64, source: PhaseSource) {
        self.uid = uid
        self.atUnixNs = atUnixNs
        self.source = source
    }
}

/// The pod's own record at one moment (API server watch or list, the kubelet's /pods). The API has
/// second resolution: every `…UnixNs` from it is a whole second (the instant truncated), except
/// `observedUnixNs`, the node's own clock when the record arrived, which makes them sub-second
/// (docs/agent.md "Where the instants come from").
public struct PodStatusReport: Sendable, Hashable {
    /// One init container's run as its status says (terminated.startedAt → finishedAt; running:
    /// no end yet).
    public struct InitContainerRun: Sendable, Hashable {
        public var name: String
        public var startedUnixNs: Int64?
        public var finishedUnixNs: Int64?
        public init(name: String, startedUnixNs: Int64?, finishedUnixNs: Int64?) {
            self.name = name
            self.startedUnixNs = startedUnixNs
            self.finishedUnixNs = finishedUnixNs
        }
    }

    public var uid: String
    public var namespace: String
    public var name: String
    /// `metadata.creationTimestamp` (a whole second).
    public var createdUnixNs: Int64?
    /// PodScheduled=True's `lastTransitionTime` (a whole second).
    public var scheduledUnixNs: Int64?
    /// Whether any regular container of the spec has a readiness probe; nil when the source does
    /// not carry the spec.
    public var hasReadinessProbe: Bool?
    public var initContainers: [InitContainerRun]
    /// Every regular container is running: the latest `state.running.startedAt` (a whole second).
    public var allRunningUnixNs: Int64?
    /// Ready=True's `lastTransitionTime` (a whole second); nil while the pod is not ready.
    public var readyUnixNs: Int64?
    /// When this record reached the agent (the node's wall clock, nanoseconds).
    public var observedUnixNs: Int64
    /// The record came from the agent's first listing of the node's pods (not from a change).
    public var fromInitialList: Bool
    public var source: PhaseSource

    public init(uid: String, namespace: String, name: String, createdUnixNs: Int64?, scheduledUnixNs: Int64?,
                hasReadinessProbe: Bool?, initContainers: [InitContainerRun] = [], allRunningUnixNs: Int64?,
                readyUnixNs: Int64?, observedUnixNs: Int64, fromInitialList: Bool = false, source: PhaseSource) {
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.createdUnixNs = createdUnixNs
        self.scheduledUnixNs = scheduledUnixNs
        self.hasReadinessProbe = hasReadinessProbe
        self.initContainers = initContainers
        self.allRunningUnixNs = allRunningUnixNs
        self.readyUnixNs = readyUnixNs
        self.observedUnixNs = observedUnixNs
        self.fromInitialList = fromInitialList
        self.source = source
    }
}

/// RunPodSandbox ran for the pod from `beginUnixNs` to `endUnixNs`.
public struct SandboxCreation: Sendable, Hashable {
    public var uid: String
    public var sandboxID: String
    public var beginUnixNs: Int64
    public var endUnixNs: Int64
    public var source: PhaseSource
    public init(uid: String, sandboxID: String, beginUnixNs: Int64, endUnixNs: Int64, source: PhaseSource) {
        self.uid = uid
        self.sandboxID = sandboxID
        self.beginUnixNs = beginUnixNs
        self.endUnixNs = endUnixNs
        self.source = source
    }
}

/// An image was pulled from `beginUnixNs` to `endUnixNs`; `uid` is nil when the source does not
/// know for which pod (the correlator then assigns it by image and time).
public struct ImagePull: Sendable, Hashable {
    public var uid: String?
    public var image: String
    public var beginUnixNs: Int64
    public var endUnixNs: Int64
    public var source: PhaseSource
    public init(uid: String?, image: String, beginUnixNs: Int64, endUnixNs: Int64, source: PhaseSource) {
        self.uid = uid
        self.image = image
        self.beginUnixNs = beginUnixNs
        self.endUnixNs = endUnixNs
        self.source = source
    }
}

/// CreateContainer ran for the pod from `beginUnixNs` to `endUnixNs`. Identity fields a source
/// does not know are empty (`name`, `image`) or nil (`imageDigest`).
public struct ContainerCreation: Sendable, Hashable {
    public var uid: String
    public var containerID: String
    public var name: String
    public var image: String
    public var imageDigest: String?
    /// An init container.
    public var isInit: Bool
    public var beginUnixNs: Int64
    public var endUnixNs: Int64
    public var source: PhaseSource
    public init(uid: String, containerID: String, name: String, image: String, imageDigest: String?, isInit: Bool,
                beginUnixNs: Int64, endUnixNs: Int64, source: PhaseSource) {
        self.uid = uid
        self.containerID = containerID
        self.name = name
        self.image = image
        self.imageDigest = imageDigest
        self.isInit = isInit
        self.beginUnixNs = beginUnixNs
        self.endUnixNs = endUnixNs
        self.source = source
    }
}

/// StartContainer ran from `beginUnixNs` to `endUnixNs`.
public struct ContainerStart: Sendable, Hashable {
    public var containerID: String
    public var beginUnixNs: Int64
    public var endUnixNs: Int64
    public var source: PhaseSource
    public init(containerID: String, beginUnixNs: Int64, endUnixNs: Int64, source: PhaseSource) {
        self.containerID = containerID
        self.beginUnixNs = beginUnixNs
        self.endUnixNs = endUnixNs
        self.source = source
    }
}

/// The container's processes live in this mount namespace.
public struct ContainerMountNamespace: Sendable, Hashable {
    public var containerID: String
    /// The mount namespace's inode number (as the kernel records report it).
    public var mountNamespace: UInt32
    public init(containerID: String, mountNamespace: UInt32) {
        self.containerID = containerID
        self.mountNamespace = mountNamespace
    }
}

/// The container's init process exited at `atUnixNs` with `exitCode`.
public struct ContainerExit: Sendable, Hashable {
    public var containerID: String
    public var atUnixNs: Int64
    public var exitCode: Int32
    public init(containerID: String, atUnixNs: Int64, exitCode: Int32) {
        self.containerID = containerID
        self.atUnixNs = atUnixNs
        self.exitCode = exitCode
    }
}

/// The pod became ready at `atUnixNs`.
public struct PodReadiness: Sendable, Hashable {
    public var uid: String
    public var atUnixNs: Int64
    public var source: PhaseSource
    public init(uid: String, atUnixNs: Int64, source: PhaseSource) {
        self.uid = uid
        self.atUnixNs = atUnixNs
        self.source = source
    }
}

/// The pod's start failed at `atUnixNs`, for `reason`.
public struct PodFailure: Sendable, Hashable {
    public var uid: String
    public var atUnixNs: Int64
    public var reason: String
    public init(uid: String, atUnixNs: Int64, reason: String) {
        self.uid = uid
        self.atUnixNs = atUnixNs
        self.reason = reason
    }
}

/// A container started straight through containerd (`ctr run`, nerdctl): its start is tracked as
/// a pod whose `uid` is the container id, and the timeline names the containerd namespace.
public struct RuntimeContainer: Sendable, Hashable {
    public var uid: String
    public var containerdNamespace: String
    public var containerID: String
    public init(uid: String, containerdNamespace: String, containerID: String) {
        self.uid = uid
        self.containerdNamespace = containerdNamespace
        self.containerID = containerID
    }
}

/// The container's init process, by its pid in the host's pid namespace.
public struct ContainerInitProcess: Sendable, Hashable {
    public var containerID: String
    public var pid: UInt32
    public init(containerID: String, pid: UInt32) {
        self.containerID = containerID
        self.pid = pid
    }
}

/// The kernel's in-map aggregates (their times are CLOCK_MONOTONIC, like kernel records).
public struct KernelAggregates: Sendable, Hashable {
    public var openCounts: [OpenCount]
    public var writeTotals: [WriteTotal]
    public init(openCounts: [OpenCount], writeTotals: [WriteTotal]) {
        self.openCounts = openCounts
        self.writeTotals = writeTotals
    }
}

extension CorrelatorInput {
    /// The pod UID the input is about, if it names one (a pull's may be unknown).
    public var podUID: String? {
        switch self {
        case .pod(let p): p.uid
        case .scheduled(let s): s.uid
        case .podStatus(let s): s.uid
        case .sandbox(let s): s.uid
        case .pull(let p): p.uid
        case .containerCreated(let c): c.uid
        case .ready(let r): r.uid
        case .failed(let f): f.uid
        case .preexisting(let uid): uid
        case .runtimeContainer(let r): r.uid
        case .containerStarted, .containerMountNamespace, .containerExited, .containerPid, .kubeletStartup, .kernel, .aggregates, .tick, .clockOffset: nil
        }
    }

    /// The container id the input is about, if it names one.
    public var containerID: String? {
        switch self {
        case .containerCreated(let c): c.containerID
        case .containerStarted(let s): s.containerID
        case .containerMountNamespace(let m): m.containerID
        case .containerExited(let e): e.containerID
        case .containerPid(let p): p.containerID
        case .runtimeContainer(let r): r.containerID
        case .pod, .scheduled, .podStatus, .sandbox, .pull, .ready, .failed, .preexisting, .kubeletStartup, .kernel, .aggregates, .tick, .clockOffset: nil
        }
    }
}
