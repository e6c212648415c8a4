import PodstartCore
import ServiceLifecycle

/// Time passes for the correlator even when no source speaks (timeouts, grace periods): a tick
/// every 500 ms until shutdown.
public struct CorrelatorClock: Service {
    public let hub: AgentHub
    public var interval: Duration = .milliseconds(500)
    public init(hub: AgentHub) { self.hub = hub }

    public func run() async {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await hub.ingest([.tick(nowUnixNs: WallClock.unixNow())])
            }
        }
    }
}
