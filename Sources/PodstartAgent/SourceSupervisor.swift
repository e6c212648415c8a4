import ContainerRuntime
import Exporter
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// One input of the agent (the CRI listing, containerd's event stream, a log file, the kubelet's
/// /metrics). `run` reads until its input is lost (it throws) or the task is cancelled; the
/// ``SourceSupervisor`` around it retries, backs off, counts and logs, the same way for every source.
public protocol AgentSource: Sendable {
    /// The `source` label of `podstart_source_errors_total` and of the log lines.
    var name: String { get }
    /// What the log lines about this source name (its endpoint or path).
    var logMetadata: Logger.Metadata { get }
    /// Logged once when the input is lost (then not again until it is back).
    var outageMessage: String { get }
    /// Logged once when the input is back after an outage.
    var recoveryMessage: String { get }
    /// Delays between attempts while the input is down.
    var backoff: Backoff { get }
    /// A connection that worked and then closed is reconnected at once (no error counted); only a
    /// reconnect that fails too is an outage. For sources whose server ends long-lived
    /// connections now and then (containerd's CRI server closes HTTP/2 streams).
    var reconnectsAtOnce: Bool { get }
    func run(_ context: SourceContext) async throws
}

extension AgentSource {
    public var logMetadata: Logger.Metadata { [:] }
    public var outageMessage: String { "source unavailable; retrying with backoff" }
    public var recoveryMessage: String { "source available again" }
    public var backoff: Backoff { Backoff() }
    public var reconnectsAtOnce: Bool { false }
}

/// Backoff for a source that lost its input: `initial` doubling to `limit`, reset after a success.
public struct Backoff: Sendable {
    public let initial: Duration
    public let limit: Duration
    private var delay: Duration

    /// 200 ms doubling to 5 s.
    public init(initial: Duration = .milliseconds(200), limit: Duration = .seconds(5)) {
        self.initial = initial
        self.limit = max(initial, limit)
        delay = initial
    }

    /// The same delay every time.
    public static func fixed(_ delay: Duration) -> Backoff { Backoff(initial: delay, limit: delay) }

    public mutating func next() -> Duration {
        defer { delay = min(delay * 2, limit) }
        return delay
    }

    public mutating func reset() { delay = initial }
}

/// What a running source tells its supervisor: that its input works (``up()``), and errors that do
/// not end its run (``failed(_:_:)``, a bad line, a failed kernel map read). Errors are counted in
/// `podstart_source_errors_total{source=…}`; the first of an outage is logged, and the recovery.
public final class SourceContext: Sendable {
    public let name: String
    public let logger: Logger
    let metrics: MetricsRegistry
    private let recoveryMessage: String
    private let metadata: Logger.Metadata
    private struct State {
        var down = false
        var healthy = false
        var backoffReset = false
        /// The input worked during the current run (its end is then a close, not a failed attempt).
        var workedThisRun = false
        /// Reasons of unreadable input already logged (bounded: a reason is logged once).
        var loggedReasons: Set<String> = []
    }
    private let state = Mutex(State())

    init(name: String, metrics: MetricsRegistry, logger: Logger, metadata: Logger.Metadata, recoveryMessage: String) {
        self.name = name
        self.metrics = metrics
        self.logger = logger
        self.metadata = metadata
        self.recoveryMessage = recoveryMessage
    }

    /// The input works: ends an outage (logged once) and resets the backoff.
    public func up() {
        let recovered = state.withLock { s in
            defer { s.down = false; s.healthy = true; s.backoffReset = true; s.workedThisRun = true }
            return s.down
        }
        if recovered { logger.info("\(recoveryMessage)", metadata: metadata.merging(["source": "\(name)"]) { $1 }) }
    }

    /// An error that does not end the source's run: counted (unless `alreadyCounted`); logged with
    /// `message` when it is the first since the input last worked.
    public func failed(_ message: String, _ error: (any Error)? = nil, alreadyCounted: Bool = false) {
        if !alreadyCounted { metrics.recordSourceError(source: name) }
        if outage() {
            var fields = metadata.merging(["source": "\(name)"]) { $1 }
            if let error { fields["error"] = "\(error)" }
            logger.warning("\(message)", metadata: fields)
        }
    }

    /// An error counted but not logged (a malformed line among good ones).
    public func count() { metrics.recordSourceError(source: name) }

    /// A malformed record: counted always, logged the first time its reason is seen (at most 64
    /// reasons), so a source error never goes without a line saying why.
    public func malformed(reason: String, sample: String) {
        metrics.recordSourceError(source: name)
        let first = state.withLock { s in
            guard s.loggedReasons.count < 64, !s.loggedReasons.contains(reason) else { return false }
            s.loggedReasons.insert(reason)
            return true
        }
        if first {
            logger.warning("unreadable input skipped (counted in podstart_source_errors_total; logged once per reason)",
                           metadata: metadata.merging(["source": "\(name)", "reason": "\(reason)", "line": "\(sample.prefix(300))"]) { $1 })
        }
    }

    /// Marks an outage; true when it is a new one (to be logged).
    func outage() -> Bool {
        state.withLock { s in
            defer { s.down = true; s.healthy = false }
            return !s.down
        }
    }

    /// Whether the source worked since the last call (and forgets it).
    func takeHealthy() -> Bool { state.withLock { s in defer { s.healthy = false }; return s.healthy } }
    /// Whether the input worked during the run that just ended (and forgets it for the next).
    func takeWorkedThisRun() -> Bool { state.withLock { s in defer { s.workedThisRun = false }; return s.workedThisRun } }
    func takeBackoffReset() -> Bool { state.withLock { s in defer { s.backoffReset = false }; return s.backoffReset } }
}

/// Runs one ``AgentSource`` as a `Service`: restarts it when its input is lost, with the source's
/// backoff, counting each failed attempt in `podstart_source_errors_total{source=…}` and logging
/// once per outage; an input that worked and then ended (an event stream or a connection closed)
/// is counted in `podstart_source_stream_closes_total{source=…}` too. On graceful shutdown (or cancellation) the source is cancelled and awaited at
/// most `stopLimit`: a source stuck in a client's shutdown must not keep the state from being
/// written before the kubelet's grace period ends; it is named in the log and left behind.
public struct SourceSupervisor: Service {
    public let source: any AgentSource
    public let metrics: MetricsRegistry
    public let logger: Logger
    public var stopLimit: Duration

    public init(_ source: any AgentSource, metrics: MetricsRegistry, logger: Logger, stopLimit: Duration = .seconds(5)) {
        self.source = source
        self.metrics = metrics
        self.logger = logger
        self.stopLimit = stopLimit
    }

    public func run() async {
        let work = Task { await supervise() }
        let (ended, continuation) = AsyncStream<Void>.makeStream()
        Task {
            await work.value
            continuation.yield()
            continuation.finish()
        }
        let limit = stopLimit
        // Waited for in a task of its own: iterating `ended` in a cancelled task would end at once,
        // and a cancelled supervisor must still give its source up to `stopLimit` to stop.
        let outcome = Task<Bool, Never> {
            for await _ in ended { return true }
            return false
        }
        let stopped: Bool = await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await outcome.value
            } onCancel: {
                work.cancel()
                Task { try? await Task.sleep(for: limit); continuation.finish() }
            }
        } onGracefulShutdown: {
            work.cancel()
            Task { try? await Task.sleep(for: limit); continuation.finish() }
        }
        if !stopped {
            logger.warning("source still stopping; shutting down without it", metadata: ["source": "\(source.name)"])
        }
    }

    /// The retry loop, until cancelled or the source returns.
    func supervise() async {
        let context = SourceContext(name: source.name, metrics: metrics, logger: logger,
                                    metadata: source.logMetadata, recoveryMessage: source.recoveryMessage)
        var backoff = source.backoff
        while !Task.isCancelled {
            do {
                try await source.run(context)
                return
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }  // a call cut short by shutdown is no outage
                // an input that worked and then ended: a stream or connection closed under it
                if context.takeWorkedThisRun() { metrics.recordStreamClose(source: source.name) }
                if context.takeBackoffReset() { backoff.reset() }
                // A connection that closed under a call was counted as it closed, by the agent's
                // CRIConnection observer (podstart_cri_connection_closes_total and source_errors_total).
                let countedAtClose = (error as? CRIError)?.isConnectionClosed ?? false
                if source.reconnectsAtOnce, context.takeHealthy() {
                    if !countedAtClose { context.count() }
                    logger.debug("connection closed; reconnecting",
                                 metadata: source.logMetadata.merging(["source": "\(source.name)", "error": "\(error)"]) { $1 })
                    continue
                }
                context.failed(source.outageMessage, error, alreadyCounted: countedAtClose)
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
