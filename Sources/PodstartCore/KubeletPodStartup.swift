/// A wall-clock instant as the kubelet or containerd logged it.
///
/// `nanosecondsSinceEpoch` is UTC wall time (Unix epoch, nanoseconds). `monotonicNanoseconds` is
/// the Go monotonic reading (`m=+…`, nanoseconds since the kubelet process started) when the value
/// came from `time.Now()`; Go subtracts two such instants on that clock, and so do we.
public struct KubeletTimestamp: Sendable, Hashable, Comparable {
    /// Nanoseconds since the Unix epoch, UTC.
    public var nanosecondsSinceEpoch: Int64
    /// Nanoseconds since the kubelet process started (Go's `m=+` suffix), when logged.
    public var monotonicNanoseconds: Int64?

    public init(nanosecondsSinceEpoch: Int64, monotonicNanoseconds: Int64? = nil) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
        self.monotonicNanoseconds = monotonicNanoseconds
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    /// `self − other` in nanoseconds with Go's `time.Time.Sub` semantics: on the monotonic clock
    /// when both carry a reading, else on the wall clock; saturating at the Int64 range.
    public func goSub(_ other: KubeletTimestamp) -> Int64 {
        if let a = monotonicNanoseconds, let b = other.monotonicNanoseconds {
            let (d, overflow) = a.subtractingReportingOverflow(b)
            return overflow ? (a > b ? .max : .min) : d
        }
        let (d, overflow) = nanosecondsSinceEpoch.subtractingReportingOverflow(other.nanosecondsSinceEpoch)
        return overflow ? (nanosecondsSinceEpoch > other.nanosecondsSinceEpoch ? .max : .min) : d
    }
}

/// Which field set the kubelet's "Observed pod startup duration" line carried
/// (docs/kubelet-startup-line.md#field-sets).
public enum KubeletStartupLineVariant: String, Sendable, Hashable, CaseIterable {
    /// 1.26: `pod.CreationTimestamp`, no E2E.
    case v1 = "V1"
    /// 1.27–1.28: `podCreationTimestamp`, no E2E.
    case v2 = "V2"
    /// 1.29–1.35: adds `podStartE2EDuration`.
    case v3 = "V3"
    /// 1.36+: pull and init totals replace the first/last pull instants.
    case v4 = "V4"
}

/// What the kubelet's pod startup latency tracker logged for one pod, once per pod.
///
/// The correlator uses it as the kubelet's own view of a pod start: `created` → `watchObservedRunning`
/// is the end-to-end interval, and the pull fields say what the kubelet subtracted for its SLI.
public struct KubeletPodStartupObservation: Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var variant: KubeletStartupLineVariant
    /// `podStartSLOduration` exactly as the kubelet printed it (Go `%v` of a float64, seconds).
    public var sloSecondsText: String
    /// `podStartSLOduration`, seconds.
    public var sloSeconds: Double
    /// `podStartE2EDuration` (V3+), or `watchObservedRunning − created` for V1/V2; nanoseconds.
    public var e2eNanoseconds: Int64
    /// `metadata.creationTimestamp` (second precision). Nil only for JSON-format lines whose time
    /// values were not usable (docs/kubelet-startup-line.md#json-logging).
    public var created: KubeletTimestamp?
    /// First image pull start for the pod (V1–V3); nil when the kubelet logged the zero time.
    public var firstStartedPulling: KubeletTimestamp?
    /// Latest image pull finish for the pod (V1–V3); nil when the kubelet logged the zero time.
    public var lastFinishedPulling: KubeletTimestamp?
    /// When the status manager first saw every container running.
    public var observedRunning: KubeletTimestamp?
    /// When the pod coming back from the API-server watch first showed every container running.
    /// Nil only for JSON-format lines whose time values were not usable.
    public var watchObservedRunning: KubeletTimestamp?
    /// V4 `totalImagesPullingTime`: union of pull sessions, nanoseconds.
    public var totalImagesPullingNanoseconds: Int64?
    /// V4 `totalInitContainerRuntime`: sum of init container run times, nanoseconds.
    public var totalInitContainerRuntimeNanoseconds: Int64?
    /// V4 `isStatefulPod`: such pods are not observed by `kubelet_pod_start_sli_duration_seconds`.
    public var isStatefulPod: Bool?
    /// V4 `imagePullSessionsCount`.
    public var imagePullSessionsCount: Int?
    /// V4 `imagePullSessionsStartsCount`: pull starts without a matching finish.
    public var imagePullSessionsStartsCount: Int?
    /// The kubelet's local zone as its time values show it (seconds east of UTC); places the
    /// year-less, zone-less klog header times of the same kubelet.
    public var kubeletUTCOffsetSeconds: Int?

    public init(
        namespace: String, name: String, variant: KubeletStartupLineVariant,
        sloSecondsText: String, sloSeconds: Double, e2eNanoseconds: Int64,
        created: KubeletTimestamp?, firstStartedPulling: KubeletTimestamp? = nil,
        lastFinishedPulling: KubeletTimestamp? = nil, observedRunning: KubeletTimestamp? = nil,
        watchObservedRunning: KubeletTimestamp?, totalImagesPullingNanoseconds: Int64? = nil,
        totalInitContainerRuntimeNanoseconds: Int64? = nil, isStatefulPod: Bool? = nil,
        imagePullSessionsCount: Int? = nil, imagePullSessionsStartsCount: Int? = nil
    ) {
        self.namespace = namespace
        self.name = name
        self.variant = variant
        self.sloSecondsText = sloSecondsText
        self.sloSeconds = sloSeconds
        self.e2eNanoseconds = e2eNanoseconds
        self.created = created
        self.firstStartedPulling = firstStartedPulling
        self.lastFinishedPulling = lastFinishedPulling
        self.observedRunning = observedRunning
        self.watchObservedRunning = watchObservedRunning
        self.totalImagesPullingNanoseconds = totalImagesPullingNanoseconds
        self.totalInitContainerRuntimeNanoseconds = totalInitContainerRuntimeNanoseconds
        self.isStatefulPod = isStatefulPod
        self.imagePullSessionsCount = imagePullSessionsCount
        self.imagePullSessionsStartsCount = imagePullSessionsStartsCount
    }

    /// "namespace/name", the key every output uses.
    public var pod: String { "\(namespace)/\(name)" }
}
