import ContainerRuntime
import Logging
import PodstartCore

/// containerd's own event stream, every namespace: containers started straight through containerd
/// (`ctr run`, nerdctl — any namespace but the CRI plugin's) are starts of their own, keyed by
/// container id, with their containerd namespace; for CRI containers, the task's pid the moment it
/// starts (joined with the kernel's exec records, it gives the mount namespace of a container that
/// is gone before any listing shows it).
public struct ContainerdEventSource: AgentSource {
    public let name = "containerd-events"
    public var endpoint: CRIEndpoint
    public var criNamespace = "k8s.io"
    /// Told of every CRI-namespace event, and of whether the stream flows.
    public var pacer: PollPacer?
    public var gate: StartupGate?
    public var hub: AgentHub

    public init(endpoint: CRIEndpoint, criNamespace: String = "k8s.io", pacer: PollPacer?, gate: StartupGate?, hub: AgentHub) {
        self.endpoint = endpoint
        self.criNamespace = criNamespace
        self.pacer = pacer
        self.gate = gate
        self.hub = hub
    }

    public var logMetadata: Logger.Metadata { ["endpoint": "\(endpoint)"] }
    public var outageMessage: String { "containerd event stream lost; retrying with backoff" }
    public var recoveryMessage: String { "containerd events flowing again" }

    public func run(_ context: SourceContext) async throws {
        let client = try ContainerdClient(endpoint: endpoint)
        defer { client.close() }
        let stream = client.events()
        // what runs already is not a start (listed after subscribing, so nothing falls between)
        var inputs: [CorrelatorInput] = []
        for namespace in try await client.namespaces() where namespace != criNamespace {
            for container in try await client.containers(namespace: namespace) { inputs.append(.preexisting(uid: container.id)) }
        }
        await hub.ingest(inputs)
        gate?.primed(name)
        context.up()
        pacer?.eventsFlowing(true)
        defer { pacer?.eventsFlowing(false) }
        var adapter = ContainerdEventAdapter(criNamespace: criNamespace)
        for try await event in stream {
            if event.namespace == criNamespace { pacer?.nudge() }
            var inputs = adapter.inputs(event)
            if event.namespace == criNamespace, case .containerCreate(let id, let image, _) = event.payload {
                inputs += await criContainer(id: id, image: image, at: event.timestamp, client: client)
            }
            // its layers, for a container gone before its first process could be looked at
            if case .taskCreate(let id, _, _, let rootfs?) = event.payload, !(await hub.knowsFiles(of: id)) {
                await hub.learn(containerID: id, files: .init(rootfs: rootfs))
            }
            if !inputs.isEmpty { await hub.ingest(inputs) }
        }
    }

    /// A CRI container the moment containerd records it: its pod, name and image from the record's
    /// kubelet labels, and the image's manifest digest from CRI ImageStatus. A container gone
    /// before the next CRI listing (a job that ends in milliseconds, or a pod deleted at once)
    /// still gets its image, so its pull and its layers are attributed. Sandboxes are skipped.
    func criContainer(id: String, image: String, at t: Int64, client: ContainerdClient) async -> [CorrelatorInput] {
        guard let record = try? await client.container(namespace: criNamespace, id: id) else { return [] }
        let digest: @Sendable () async -> String? = { [endpoint] in
            (try? await CRIClient.withClient(endpoint: endpoint, timeout: .seconds(5)) { try await $0.imageStatus(image) })?.manifestDigest
        }
        return await ContainerdEventAdapter.criContainer(record, image: image, at: t, digest: digest)
    }
}
