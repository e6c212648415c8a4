import Foundation
import ContainerRuntime
import Exporter
import Logging
import PodstartAgent
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// A source whose input fails the first `failures` attempts, then works until cancelled.
final class FlakySource: AgentSource {
    let name = "flaky"
    let failures: Int
    private let attempts = Mutex(0)
    var backoff: Backoff { .fixed(.milliseconds(1)) }
    var outageMessage: String { "flaky input lost; retrying" }
    var recoveryMessage: String { "flaky input back" }

    init(failures: Int) { self.failures = failures }
    var attemptCount: Int { attempts.withLock { $0 } }

    struct Lost: Error {}

    func run(_ context: SourceContext) async throws {
        let attempt = attempts.withLock { $0 += 1; return $0 }
        if attempt <= failures { throw Lost() }
        context.up()
        context.count()  // a bad line among good ones: counted, not logged
        try await Task.sleep(for: .seconds(3600))
    }
}

/// A source that ignores cancellation (a client stuck in its shutdown).
struct StuckSource: AgentSource {
    let name = "stuck"
    func run(_ context: SourceContext) async throws {
        context.up()
        let end = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// A source that needs a moment to stop once cancelled (it finishes writing what it holds).
final class SlowStoppingSource: AgentSource {
    let name = "slow-stopping"
    private let state = Mutex((running: false, stopped: false))
    var running: Bool { state.withLock { $0.running } }
    var stopped: Bool { state.withLock { $0.stopped } }

    func run(_ context: SourceContext) async throws {
        context.up()
        state.withLock { $0.running = true }
        try? await Task.sleep(for: .seconds(3600))
        // cancelled: the shutdown work, which cancellation does not interrupt
        let end = ContinuousClock.now + .milliseconds(300)
        while ContinuousClock.now < end { usleep(10_000) }
        state.withLock { $0.stopped = true }
    }
}

@Suite struct SourceSupervisorTests {
    @Test func eachFailedAttemptIsCountedAndAnOutageLoggedOnce() async throws {
        let logs = CapturedLogs()
        let metrics = MetricsRegistry.forTests()
        let source = FlakySource(failures: 4)
        let supervisor = SourceSupervisor(source, metrics: metrics, logger: logs.logger())
        let task = Task { await supervisor.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while source.attemptCount < 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await task.value
        #expect(source.attemptCount == 5)
        #expect(metrics.sourceErrors("flaky") == 5)  // 4 lost attempts + 1 counted line
        let warnings = logs.messages("flaky input lost; retrying")
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["source"] == "flaky")
        #expect(warnings.first?.metadata["error"] == "Lost()")
        #expect(logs.messages("flaky input back").count == 1)
        // it stopped when cancelled: nothing was left behind
        #expect(logs.messages("source still stopping; shutting down without it").isEmpty)
    }

    /// A cancelled supervisor (the group cancelled rather than shut down gracefully) still waits
    /// for its source to stop, up to the stop limit: the source's own shutdown (a final flush, a
    /// cursor written) is not cut short, and nothing is logged as left behind.
    @Test func cancellationWaitsForASourceThatTakesAWhileToStop() async throws {
        let logs = CapturedLogs()
        let source = SlowStoppingSource()
        let supervisor = SourceSupervisor(source, metrics: MetricsRegistry.forTests(), logger: logs.logger(), stopLimit: .seconds(30))
        let task = Task { await supervisor.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !source.running, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try #require(source.running)
        task.cancel()
        await task.value
        #expect(source.stopped, "the supervisor returned before its source had stopped")
        #expect(logs.messages("source still stopping; shutting down without it").isEmpty)
    }

    @Test func backoffDoublesToItsLimitAndResets() {
        var backoff = Backoff()
        #expect((0..<7).map { _ in backoff.next() } == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                                                         .milliseconds(3200), .seconds(5), .seconds(5)])
        backoff.reset()
        #expect(backoff.next() == .milliseconds(200))
    }

    /// Graceful shutdown waits for a stuck source at most its limit, then names it.
    @Test func aStuckSourceIsLeftBehindAfterTheStopLimit() async throws {
        let logs = CapturedLogs()
        let supervisor = SourceSupervisor(StuckSource(), metrics: MetricsRegistry.forTests(), logger: logs.logger(), stopLimit: .milliseconds(200))
        let started = ContinuousClock.now
        await testGracefulShutdown { trigger in
            let task = Task { await supervisor.run() }
            try? await Task.sleep(for: .milliseconds(100))
            trigger.triggerGracefulShutdown()
            await task.value
        }
        let took = ContinuousClock.now - started
        #expect(took < .seconds(2), "waited \(took) for a source that does not stop")
        #expect(logs.messages("source still stopping; shutting down without it").first?.metadata["source"] == "stuck")
    }
}

/// A stream that works, then closes; then a reconnect that fails; then one that works on.
final class ClosingSource: AgentSource {
    let name = "closing"
    private let attempts = Mutex(0)
    var backoff: Backoff { .fixed(.milliseconds(1)) }
    var attemptCount: Int { attempts.withLock { $0 } }
    struct Closed: Error {}

    func run(_ context: SourceContext) async throws {
        let attempt = attempts.withLock { $0 += 1; return $0 }
        switch attempt {
        case 1:
            context.up()
            throw Closed()  // the stream ended under a working source
        case 2:
            throw Closed()  // the reconnect failed: an outage, not a close
        default:
            context.up()
            try await Task.sleep(for: .seconds(3600))
        }
    }
}

@Suite struct StreamCloseAccountingTests {
    /// #16.5: an input that worked and then ended is a stream close; a failed attempt is not.
    @Test func aStreamThatWorkedAndEndedIsCountedAsAClose() async throws {
        let metrics = MetricsRegistry.forTests()
        metrics.register(sources: ["closing"])
        #expect(metrics.sample(#"podstart_source_stream_closes_total{source="closing"}"#) == 0)
        let source = ClosingSource()
        let supervisor = SourceSupervisor(source, metrics: metrics, logger: CapturedLogs().logger())
        let task = Task { await supervisor.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while source.attemptCount < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        await task.value
        #expect(source.attemptCount == 3)
        #expect(metrics.sample(#"podstart_source_stream_closes_total{source="closing"}"#) == 1)
        #expect(metrics.sourceErrors("closing") == 2)
    }
}

/// A listing whose connection closes under it, twice (the repeat on a new connection closed too),
/// then one that works: what containerd's event source saw on the real node.
final class ConnectionClosingSource: AgentSource {
    let name = "containerd-events"
    private let attempts = Mutex(0)
    var backoff: Backoff { .fixed(.milliseconds(1)) }
    var outageMessage: String { "containerd event stream lost; retrying with backoff" }
    var attemptCount: Int { attempts.withLock { $0 } }

    func run(_ context: SourceContext) async throws {
        let attempt = attempts.withLock { $0 += 1; return $0 }
        if attempt == 1 {
            throw CRIError.connectionClosed(socket: "/run/containerd/containerd.sock", method: "containerd Namespaces/List",
                                            detail: "stream closed", retried: true)
        }
        context.up()
        try await Task.sleep(for: .seconds(3600))
    }
}

extension StreamCloseAccountingTests {
    /// A connection that closed under a call is counted once, as it closed, by the agent's
    /// CRIConnection observer (with its reason in podstart_cri_connection_closes_total); the
    /// supervisor logs the outage but does not count the same close again.
    @Test func aClosedConnectionIsNotCountedAgainByTheSupervisor() async throws {
        let metrics = MetricsRegistry.forTests()
        metrics.register(sources: ["containerd-events"])
        let logs = CapturedLogs()
        let source = ConnectionClosingSource()
        let supervisor = SourceSupervisor(source, metrics: metrics, logger: logs.logger())
        let task = Task { await supervisor.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while source.attemptCount < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(20))
        task.cancel()
        await task.value
        #expect(source.attemptCount == 2)
        #expect(metrics.sourceErrors("containerd-events") == 0)
        #expect(logs.messages("containerd event stream lost; retrying with backoff").count == 1)
    }
}
