import Logging
import ServiceLifecycle
import StateStore

/// Last to stop: records the starts that reached ready (the others are dropped and named in the
/// log) and closes the state store.
public struct AgentDrain: Service {
    let hub: AgentHub
    let store: TimelineStore
    let logger: Logger
    /// Lists the recorded starts' events: stopped before the store closes.
    let events: PodEventsAttacher?

    public init(hub: AgentHub, store: TimelineStore, logger: Logger, events: PodEventsAttacher? = nil) {
        self.hub = hub
        self.store = store
        self.logger = logger
        self.events = events
    }

    public func run() async {
        try? await gracefulShutdown()
        await hub.flush()
        // the starts flushed just now get no events: the listings would outlive the store
        await events?.finish()
        do { try store.close() } catch { logger.warning("cannot close the state store", metadata: ["error": "\(error)"]) }
    }
}
