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
        case .pod(var p):
            p.uid += s
            if !p.name.isEmpty { p.name += s }
            p.createdUnixNs = p.createdUnixNs.map(t)
            return .pod(p)
        case .scheduled(var e):
            e.uid += s
            e.atUnixNs = t(e.atUnixNs)
            return .scheduled(e)
        case .podStatus(var e):
            e.uid += s
            if !e.name.isEmpty { e.name += s }
            e.createdUnixNs = e.createdUnixNs.map(t)
            e.scheduledUnixNs = e.scheduledUnixNs.map(t)
            e.allRunningUnixNs = e.allRunningUnixNs.map(t)
            e.readyUnixNs = e.readyUnixNs.map(t)
            e.observedUnixNs = t(e.observedUnixNs)
            e.initContainers = e.initContainers.map { .init(name: $0.name, startedUnixNs: $0.startedUnixNs.map(t), finishedUnixNs: $0.finishedUnixNs.map(t)) }
            return .podStatus(e)
        case .sandbox(var e):
            e.uid += s
            e.sandboxID += s
            e.beginUnixNs = t(e.beginUnixNs)
            e.endUnixNs = t(e.endUnixNs)
            return .sandbox(e)
        case .pull(var e):
            e.uid = e.uid.map { $0 + s }
            e.beginUnixNs = t(e.beginUnixNs)
            e.endUnixNs = t(e.endUnixNs)
            return .pull(e)
        case .containerCreated(var e):
            e.uid += s
            e.containerID += s
            e.beginUnixNs = t(e.beginUnixNs)
            e.endUnixNs = t(e.endUnixNs)
            return .containerCreated(e)
        case .containerStarted(var e):
            e.containerID += s
            e.beginUnixNs = t(e.beginUnixNs)
            e.endUnixNs = t(e.endUnixNs)
            return .containerStarted(e)
        case .containerMountNamespace(var e):
            e.containerID += s
            e.mountNamespace &+= namespaceOffset
            return .containerMountNamespace(e)
        case .containerExited(var e):
            e.containerID += s
            e.atUnixNs = t(e.atUnixNs)
            return .containerExited(e)
        case .ready(var e):
            e.uid += s
            e.atUnixNs = t(e.atUnixNs)
            return .ready(e)
        case .failed(var e):
            e.uid += s
            e.atUnixNs = t(e.atUnixNs)
            return .failed(e)
        case .preexisting(let uid):
            return .preexisting(uid: uid + s)
        case .runtimeContainer(var e):
            e.uid += s
            e.containerID += s
            return .runtimeContainer(e)
        case .containerPid(var e):
            e.containerID += s
            e.pid &+= pidOffset
            return .containerPid(e)
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
        case .aggregates(let a):
            return .aggregates(KernelAggregates(
                openCounts: a.openCounts.map {
                    var c = $0
                    c.mountNamespace &+= namespaceOffset
                    c.firstNs = mono(c.firstNs)
                    return c
                },
                writeTotals: a.writeTotals.map {
                    var w = $0
                    w.pid &+= pidOffset
                    w.mountNamespace &+= namespaceOffset
                    w.firstNs = mono(w.firstNs)
                    w.lastNs = mono(w.lastNs)
                    return w
                }))
        case .tick(let now):
            return .tick(nowUnixNs: t(now))
        case .clockOffset:
            // wall and monotonic times move together: their difference stays
            return input
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
        case .fuseRequest(var e):
            e.timestampNs = mono(e.timestampNs)
            e.sendNs = mono(e.sendNs)
            e.task = task(e.task)
            return .fuseRequest(e)
        }
    }
}
