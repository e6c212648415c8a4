import ContainerRuntime
import PodstartCore

/// containerd events as correlator inputs (pure): starts of containers made outside CRI, the init
/// pid of CRI containers, and the end of each image the CRI plugin pulled.
public struct ContainerdEventAdapter: Sendable {
    public let criNamespace: String
    /// What the stream told of a container not yet started.
    struct Pending { var createdAt: Int64; var taskCreatedAt: Int64? }
    private var pending: [String: Pending] = [:]

    public init(criNamespace: String = "k8s.io") { self.criNamespace = criNamespace }

    public mutating func inputs(_ event: ContainerdEvent) -> [CorrelatorInput] {
        let t = event.timestamp
        let cri = event.namespace == criNamespace
        switch event.payload {
        case .taskStart(let id, let pid) where cri:
            return [.containerPid(ContainerInitProcess(containerID: id, pid: pid))]
        case .imageCreate(let name) where cri && !name.hasPrefix("sha256:"), .imageUpdate(let name) where cri && !name.hasPrefix("sha256:"):
            // The CRI plugin records a pulled image under its name as PullImage finishes (a pull
            // of an image already stored under that name records nothing): the end of a pull,
            // with no pod named; the correlator gives it to the pod that waited for it.
            return [.pull(ImagePull(uid: nil, image: name, beginUnixNs: t, endUnixNs: t, source: .containerd))]
        case _ where cri:
            return []
        case .containerCreate(let id, let image, _):
            pending[id] = Pending(createdAt: t)
            if pending.count > 4096 { pending.removeAll() }
            return [.runtimeContainer(RuntimeContainer(uid: id, containerdNamespace: event.namespace, containerID: id)),
                    .pod(PodSighting(uid: id, namespace: "", name: "", createdUnixNs: t, source: .containerd)),
                    .containerCreated(ContainerCreation(uid: id, containerID: id, name: id, image: image, imageDigest: nil, isInit: false,
                                      beginUnixNs: t, endUnixNs: t, source: .containerd))]
        case .taskCreate(let id, _, _, _):
            guard var p = pending[id] else { return [] }
            p.taskCreatedAt = t
            pending[id] = p
            // create: the container record → runc has created the task
            return [.containerCreated(ContainerCreation(uid: id, containerID: id, name: id, image: "", imageDigest: nil, isInit: false,
                                      beginUnixNs: p.createdAt, endUnixNs: t, source: .containerd))]
        case .taskStart(let id, let pid):
            guard let p = pending.removeValue(forKey: id) else { return [] }
            return [.containerStarted(ContainerStart(containerID: id, beginUnixNs: p.taskCreatedAt ?? p.createdAt, endUnixNs: t, source: .containerd)),
                    .containerPid(ContainerInitProcess(containerID: id, pid: pid))]
        case .taskExit(let id, let execID, _, let status, let exitedAt) where execID.isEmpty || execID == id:
            return [.containerExited(ContainerExit(containerID: id, atUnixNs: exitedAt, exitCode: Int32(truncatingIfNeeded: status)))]
        case .containerDelete(let id):
            pending.removeValue(forKey: id)
            return []
        default:
            return []
        }
    }

    /// A CRI container's record as the container's creation: pod and name (read from the kubelet's
    /// labels as ContainerResolver reads them), image, and the manifest digest `digest` finds.
    /// Nothing for sandboxes and records without a pod.
    public static func criContainer(_ record: ContainerdContainer, image: String, at t: Int64,
                                    digest: @Sendable () async -> String?) async -> [CorrelatorInput] {
        guard record.isCRIContainer, let pod = record.pod else { return [] }
        return [.containerCreated(ContainerCreation(uid: pod.uid, containerID: record.id, name: record.kubeletContainerName ?? "",
                                  image: image, imageDigest: await digest(), isInit: false, beginUnixNs: t, endUnixNs: t, source: .containerd))]
    }
}
