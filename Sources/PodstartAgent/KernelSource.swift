import Exporter
import KernelProbes
import Logging
import PodstartCore
import ServiceLifecycle
import Synchronization

/// The kernel side of the agent: exec/fork/exit always attached; the per-syscall and per-read
/// hooks only inside start windows (StartWindowDriver); in-kernel aggregates read while a window
/// is open; per-program counters exported.
///
/// A `Service`. It owns its probe session: on graceful shutdown (or cancellation) it stops the
/// housekeeping and waits for it, stops reading events, and only then closes the session, so no
/// map is read after it was closed (issue #18: "ps_writes … Bad file descriptor … kernel
/// housekeeping failed" at SIGTERM). Errors are counted as `podstart_source_errors_total{source="kernel"}`;
/// records lost on the way are counted where they were lost: in the kernel (ring full,
/// `podstart_probe_events_lost_total`), in user space (the reader's queue full,
/// `podstart_probe_events_dropped_total`), in the decoder (`podstart_probe_events_rejected_total`).
public final class KernelSource: Service, Sendable {
    public let name = "kernel"
    let session: KernelProbeSession
    let driver: StartWindowDriver
    let hub: AgentHub
    let context: SourceContext
    let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var housekeepingRunning = false
        var closed = false
        var housekeepingAfterClose = 0
    }

    /// Loads the probes and attaches exec/fork/exit (throws when BPF is unavailable).
    public init(startupWindow: Duration, hub: AgentHub, metrics: MetricsRegistry, logger: Logger,
                probes: KernelProbeSession.Configuration = .init()) throws {
        session = try KernelProbeSession(configuration: probes)
        var configuration = StartWindowTracker.Configuration()
        configuration.startupWindowNs = UInt64(startupWindow.components.seconds) * 1_000_000_000
            + UInt64(startupWindow.components.attoseconds / 1_000_000_000)
        driver = StartWindowDriver(session: session, configuration: configuration)
        self.hub = hub
        self.logger = logger
        context = SourceContext(name: "kernel", metrics: metrics, logger: logger, metadata: [:], recoveryMessage: "kernel probes readable again")
        do {
            try session.attach([.process])
        } catch {
            session.close()
            throw error
        }
    }

    /// True while the housekeeping loop runs (it must not once the session is closed).
    public var housekeepingRunning: Bool { state.withLock { $0.housekeepingRunning } }
    /// Housekeeping rounds that began after the session was closed: 0, or issue #18 is back.
    public var housekeepingAfterClose: Int { state.withLock { $0.housekeepingAfterClose } }
    public var isClosed: Bool { state.withLock { $0.closed } }

    public func run() async {
        let stream: AsyncStream<RawEventBatch>
        do {
            stream = try session.events()
        } catch {
            context.failed("cannot read kernel events", error)
            close()
            return
        }
        await hub.setHostMountNamespace(session.hostMountNamespace)
        await hub.onStartFinished { [driver, context] namespaces in
            for ns in namespaces {
                do { try driver.markReady(mountNamespace: ns) } catch { context.failed("cannot close a start window", error) }
            }
        }
        let housekeeping = Task { await self.housekeeping() }
        let consumer = Task { await self.consume(stream) }
        let (stop, stopRequested) = AsyncStream<Void>.makeStream()
        Task { await consumer.value; stopRequested.finish() }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                for await _ in stop {}
            } onCancel: { stopRequested.finish() }
        } onGracefulShutdown: { stopRequested.finish() }
        // In this order: nothing may touch the maps once the session is closed.
        housekeeping.cancel()
        await housekeeping.value
        consumer.cancel()
        await consumer.value
        await hub.onStartFinished { _ in }
        close()
    }

    private func consume(_ stream: AsyncStream<RawEventBatch>) async {
        for await batch in stream {
            if Task.isCancelled { return }
            let events = Self.decode(batch, metrics: context.metrics)
            do {
                for decision in try driver.handle(events) { logger.debug("start window", metadata: ["decision": "\(decision)"]) }
            } catch {
                context.failed("start window change failed", error)
            }
            await purgeExitedNamespaces(events)
            await hub.ingest(kernel: events)
        }
    }

    /// The batch's events; records the decoder cannot trust (truncated, of an unknown kind or
    /// version) are skipped and counted in `podstart_probe_events_rejected_total{reason}`.
    public static func decode(_ batch: RawEventBatch, metrics: MetricsRegistry) -> [KernelEvent] {
        var rejected: [EventDecoder.Rejection: UInt64] = [:]
        let events = batch.decode(rejected: { rejected[$0.reason, default: 0] += 1 })
        for (reason, count) in rejected { metrics.addProbeEventsRejected(reason: reason.metricReason, count: count) }
        return events
    }

    /// When a container's init exits, the kernel may give its mount namespace's number to the next
    /// container at once; the in-kernel aggregates keyed by that number (open counts, open runs of
    /// pages) would then pass the new container's first opens off as repeats. They are read out
    /// for the old container and deleted before the new one can use the number.
    private func purgeExitedNamespaces(_ events: [KernelEvent]) async {
        var exited: Set<UInt32> = []
        for case .exit(let e) in events where e.task.namespacePid == 1 && e.task.mountNamespace != session.hostMountNamespace {
            exited.insert(e.task.mountNamespace)
        }
        guard !exited.isEmpty else { return }
        do {
            let ranges = try session.drainReadRanges(mountNamespaces: exited)
            let counts = try session.openCounts(mountNamespaces: exited, remove: true)
            await hub.ingest(ranges.map { CorrelatorInput.kernel(.readRange($0)) } + [.aggregates(KernelAggregates(openCounts: counts, writeTotals: []))])
        } catch {
            context.failed("cannot clear a finished container's kernel aggregates", error)
        }
    }

    /// Every 500 ms: ticks the start windows, moves the kernel's aggregates (read ranges, open
    /// counts, runtime write totals) into the correlator, and updates the probe counters.
    private func housekeeping() async {
        state.withLock { $0.housekeepingRunning = true }
        defer { state.withLock { $0.housekeepingRunning = false } }
        var wasOpen = false
        var ticks = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            if Task.isCancelled { return }
            if state.withLock({ s in if s.closed { s.housekeepingAfterClose += 1 }; return s.closed }) { return }
            do {
                for decision in try driver.tick() { logger.debug("start window", metadata: ["decision": "\(decision)"]) }
                let open = driver.isOpen
                if open || wasOpen {
                    let ranges = try session.drainReadRanges()
                    if !ranges.isEmpty { await hub.ingest(kernel: ranges.map(KernelEvent.readRange)) }
                    await hub.ingest([.aggregates(KernelAggregates(openCounts: try session.openCounts(), writeTotals: try session.writeTotals(remove: true)))])
                }
                wasOpen = open
                ticks += 1
                if ticks % 4 == 0 {
                    for (program, stats) in try session.statistics() {
                        context.metrics.setProbeTotals(program: program.rawValue, events: stats.events, lost: stats.lost)
                    }
                    // records the reader read but the queue to the hub had no room for
                    context.metrics.setProbeEventsDropped(total: session.readerStatistics.dropped)
                }
                context.up()
            } catch {
                context.failed("kernel housekeeping failed", error)
            }
        }
    }

    /// Detaches the probes and closes the session (once).
    func close() {
        let first = state.withLock { s in defer { s.closed = true }; return !s.closed }
        if first { session.close() }
    }
}

extension EventDecoder.Rejection {
    /// The `reason` label of `podstart_probe_events_rejected_total`.
    var metricReason: MetricsRegistry.ProbeRejection {
        switch self {
        case .truncated: .truncated
        case .unknownKind: .unknownKind
        case .unknownVersion: .unknownVersion
        }
    }
}
