import PodstartCore
import Synchronization

/// Applies `StartWindowTracker`'s decisions to a probe session: attaches the hot-path families
/// when a start begins, detaches them when none is in progress, and moves finished containers'
/// mount namespaces into the kernel's ignored set.
public final class StartWindowDriver: Sendable {
    private let session: KernelProbeSession
    private let families: Set<ProbeFamily>
    private let tracker: Mutex<StartWindowTracker>

    public init(session: KernelProbeSession, families: Set<ProbeFamily> = ProbeFamily.startHooks,
                configuration: StartWindowTracker.Configuration = .init()) {
        self.session = session
        self.families = families
        tracker = Mutex(StartWindowTracker(configuration: configuration))
    }

    public var isOpen: Bool { tracker.withLock { $0.isOpen } }

    @discardableResult
    public func handle(_ events: [KernelEvent]) throws -> [StartWindowTracker.Decision] {
        let host = session.hostMountNamespace
        return try step { t in events.flatMap { t.observe($0, hostMountNamespace: host) } }
    }

    @discardableResult
    public func tick(nowNs: UInt64 = WallClock.monotonicNow()) throws -> [StartWindowTracker.Decision] {
        try step { $0.tick(nowNs: nowNs) }
    }

    @discardableResult
    public func markReady(mountNamespace: UInt32, nowNs: UInt64 = WallClock.monotonicNow()) throws
        -> [StartWindowTracker.Decision]
    {
        try step { $0.markReady(mountNamespace: mountNamespace, nowNs: nowNs) }
    }

    @discardableResult
    public func noteRuntimeActivity(nowNs: UInt64 = WallClock.monotonicNow()) throws -> [StartWindowTracker.Decision] {
        try step { $0.noteRuntimeActivity(nowNs: nowNs) }
    }

    /// Advances the tracker under its lock, then applies what it decided.
    private func step(_ body: (inout StartWindowTracker) -> [StartWindowTracker.Decision]) throws -> [StartWindowTracker.Decision] {
        let decisions = tracker.withLock { body(&$0) }
        try apply(decisions)
        return decisions
    }

    private func apply(_ decisions: [StartWindowTracker.Decision]) throws {
        for decision in decisions {
            switch decision {
            case .attach: try session.attach(families)
            case .detach: session.detach(families)
            case .finished(let ns, let reason): if reason != .exited { try session.ignore(mountNamespace: ns) }
            }
        }
    }
}
