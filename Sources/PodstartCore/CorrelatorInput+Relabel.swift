/// Makes one recorded start into another: fresh identities and shifted times, everything else as
/// recorded. `podstart bench correlator` builds 10,000 starts from one recording this way, and the
/// replay tests use it to check that a start's timeline does not depend on its ids or its time.
public struct InputRelabeling: Sendable, Hashable {
    /// Appended to pod UIDs, pod names, sandbox and container ids.
    public var suffix: String
    /// Added to every time (Unix and CLOCK_MONOTONIC alike: one shift keeps every join).
    public var shiftNs: Int64
    /// Added to every mount-namespace inode (wrapping), so copies never share a namespace.
    public var namespaceOffset: UInt32
    /// Added to every pid (wrapping), so copies never share a process.
    public var pidOffset: UInt32

    public init(suffix: String, shiftNs: Int64, namespaceOffset: UInt32, pidOffset: UInt32) {
        self.suffix = suffix
        self.shiftNs = shiftNs
        self.namespaceOffset = namespaceOffset
        self.pidOffset = pidOffset
    }

    public func apply(_ input: CorrelatorInput) -> CorrelatorInput {
        let s = suffix
        func t(_ v: Int64) -> Int64 { v &+ shiftNs }
        switch input {
        case .pod(let uid, let namespace, let name, let created, let source):
            return .pod(uid: uid + s, namespace: namespace, name: name.isEmpty ? name : name + s, created: created.map(t), source: source)
        case .scheduled(let uid, let at, let source):
            return .scheduled(uid: uid + s, at: t(at), source: source)
        case .sandbox(let uid, let sandboxID, let begin, let end, let source):
            return .sandbox(uid: uid + s, sandboxID: sandboxID + s, begin: t(begin), end: t(end), source: source)
        case .pull(let uid, let image, let begin, let end, let source):
            return .pull(uid: uid.map { $0 + s }, image: image, begin: t(begin), end: t(end), source: source)
        case .containerCreated(let uid, let id, let name, let image, let digest, let isInit, let begin, let end, let source):
            return .containerCreated(uid: uid + s, containerID: id + s, name: name, image: image, imageDigest: digest, isInit: isInit,
                                     begin: t(begin), end: t(end), source: source)
        case .containerStarted(let id, let begin, let end, let source):
            return .containerStarted(containerID: id + s, begin: t(begin), end: t(end), source: source)
        case .containerMountNamespace(let id, let ns):
            return .containerMountNamespace(containerID: id + s, mountNamespace: ns &+ namespaceOffset)
        case .containerExited(let id, let at, let code):
            return .containerExited(containerID: id + s, at: t(at), exitCode: code)
        case .ready(let uid, let at, let source):
            return .ready(uid: uid + s, at: t(at), source: source)
        case .failed(let uid, let at, let reason):
            return .failed(uid: uid + s, at: t(at), reason: reason)
        case .preexisting(let uid):
            return .preexisting(uid: uid + s)
        case .runtimeContainer(let uid, let containerdNamespace, let containerID):
            return .runtimeContainer(uid: uid + s, containerdNamespace: containerdNamespace, containerID: containerID + s)
        case .containerPid(let id, let pid):
            return .containerPid(containerID: id + s, pid: pid &+ pidOffset)
        case .kubeletStartup(var o):
            o.name += s
            func ts(_ k: KubeletTimestamp?) -> KubeletTimestamp? {
                k.map { KubeletTimestamp(nanosecondsSinceEpoch: t($0.nanosecondsSinceEpoch), monotonicNanoseconds: $0.monotonicNanoseconds.map(t)) }
            }
            o.created = ts(o.created)
            o.firstStartedPulling = ts(o.firstStartedPulling)
            o.lastFinishedPulling = ts(o.lastFinishedPulling)
            o.observedRunning = ts(o.observedRunning)
            o.watchObservedRunning = ts(o.watchObservedRunning)
            return .kubeletStartup(o)
        case .kernel(let event):
            return .kernel(apply(event))
        case .aggregates(let openCounts, let writeTotals):
            return .aggregates(
                openCounts: openCounts.map {
                    var c = $0
                    c.mountNamespace &+= namespaceOffset
                    c.firstNs = mono(c.firstNs)
                    return c
                },
                writeTotals: writeTotals.map {
                    var w = $0
                    w.pid &+= pidOffset
                    w.mountNamespace &+= namespaceOffset
                    w.firstNs = mono(w.firstNs)
                    w.lastNs = mono(w.lastNs)
                    return w
                })
        case .tick(let now):
            return .tick(now: t(now))
        }
    }

    func mono(_ v: UInt64) -> UInt64 { UInt64(bitPattern: Int64(bitPattern: v) &+ shiftNs) }

    func task(_ t: TaskContext) -> TaskContext {
        var t = t
        t.pid &+= pidOffset
        t.tid &+= pidOffset
        t.parentPid &+= pidOffset
        t.mountNamespace &+= namespaceOffset
        return t
    }

    public func apply(_ event: KernelEvent) -> KernelEvent {
        switch event {
        case .exec(var e):
            e.timestampNs = mono(e.timestampNs)
            e.task = task(e.task)
            e.oldPid &+= pidOffset
            return .exec(e)
        case .fork(var e):
            e.timestampNs = mono(e.timestampNs)
            e.parent = task(e.parent)
            e.childPid &+= pidOffset
            return .fork(e)
        case .exit(var e):
            e.timestampNs = mono(e.timestampNs)
            e.task = task(e.task)
            return .exit(e)
        case .open(var e):
            e.timestampNs = mono(e.timestampNs)
            e.task = task(e.task)
            return .open(e)
        case .readRange(var e):
            e.timestampNs = mono(e.timestampNs)
            e.firstAccessNs = mono(e.firstAccessNs)
            e.mountNamespace &+= namespaceOffset
            e.pid &+= pidOffset
            return .readRange(e)
        case .blockIO(var e):
            e.timestampNs = mono(e.timestampNs)
            e.issueNs = mono(e.issueNs)
            e.mountNamespace = e.mountNamespace.map { $0 &+ namespaceOffset }
            e.pid &+= pidOffset
            return .blockIO(e)
        case .writeBegin(var e):
            e.timestampNs = mono(e.timestampNs)
            e.task = task(e.task)
            return .writeBegin(e)
        }
    }
}
