import PodstartCore

/// Joins containerd's CRI steps with the kubelet's startup line into one report per pod.
///
/// containerd's `PullImage` lines name an image, not a pod. The kubelet pulls a container's image
/// right before it asks for that container, so a pull is attributed to the sandbox whose next
/// `CreateContainer` follows it, provided the pull began after that sandbox's previous step and no
/// other sandbox was waiting at the same time; otherwise it is left out (and counted) rather than
/// guessed. State is bounded: pods never observed are evicted oldest-first.
public struct PodStartAssembler {
    struct Sandbox {
        var pod: String
        var id: String?
        var requested: KubeletTimestamp
        var ready: KubeletTimestamp?
        /// End of the last step of this pod (sandbox ready, container started); pulls for the
        /// next container begin after it.
        var lastStep: KubeletTimestamp
        var waitingForContainer = true
        /// A pull could have been this pod's but was left out: its pull total is unknown.
        var ambiguous = false
        var pulls: [ContainerdPull] = []
        var containers: [String] = []
        var containerCreateTimes: [KubeletTimestamp] = []
        var serial: Int
    }

    struct Container {
        var sandboxKey: String
        var name: String
        var created: KubeletTimestamp
        var started: KubeletTimestamp?
        var exited: KubeletTimestamp?
    }

    struct OpenPull {
        var image: String
        var begin: KubeletTimestamp
    }

    /// Sandboxes by pod ("ns/name").
    var sandboxes: [String: Sandbox] = [:]
    var sandboxByID: [String: String] = [:]
    var containers: [String: Container] = [:]
    var openPulls: [OpenPull] = []
    var finishedPulls: [ContainerdPull] = []
    var pendingSize: [String: Int64] = [:]
    var pendingDuration: [String: Int64] = [:]
    /// Pulls whose begin/end disagree with containerd's own "in <duration>" (a damaged line).
    public private(set) var inconsistentPulls = 0
    var serial = 0

    /// The kubelet's first "No sandbox … Need to start a new one" per pod.
    var kubeletFirstSync: [String: KubeletSandboxNeeded.Time] = [:]

    public mutating func add(_ e: KubeletSandboxNeeded) {
        if kubeletFirstSync[e.pod] == nil {
            if kubeletFirstSync.count >= maxPendingPods * 2 { kubeletFirstSync.removeAll() }
            kubeletFirstSync[e.pod] = e.time
        }
    }

    /// Upper bound on pods held while waiting for their startup line.
    public var maxPendingPods = 4096
    /// Pull time containerd measured that could not be tied to one pod.
    public private(set) var unattributedPulls = 0
    public private(set) var evictedPods = 0

    /// Window of non-pull time inside the kubelet's pull window above which the V1–V3 SLO is
    /// called out as wrong (kubelet bookkeeping around a pull takes a few milliseconds).
    public static let nonPullToleranceNanoseconds: Int64 = 100_000_000

    public init() {}

    public mutating func add(_ e: ContainerdCRIEvent) {
        switch e.kind {
        case .sandboxRequested(let pod, _, _):
            if sandboxes[pod] == nil { evictIfNeeded() }
            serial += 1
            if let old = sandboxes[pod]?.id { sandboxByID[old] = nil }
            sandboxes[pod] = Sandbox(pod: pod, requested: e.time, lastStep: e.time, serial: serial)
        case .sandboxReady(let pod, _, let id):
            guard var s = sandboxes[pod] else { return }
            s.id = id
            s.ready = e.time
            s.lastStep = e.time
            sandboxes[pod] = s
            sandboxByID[id] = pod
        case .sandboxFailed(let pod):
            if let id = sandboxes[pod]?.id { sandboxByID[id] = nil }
            sandboxes[pod] = nil
        case .pullStarted(let image):
            openPulls.append(OpenPull(image: image, begin: e.time))
            if openPulls.count > 1024 { openPulls.removeFirst(openPulls.count - 1024) }
        case .pullFinished(let image, _), .pullFailed(let image):
            guard let i = openPulls.firstIndex(where: { $0.image == image }) else {
                // Its start line is missing or damaged: a pull happened, of unknown length.
                var orphan = ContainerdPull(image: image, begin: e.time, end: e.time, failed: false, sizeBytes: nil)
                orphan.suspect = true
                inconsistentPulls += 1
                finishedPulls.append(orphan)
                return
            }
            let p = openPulls.remove(at: i)
            var failed = false
            if case .pullFailed = e.kind { failed = true }
            var pull = ContainerdPull(image: image, begin: p.begin, end: e.time, failed: failed,
                                      sizeBytes: pendingSize.removeValue(forKey: image))
            // containerd states the pull's duration on its "Pulled image" line: the two lines'
            // timestamps must agree with it (they differ by its bookkeeping, a few ms).
            let measured = e.time.goSub(p.begin)
            if measured < 0 { pull.suspect = true }
            // Both come from the lines: compared without arithmetic that could leave Int64.
            if let d = pendingDuration.removeValue(forKey: image),
               measured.saturatingSubtract(d).magnitude > UInt64(50_000_000) + d.magnitude / 100 {
                pull.suspect = true
            }
            if pull.suspect { inconsistentPulls += 1 }
            finishedPulls.append(pull)
            if finishedPulls.count > 1024 { finishedPulls.removeFirst(finishedPulls.count - 1024); unattributedPulls += 1 }
        case .pulled(let image, let size, let duration):
            if let size { pendingSize[image] = size }
            if let duration { pendingDuration[image] = duration }
            if pendingSize.count > 1024 { pendingSize.removeAll() }
            if pendingDuration.count > 1024 { pendingDuration.removeAll() }
        case .containerCreateRequested(let sandboxID, _):
            guard let podKey = sandboxByID[sandboxID], var s = sandboxes[podKey] else { return }
            attributePulls(to: &s, at: e.time)
            s.waitingForContainer = false
            sandboxes[podKey] = s
        case .containerCreated(let sandboxID, let name, let id):
            guard let podKey = sandboxByID[sandboxID], var s = sandboxes[podKey] else { return }
            s.containers.append(id)
            s.containerCreateTimes.append(e.time)
            sandboxes[podKey] = s
            containers[id] = Container(sandboxKey: podKey, name: name, created: e.time)
        case .containerStartRequested:
            break
        case .containerStarted(let id):
            guard var c = containers[id] else { return }
            c.started = e.time
            containers[id] = c
            if var s = sandboxes[c.sandboxKey] {
                s.lastStep = e.time
                s.waitingForContainer = true
                sandboxes[c.sandboxKey] = s
            }
        case .containerExited(let id):
            guard var c = containers[id] else { return }
            if c.exited == nil { c.exited = e.time }
            containers[id] = c
        }
    }

    /// Gives the sandbox the pulls made for the container it is about to create: those that
    /// began after its last step and ended before this CreateContainer. Anything that cannot be
    /// explained (a damaged or missing line, a pull overlapping the pod's own steps with no other
    /// pod waiting) makes the pod's pull total unknown instead of silently smaller.
    private mutating func attributePulls(to s: inout Sandbox, at t: KubeletTimestamp) {
        var keep: [ContainerdPull] = []
        func contenders(_ p: ContainerdPull) -> [Sandbox] {
            sandboxes.values.filter { $0.pod != s.pod && $0.waitingForContainer && $0.lastStep <= p.begin }
        }
        for p in finishedPulls {
            // Not in the span since this pod's last step: someone else's, or earlier.
            // Does the pull (or, when damaged, either of its instants) touch (lastStep, t]?
            let touches = (p.begin >= s.lastStep && p.begin <= t) || (p.end > s.lastStep && p.end <= t)
                || (p.begin < s.lastStep && p.end > t)
            guard touches else { keep.append(p); continue }
            let others = contenders(p)
            if p.suspect || p.end > t || p.begin < s.lastStep {
                if others.isEmpty {
                    s.ambiguous = true // unexplained: this pod's pull total is unknown
                    unattributedPulls += 1
                } else {
                    keep.append(p)
                }
                continue
            }
            if others.isEmpty {
                s.pulls.append(p)
            } else {
                unattributedPulls += 1
                s.ambiguous = true
                for c in others { sandboxes[c.pod]?.ambiguous = true }
            }
        }
        finishedPulls = keep
        // A pull still open now that began after the last step, with nobody else waiting: its
        // end line is missing or damaged.
        if openPulls.contains(where: { $0.begin >= s.lastStep && $0.begin <= t }) {
            let lone = openPulls.filter { $0.begin >= s.lastStep && $0.begin <= t }.allSatisfy { p in
                !sandboxes.values.contains { $0.pod != s.pod && $0.waitingForContainer && $0.lastStep <= p.begin }
            }
            if lone { s.ambiguous = true }
        }
    }

    private mutating func evictIfNeeded() {
        guard sandboxes.count >= maxPendingPods else { return }
        // Drop the oldest eighth in one go so eviction stays rare.
        let victims = sandboxes.values.sorted { $0.serial < $1.serial }.prefix(max(1, maxPendingPods / 8))
        for v in victims { forget(pod: v.pod) }
        evictedPods += victims.count
    }

    private mutating func forget(pod: String) {
        guard let s = sandboxes.removeValue(forKey: pod) else { return }
        if let id = s.id { sandboxByID[id] = nil }
        for c in s.containers { containers[c] = nil }
    }

    /// Builds the report for a startup line and forgets the pod's containerd state.
    public mutating func report(for o: KubeletPodStartupObservation) -> PodStartReport {
        var r = PodStartReport(observation: o)
        if var s = sandboxes[o.pod], s.ready != nil {
            // A pull left over since this pod's sandbox was requested that no other pending pod
            // could own: a line around it was damaged; the pull total is unknown.
            let others = sandboxes.values.filter { $0.pod != s.pod }
            let leftover = finishedPulls.map(\.begin) + openPulls.map(\.begin)
            if leftover.contains(where: { b in b >= s.requested && !others.contains { $0.requested <= b } }) {
                s.ambiguous = true
            }
            r.pulls = s.pulls
            r.sandboxNanoseconds = s.ready.map { $0.goSub(s.requested) }
            if !s.ambiguous, !s.pulls.isEmpty || !s.containers.isEmpty {
                r.containerdPullNanoseconds = unionNanoseconds(s.pulls.map { ($0.begin, $0.end) })
            }
            // Init containers ran to completion before the pod's last container was created.
            if let lastCreate = s.containerCreateTimes.last, s.containers.count > 1 {
                var total: Int64 = 0
                var any = false
                for id in s.containers.dropLast() {
                    guard let c = containers[id], let st = c.started, let ex = c.exited, ex <= lastCreate else { continue }
                    total = total.saturatingAdd(ex.goSub(st))
                    any = true
                }
                if any { r.containerdInitNanoseconds = total }
            }
        }
        if let first = kubeletFirstSync.removeValue(forKey: o.pod), let s = sandboxes[o.pod] {
            let seen: KubeletTimestamp?
            switch first {
            case .utc(let t): seen = t
            case .local(let l):
                if let offset = o.kubeletUTCOffsetSeconds, let ref = o.watchObservedRunning ?? o.created {
                    seen = l.resolve(near: ref, utcOffsetSeconds: offset)
                } else {
                    seen = nil
                }
            }
            // Same host, so containerd's and the kubelet's clocks agree; anything outside
            // [0, 1 h) means the lines belong to different starts of the pod.
            if let seen, case let d = s.requested.goSub(seen), d >= 0, d < 3_600_000_000_000 {
                r.kubeletSyncToSandboxNanoseconds = d
            }
        }
        forget(pod: o.pod)
        detectQuirks(&r)
        return r
    }

    func detectQuirks(_ r: inout PodStartReport) {
        let o = r.observation
        switch o.variant {
        case .v1, .v2, .v3:
            if o.firstStartedPulling != nil, o.lastFinishedPulling == nil {
                r.quirks.append(.negativeSloAfterFailedPull)
                // Without a finished pull the kubelet's value is meaningless; subtract what
                // containerd saw pulling (an upper bound when containerd lines are absent).
                r.correctedSloNanoseconds = o.e2eNanoseconds.saturatingSubtract(r.containerdPullNanoseconds ?? 0)
            } else if let window = r.pullNanoseconds, let measured = r.containerdPullNanoseconds, !r.pulls.isEmpty,
                      window.saturatingSubtract(measured) > Self.nonPullToleranceNanoseconds {
                r.quirks.append(.pullWindowCoversNonPullTime)
                r.correctedSloNanoseconds = o.e2eNanoseconds.saturatingSubtract(measured)
            } else if o.sloSeconds < 0 {
                r.quirks.append(.negativeSlo)
                if let measured = r.containerdPullNanoseconds { r.correctedSloNanoseconds = o.e2eNanoseconds.saturatingSubtract(measured) }
            }
        case .v4:
            if o.isStatefulPod == true { r.quirks.append(.statefulPodNotInSli) }
            if let open = o.imagePullSessionsStartsCount, open > 0 { r.quirks.append(.unfinishedPullSession) }
            if o.sloSeconds < 0 { r.quirks.append(.negativeSlo) }
        }
        if StartupLineParser.runningClockInversionNanoseconds(o) != nil { r.quirks.append(.watchBeforeRunningClockReads) }
    }
}

/// Length of the union of intervals, nanoseconds.
public func unionNanoseconds(_ intervals: [(KubeletTimestamp, KubeletTimestamp)]) -> Int64 {
    let sorted = intervals.map { ($0.0.nanosecondsSinceEpoch, $0.1.nanosecondsSinceEpoch) }.sorted { $0.0 < $1.0 }
    var total: Int64 = 0
    var cur: (Int64, Int64)?
    for (b, e) in sorted where e >= b {
        if let c = cur, b <= c.1 {
            cur = (c.0, max(c.1, e))
        } else {
            if let c = cur { total = total.saturatingAdd(c.1.saturatingSubtract(c.0)) }
            cur = (b, e)
        }
    }
    if let c = cur { total = total.saturatingAdd(c.1.saturatingSubtract(c.0)) }
    return total
}
