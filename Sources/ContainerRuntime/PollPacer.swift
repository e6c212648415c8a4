import Foundation

/// When the CRI listing is worth doing. containerd's event stream says when something changes in
/// the CRI namespace; while it flows and nothing happened for `activeWindow`, one listing per
/// `idleInterval` is enough (an idle node costs almost nothing). An event, a start still settling
/// (activity within `activeWindow`) or a stream that is down or disabled brings back the fast
/// cadence. The poll loop wakes every fast interval either way; a skipped wake does no I/O.
public final class PollPacer: @unchecked Sendable {
    public let idleInterval: Duration
    public let activeWindow: Duration
    private let lock = NSLock()
    private var streamFlowing = false
    private var nudged = true
    private var lastActivity: ContinuousClock.Instant?
    private var lastPoll: ContinuousClock.Instant?

    public init(idleInterval: Duration = .seconds(2), activeWindow: Duration = .seconds(10)) {
        self.idleInterval = idleInterval
        self.activeWindow = activeWindow
    }

    /// Something changed in the CRI namespace: list at the next wake.
    public func nudge(at now: ContinuousClock.Instant = .now) {
        lock.withLock { nudged = true; lastActivity = now }
    }

    /// Whether events flow; while they do not, every wake lists.
    public func eventsFlowing(_ flowing: Bool) {
        lock.withLock { streamFlowing = flowing; if !flowing { nudged = true } }
    }

    /// Whether to list now; if so, the listing is counted as done.
    public func shouldPoll(at now: ContinuousClock.Instant = .now) -> Bool {
        lock.withLock {
            let active = lastActivity.map { now - $0 < activeWindow } ?? false
            let due = lastPoll.map { now - $0 >= idleInterval } ?? true
            guard !streamFlowing || nudged || active || due else { return false }
            nudged = false
            lastPoll = now
            return true
        }
    }
}
