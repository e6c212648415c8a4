/// The vocabulary of every output: the phases a pod start is split into (DESIGN.md).
public enum PhaseName: String, CaseIterable, Hashable, Sendable, Codable {
    case schedule, sandbox, pull, `init`, create, start, probe
    /// The last container running → Ready, for a pod with no readiness probe: the kubelet noticing
    /// its containers run (its PLEG relist) and writing the Ready condition. Not a probe.
    case readyReport = "ready_report"
    /// Time no phase claims (kubelet queueing, sync loops): keeps the parts adding up.
    case unattributed
    /// Parts of `pull`.
    case download, decompress, pullOther = "pull_other"
    /// Inside another phase (mostly `start` and `probe`): the time a starting container's tasks
    /// had FUSE requests in flight, i.e. waited on a lazy-pull snapshotter's on-demand fetches
    /// (kernel fuse tracepoints; docs/phases.md#lazy_fetch). Not a partition: it overlaps its parent.
    case lazyFetch = "lazy_fetch"

    public static let topLevel: [PhaseName] = [.schedule, .sandbox, .pull, .`init`, .create, .start, .probe, .readyReport, .unattributed]
    public static let pullParts: [PhaseName] = [.download, .decompress, .pullOther]

    public var isTopLevel: Bool { Self.topLevel.contains(self) }
}

/// Which source measured a phase. Kernel timing wins over log timing where both exist.
public enum PhaseSource: String, Hashable, Sendable, Codable, Comparable {
    case kernel, cri, containerd, kubeletLog = "kubelet-log", podStatus = "pod-status", events, prober, derived

    /// Higher is more precise: used when two sources measured the same interval.
    public var precision: Int {
        switch self {
        case .kernel: 7
        case .cri: 6
        case .prober: 5
        case .containerd: 4
        case .kubeletLog: 3
        case .events: 2
        case .podStatus: 1
        case .derived: 0
        }
    }

    public static func < (a: PhaseSource, b: PhaseSource) -> Bool { a.precision < b.precision }
}

/// A half-open interval [start, end) in Unix nanoseconds.
public struct Interval: Hashable, Sendable {
    public var start: Int64
    public var end: Int64
    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = max(start, end)
    }
    /// Clamped to the Int64 range (both ends may come from outside, centuries apart).
    public var duration: Int64 { end.saturatingSubtract(start) }
    public func clamped(to bounds: Interval) -> Interval? {
        let s = max(start, bounds.start), e = min(end, bounds.end)
        return s < e ? Interval(start: s, end: e) : nil
    }
}

/// One measured stretch of work, before attribution: several may overlap (parallel pulls).
public struct PhaseMeasurement: Hashable, Sendable {
    public var phase: PhaseName
    public var interval: Interval
    public var source: PhaseSource
    /// What it was about (an image reference, a container name), for the record only.
    public var subject: String?
    public init(phase: PhaseName, interval: Interval, source: PhaseSource, subject: String? = nil) {
        self.phase = phase
        self.interval = interval
        self.source = source
        self.subject = subject
    }
}

/// An attributed phase: the partition the outputs show.
public struct PhaseSpan: Hashable, Sendable {
    public var name: PhaseName
    public var start: Int64
    public var end: Int64
    public var parent: PhaseName?
    public var source: PhaseSource
    public init(name: PhaseName, start: Int64, end: Int64, parent: PhaseName?, source: PhaseSource) {
        self.name = name
        self.start = start
        self.end = end
        self.parent = parent
        self.source = source
    }
    /// Clamped to the Int64 range (both ends may come from a trace file, centuries apart).
    public var nanoseconds: Int64 { end.saturatingSubtract(start) }
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}
