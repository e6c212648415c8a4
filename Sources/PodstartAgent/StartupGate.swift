import Foundation
import Synchronization

/// The sources' first look at the node (the CRI listing that marks what already runs, the log
/// tails that skip old lines, the event subscription): the agent reports ready only after them, so
/// a pod started right after /readyz says 200 is a start, and a log line it writes is read.
public final class StartupGate: Sendable {
    private let pending: Mutex<Set<String>>

    public init(_ names: [String]) { pending = Mutex(Set(names)) }

    public func primed(_ name: String) { _ = pending.withLock { $0.remove(name) } }

    /// Waits until every source has primed or `timeout` passes; returns those that have not (a
    /// source whose input is down must not keep the agent from serving the rest).
    public func wait(timeout: Duration) async -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = pending.withLock { $0.sorted() }
            if left.isEmpty || ContinuousClock.now >= deadline || Task.isCancelled { return left }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
