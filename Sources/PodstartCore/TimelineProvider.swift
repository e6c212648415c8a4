/// What the agent's HTTP API reads: recorded pod starts, newest first, and per-image summaries.
/// The state store conforms to it; tests use an in-memory list. It lives in Core because both
/// sinks (the store that writes timelines and the exporter that serves them) share it.
public protocol TimelineProvider: Sendable {
    /// Pod starts ordered by `created`, newest first, skipping `offset`, at most `limit`.
    func recent(limit: Int, offset: Int) async throws -> [PodStartTrace]
    /// The most recent start recorded under this key: the pod UID, or the container ID for
    /// containers started without a pod (`runtime.containerID`).
    func pod(uid: String) async throws -> PodStartTrace?
    /// Images seen in recorded starts, most recently started first.
    func images(limit: Int, offset: Int) async throws -> [ImageSummary]
}

/// One image as the recorded starts saw it: how often it started, and whether access traces
/// (the input of prefetch profiles) exist for it.
public struct ImageSummary: Hashable, Sendable {
    /// `sha256:<64 hex>`: the image's manifest or config digest as the runtime reported it.
    public var digest: String
    /// Image references that resolved to this digest, sorted.
    public var references: [String]
    /// Container starts of this image recorded (ready or failed).
    public var starts: Int
    /// Starts whose container recorded file accesses.
    public var startsWithAccesses: Int
    /// Unix nanoseconds of the newest recorded start.
    public var lastStarted: Int64

    public init(digest: String, references: [String], starts: Int, startsWithAccesses: Int, lastStarted: Int64) {
        self.digest = digest
        self.references = references
        self.starts = starts
        self.startsWithAccesses = startsWithAccesses
        self.lastStarted = lastStarted
    }

    public func json() -> JSON {
        .object([
            ("digest", .string(digest)),
            ("references", .array(references.map { .string($0) })),
            ("starts", .int(Int64(starts))),
            ("startsWithAccesses", .int(Int64(startsWithAccesses))),
            ("lastStarted", .string(Timestamp.rfc3339(unixNanoseconds: lastStarted))),
        ])
    }
}

extension PodStartTrace {
    /// The key a start is stored and served under: the pod UID, or for containers started
    /// without a pod, the container ID.
    public var storageKey: String {
        if pod.uid.isEmpty, let runtime { return runtime.containerID }
        return pod.uid
    }
}
