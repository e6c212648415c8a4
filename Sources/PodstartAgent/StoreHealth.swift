import Exporter
import Logging
import ServiceLifecycle
import StateStore
import Synchronization

/// Whether the state store can be trusted with the starts the agent records. A save refused
/// (disk full, an I/O error, a database corrupted under the agent), or the database file removed,
/// replaced or overwritten while open, makes `/readyz` answer 503 naming the problem
/// (`podstart_store_healthy 0`); the hub counts each refused save in `podstart_store_save_failures_total`.
/// It is ready again once a save or the periodic write check (``check(_:)``) succeeds and the file
/// is the one opened.
public final class StoreHealth: Sendable {
    /// The readiness condition's name, which starts the `/readyz` reason.
    public static let condition = "state store"
    let readiness: Readiness
    let metrics: MetricsRegistry
    let logger: Logger
    private struct State {
        var saveError: String?
        var fileProblem: String?
        var reported: String?
    }
    private let state = Mutex(State())

    public init(readiness: Readiness, metrics: MetricsRegistry, logger: Logger) {
        self.readiness = readiness
        self.metrics = metrics
        self.logger = logger
        metrics.setStoreHealthy(true)
    }

    /// What is wrong now (nil: healthy).
    public var problem: String? { state.withLock { $0.fileProblem ?? $0.saveError } }

    public func saveFailed(_ error: any Error) {
        update { $0.saveError = "cannot save pod starts: \(error)" }
    }

    public func saveSucceeded() {
        guard state.withLock({ $0.saveError != nil }) else { return }
        update { $0.saveError = nil }
    }

    /// Looks at the file under the store, and while saves fail, whether one would go through now.
    public func check(_ store: TimelineStore) async {
        let fileProblem = store.fileProblem()
        var saveError: String?? = .none  // unchanged unless checked
        if fileProblem == nil, state.withLock({ $0.saveError != nil }) {
            do {
                try await store.checkWritable()
                saveError = .some(nil)
            } catch {
                saveError = .some("cannot save pod starts: \(error)")
            }
        }
        update { s in
            s.fileProblem = fileProblem
            if case .some(let e) = saveError { s.saveError = e }
        }
    }

    private func update(_ change: (inout State) -> Void) {
        let (now, before) = state.withLock { s -> (String?, String?) in
            change(&s)
            let now = s.fileProblem ?? s.saveError
            defer { s.reported = now }
            return (now, s.reported)
        }
        guard now != before else { return }
        readiness.setCondition(Self.condition, failing: now)
        metrics.setStoreHealthy(now == nil)
        if let now {
            logger.error("state store unhealthy; /readyz answers 503 until it recovers", metadata: ["reason": "\(now)"])
        } else {
            logger.notice("state store healthy again", metadata: ["was": "\(before ?? "")"])
        }
    }
}

/// Checks the state store every `interval` (``StoreHealth/check(_:)``) until shutdown.
public struct StoreHealthService: Service {
    public let store: TimelineStore
    public let health: StoreHealth
    public var interval: Duration = .seconds(5)

    public init(store: TimelineStore, health: StoreHealth) {
        self.store = store
        self.health = health
    }

    public func run() async {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await health.check(store)
            }
        }
    }
}
