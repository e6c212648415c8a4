import ContainerRuntime
import PodstartCore

/// What the CRI listing source asks the runtime: the CRI client, or recorded answers in tests.
public protocol CRIListing: Sendable {
    func listPodSandboxes() async throws -> [PodSandboxInfo]
    func listContainers() async throws -> [ContainerInfo]
    /// Verbose status (containerd's info gives the init pid).
    func containerStatus(id: String) async throws -> ContainerStatusInfo
    func imageStatus(_ image: String) async throws -> ImageInfo?
}

/// The CRI client as a ``CRIListing``.
public struct CRIClientListing: CRIListing {
    public let client: CRIClient
    public init(_ client: CRIClient) { self.client = client }
    public func listPodSandboxes() async throws -> [PodSandboxInfo] { try await client.listPodSandboxes() }
    public func listContainers() async throws -> [ContainerInfo] { try await client.listContainers() }
    public func containerStatus(id: String) async throws -> ContainerStatusInfo { try await client.containerStatus(id: id, verbose: true) }
    public func imageStatus(_ image: String) async throws -> ImageInfo? { try await client.imageStatus(image) }
}

/// CRI listings as correlator inputs: what changed since the previous listing. The first listing
/// marks what already runs as pre-existing: those are never reported as starts. Pure but for the
/// runtime's answers and the process lookups it is given (ContainerResolver's ``ContainerResolver/Processes``).
public struct CRIListingAdapter: Sendable {
    /// What the previous listings showed.
    var sandboxes: [String: String] = [:]  // sandbox id → pod uid
    var containers: [String: ContainerState] = [:]
    var preexistingSandboxes: Set<String> = []
    var images: [String: ImageName] = [:]  // image ref → name, manifest digest
    public private(set) var primed = false
    let processes: ContainerResolver.Processes

    struct ImageName: Sendable { var name: String; var digest: String? }

    public init(processes: ContainerResolver.Processes = .live) { self.processes = processes }

    /// Containers whose first process was seen running in the last listing (their overlay can be
    /// looked at while they live).
    public private(set) var startedContainers: [String] = []

    /// One listing: sandboxes, containers, and the status of each container that is new or changed.
    ///
    /// All or nothing: a listing that fails half-way (the connection closed under a call twice,
    /// the runtime went away) leaves what the previous listings showed as it was, so the next
    /// listing reports everything this one would have. Before, the sandboxes and containers it had
    /// got through were marked as seen and their inputs dropped with the error: their pods were
    /// never named nor started (issue #15: 5 of 10 burst pods "not ready within 300 s", no name).
    public mutating func poll(_ listing: some CRIListing, sightedAt: Int64) async throws -> [CorrelatorInput] {
        let before = (sandboxes, containers, preexistingSandboxes, primed)
        do {
            return try await pollOnce(listing, sightedAt: sightedAt)
        } catch {
            (sandboxes, containers, preexistingSandboxes, primed) = before
            startedContainers = []
            throw error
        }
    }

    private mutating func pollOnce(_ listing: some CRIListing, sightedAt: Int64) async throws -> [CorrelatorInput] {
        let sandboxList = try await listing.listPodSandboxes()
        let containerList = try await listing.listContainers()
        var inputs: [CorrelatorInput] = []
        startedContainers = []
        for sandbox in sandboxList where sandboxes[sandbox.id] == nil {
            sandboxes[sandbox.id] = sandbox.pod.uid
            if !primed {
                preexistingSandboxes.insert(sandbox.id)
                inputs.append(.preexisting(uid: sandbox.pod.uid))
                continue
            }
            inputs.append(.pod(PodSighting(uid: sandbox.pod.uid, namespace: sandbox.pod.namespace, name: sandbox.pod.name,
                               createdUnixNs: sandbox.createdAtUnixNs, source: .cri)))
            // The listing shows a sandbox only once RunPodSandbox is done: its end is a sighting.
            inputs.append(.sandbox(SandboxCreation(uid: sandbox.pod.uid, sandboxID: sandbox.id, beginUnixNs: sandbox.createdAtUnixNs,
                                   endUnixNs: max(sandbox.createdAtUnixNs, sightedAt), source: .derived)))
        }
        let listed = Set(sandboxList.map(\.id))
        for id in sandboxes.keys where !listed.contains(id) {
            sandboxes.removeValue(forKey: id)
            preexistingSandboxes.remove(id)
        }

        for container in containerList where containers[container.id] != container.state {
            let previous = containers[container.id]
            containers[container.id] = container.state
            guard primed, !preexistingSandboxes.contains(container.sandboxID),
                  let uid = container.pod?.uid ?? sandboxes[container.sandboxID] else { continue }
            let status: ContainerStatusInfo
            do {
                status = try await listing.containerStatus(id: container.id)
            } catch let error as CRIError where error.isNotFound {
                continue
            }
            if previous == nil {
                let image = await image(container, listing: listing)
                inputs.append(.containerCreated(ContainerCreation(uid: uid, containerID: container.id, name: container.name, image: image.name,
                                                imageDigest: image.digest, isInit: false, beginUnixNs: status.createdAtUnixNs,
                                                endUnixNs: status.createdAtUnixNs, source: .cri)))
            }
            if status.startedAtUnixNs > 0 {
                // StartContainer follows CreateContainer at once in the kubelet's sync: until a
                // log or the kernel says better, it spans created → started.
                inputs.append(.containerStarted(ContainerStart(containerID: container.id, beginUnixNs: status.createdAtUnixNs,
                                                endUnixNs: max(status.createdAtUnixNs, status.startedAtUnixNs), source: .derived)))
                if let pid = status.verbose?.pid, pid > 0 {
                    inputs.append(.containerPid(ContainerInitProcess(containerID: container.id, pid: UInt32(pid))))
                    if let ns = processes.mountNamespace(pid) {
                        inputs.append(.containerMountNamespace(ContainerMountNamespace(containerID: container.id, mountNamespace: UInt32(truncatingIfNeeded: ns))))
                    }
                }
                startedContainers.append(container.id)
            }
            if status.state == .exited, status.finishedAtUnixNs > 0 {
                inputs.append(.containerExited(ContainerExit(containerID: container.id, atUnixNs: status.finishedAtUnixNs, exitCode: status.exitCode)))
            }
        }
        let listedContainers = Set(containerList.map(\.id))
        containers = containers.filter { listedContainers.contains($0.key) }
        primed = true
        return inputs
    }

    /// The image as people name it (the kubelet creates containers with the image id) and its
    /// manifest digest, from ImageStatus; cached per image id.
    private mutating func image(_ container: ContainerInfo, listing: some CRIListing) async -> ImageName {
        if let image = images[container.imageRef] { return image }
        let status = try? await listing.imageStatus(container.imageRef)
        let name = status?.repoTags.first ?? status?.repoDigests.first ?? container.image
        let digest = status?.manifestDigest ?? ImageReference.digest(in: container.imageRef)
        images[container.imageRef] = ImageName(name: name, digest: digest)
        return images[container.imageRef]!
    }
}
