import Logging
import ServiceLifecycle
import StateStore

/// Last to stop: records the starts that reached ready (the others are dropped and named in the
/// log) and closes the state store.
public struct AgentDrain: Service {
    let hub: AgentHub
    let store: TimelineStore
    let logger: Logger

    public init(hub: AgentHub, store: TimelineStore, logger: Logger) {
        self.hub = hub
        self.store = store
        self.logger = logger
    }

    public func run() async {
        try? await gracefulShutdown()
        await hub.flush()
        do { try store.close() } catch { logger.warning("cannot close the state store", metadata: ["error": "\(error)"]) }
    }
}
