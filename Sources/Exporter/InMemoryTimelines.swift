import PodstartCore

/// The newest `capacity` pod starts, kept in memory: what the API serves when the agent runs
/// without a state directory, and a fixture for tests.
public actor InMemoryTimelines: TimelineProvider {
    public let capacity: Int
    /// Oldest first.
    private var traces: [PodStartTrace] = []

    public init(capacity: Int = 10_000, traces: [PodStartTrace] = []) {
        let capacity = max(1, capacity)
        self.capacity = capacity
        var latest: [String: PodStartTrace] = [:]
        for t in traces { latest[t.storageKey] = t }
        self.traces = Array(latest.values.sorted { ($0.created, $0.storageKey) < ($1.created, $1.storageKey) }.suffix(capacity))
    }

    public func add(_ trace: PodStartTrace) {
        traces.removeAll { $0.storageKey == trace.storageKey }
        let at = traces.lastIndex { $0.created <= trace.created }.map { $0 + 1 } ?? 0
        traces.insert(trace, at: at)
        if traces.count > capacity { traces.removeFirst(traces.count - capacity) }
    }

    public func recent(limit: Int, offset: Int) -> [PodStartTrace] {
        Array(traces.reversed().dropFirst(offset).prefix(limit))
    }

    public func pod(uid: String) -> PodStartTrace? {
        traces.last { $0.storageKey == uid }
    }

    public func images(limit: Int, offset: Int) -> [ImageSummary] {
        var byDigest: [String: ImageSummary] = [:]
        for t in traces {
            for c in t.containers {
                guard let digest = c.imageDigest else { continue }
                var s = byDigest[digest] ?? ImageSummary(digest: digest, references: [], starts: 0, startsWithAccesses: 0, lastStarted: t.created)
                if !s.references.contains(c.image) { s.references = (s.references + [c.image]).sorted() }
                s.starts += 1
                if !c.accesses.isEmpty { s.startsWithAccesses += 1 }
                s.lastStarted = max(s.lastStarted, t.created)
                byDigest[digest] = s
            }
        }
        let sorted = byDigest.values.sorted { ($0.lastStarted, $0.digest) > ($1.lastStarted, $1.digest) }
        return Array(sorted.dropFirst(offset).prefix(limit))
    }
}
