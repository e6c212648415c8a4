import ContainerRuntime
import Foundation
import Logging
import PodstartCore

/// Pods and containers as the runtime lists them through CRI, polled (containerd 1.6 has no
/// GetContainerEvents) at the pace a PollPacer sets. When the socket goes away the supervisor
/// reconnects with backoff and counts the error; the rest of the agent keeps serving.
public final class CRIPollSource: AgentSource, @unchecked Sendable {
    public let name = "cri"
    let endpoint: CRIEndpoint
    let interval: Duration
    let pacer: PollPacer
    let gate: StartupGate?
    let hub: AgentHub
    /// Kept across reconnects: a lost connection is not a new node. Only `run` touches it, and
    /// the supervisor runs one `run` at a time.
    private var adapter = CRIListingAdapter()

    public init(endpoint: CRIEndpoint, interval: Duration, pacer: PollPacer = PollPacer(), gate: StartupGate?, hub: AgentHub) {
        self.endpoint = endpoint
        self.interval = interval
        self.pacer = pacer
        self.gate = gate
        self.hub = hub
    }

    public var logMetadata: Logger.Metadata { ["endpoint": "\(endpoint)"] }
    public var outageMessage: String { "CRI runtime unreachable; retrying with backoff" }
    public var recoveryMessage: String { "CRI runtime reachable again" }
    public var reconnectsAtOnce: Bool { true }

    public func run(_ context: SourceContext) async throws {
        try await CRIClient.withClient(endpoint: endpoint) { client in
            let listing = CRIClientListing(client)
            while !Task.isCancelled {
                guard self.pacer.shouldPoll() else { try await Task.sleep(for: self.interval); continue }
                let inputs = try await self.adapter.poll(listing, sightedAt: WallClock.unixNow())
                self.gate?.primed(self.name)
                context.up()
                // its layers first: a start these inputs finish is enriched from them
                for id in self.adapter.startedContainers where !(await self.hub.knowsFiles(of: id)) {
                    if let rootfs = OverlayRootfs.find(containerID: id) { await self.hub.learn(containerID: id, files: .init(rootfs: rootfs)) }
                }
                if !inputs.isEmpty { await self.hub.ingest(inputs) }
                try await Task.sleep(for: self.interval)
            }
        }
    }
}
