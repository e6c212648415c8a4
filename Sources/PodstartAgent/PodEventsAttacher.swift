import Exporter
import KubeletSources
import Logging
import PodstartCore
import StateStore

/// The pods' events, attached to their recorded starts: for each start the hub records (ready or
/// failed, of a pod with a namespace and UID), one list of the pod's events at the API server
/// (``PodEventLister``), then the start saved again with them. The start is saved first, so a
/// slow, refused or failed listing never delays or loses it; a failure is counted in
/// `podstart_source_errors_total{source="events"}` and written into the start as `eventsError`.
/// At most `maxConcurrent` listings run at once; up to `maxQueued` more wait, and starts past that
/// get no listing (counted the same way). Warning events are counted in
/// `podstart_pod_start_warning_events_total{reason}`.
public actor PodEventsAttacher {
    public typealias List = @Sendable (_ namespace: String, _ uid: String) async throws -> PodEvents

    /// The `source` label of the listing's errors.
    public static let sourceName = "events"

    private let list: List
    private let store: TimelineStore
    private let metrics: MetricsRegistry
    private let logger: Logger
    public let maxConcurrent: Int
    public let maxQueued: Int

    private var queue: [PodStartTrace] = []
    private var running: [Int: Task<Void, Never>] = [:]
    private var nextID = 0
    private var finished = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    /// What happened so far (for tests and the log).
    public struct Counts: Sendable, Equatable {
        public var listed = 0
        public var failed = 0
        /// Starts that got no listing: the queue was full, or the agent was stopping.
        public var dropped = 0
        /// Starts no longer in the store when their events came (refused or pruned): not saved again.
        public var notStored = 0
        /// The most listings that ran at once.
        public var peakRunning = 0
    }
    public private(set) var counts = Counts()

    public init(list: @escaping List, store: TimelineStore, metrics: MetricsRegistry, logger: Logger,
                maxConcurrent: Int = 4, maxQueued: Int = 1024) {
        self.list = list
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueued = max(0, maxQueued)
    }

    public init(lister: PodEventLister, store: TimelineStore, metrics: MetricsRegistry, logger: Logger,
                maxConcurrent: Int = 4, maxQueued: Int = 1024) {
        self.init(list: { try await lister.list(namespace: $0, uid: $1) }, store: store, metrics: metrics, logger: logger,
                  maxConcurrent: maxConcurrent, maxQueued: maxQueued)
    }

    /// Whether a start is a pod's whose events can be asked for (not a container started
    /// straight through containerd, not a start whose pod was never named).
    public static func wantsEvents(_ trace: PodStartTrace) -> Bool {
        !trace.pod.uid.isEmpty && !trace.pod.namespace.isEmpty && !trace.pod.name.isEmpty
    }

    /// For `AgentHub.onRecorded`: returns at once; the listing happens later.
    public nonisolated func enqueue(_ trace: PodStartTrace) {
        guard Self.wantsEvents(trace) else { return }
        Task { await self.add(trace) }
    }

    func add(_ trace: PodStartTrace) {
        guard !finished else { return drop(trace, why: "the agent is stopping") }
        if running.count < maxConcurrent { start(trace) } else if queue.count < maxQueued { queue.append(trace) } else {
            drop(trace, why: "\(maxQueued) starts already wait for their events")
        }
    }

    private func drop(_ trace: PodStartTrace, why: String) {
        counts.dropped += 1
        metrics.recordSourceError(source: Self.sourceName)
        logger.debug("pod events not listed", metadata: ["pod": "\(trace.pod)", "reason": "\(why)"])
    }

    private func start(_ trace: PodStartTrace) {
        let id = nextID
        nextID += 1
        running[id] = Task { [list] in
            let events: PodEvents
            do {
                events = try await list(trace.pod.namespace, trace.pod.uid)
            } catch {
                events = .failed("\(error)")
            }
            await self.done(id: id, trace: trace, events: events)
        }
        counts.peakRunning = max(counts.peakRunning, running.count)
    }

    private func done(id: Int, trace: PodStartTrace, events: PodEvents) async {
        if Task.isCancelled || finished {
            // stopping: the store is about to close; the start stays as recorded
            running[id] = nil
            return finishedOne()
        }
        if let error = events.error {
            counts.failed += 1
            metrics.recordSourceError(source: Self.sourceName)
            logger.warning("cannot list a pod's events; its start is recorded without them",
                           metadata: ["pod": "\(trace.pod)", "error": "\(error)"])
        } else {
            counts.listed += 1
            for (reason, count) in events.warningCounts { metrics.recordPodStartWarningEvents(reason: reason, count: UInt64(count)) }
        }
        do {
            if var stored = try await store.pod(uid: trace.storageKey), stored.created == trace.created {
                stored.events = events
                try await store.save(stored)
            } else {
                counts.notStored += 1
            }
        } catch {
            metrics.recordSourceError(source: "state")
            logger.error("cannot save a pod start's events", metadata: ["pod": "\(trace.pod)", "error": "\(error)"])
        }
        running[id] = nil
        finishedOne()
    }

    private func finishedOne() {
        while running.count < maxConcurrent, !queue.isEmpty, !finished { start(queue.removeFirst()) }
        if running.isEmpty, queue.isEmpty {
            for waiter in idleWaiters { waiter.resume() }
            idleWaiters = []
        }
    }

    /// Returns when no listing runs or waits (tests; `trace --pod`).
    public func idle() async {
        if running.isEmpty && queue.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    /// Shutdown, before the store closes: waiting starts get no listing (counted), running
    /// listings are cancelled and awaited, and nothing is saved after this returns.
    public func finish() async {
        finished = true
        for trace in queue { drop(trace, why: "the agent is stopping") }
        queue = []
        let tasks = Array(running.values)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
