import Foundation
import PodstartCore

// Mapping between the generated runtime.v1 messages (internal) and ContainerRuntime's public
// value types.

extension PodSandboxConfig {
    var proto: Runtime_V1_PodSandboxConfig {
        .with {
            $0.metadata = .with { md in
                md.name = pod.name
                md.namespace = pod.namespace
                md.uid = pod.uid
                md.attempt = attempt
            }
            $0.hostname = hostname
            $0.logDirectory = logDirectory
            $0.labels = labels
            $0.annotations = annotations
            if !dnsServers.isEmpty || !dnsSearches.isEmpty || !dnsOptions.isEmpty {
                $0.dnsConfig = .with {
                    $0.servers = dnsServers
                    $0.searches = dnsSearches
                    $0.options = dnsOptions
                }
            }
            $0.linux = .with { linux in
                linux.cgroupParent = cgroupParent
                // As the kubelet sends it: pod namespaces unless hostNetwork/hostPID.
                linux.securityContext = .with {
                    $0.namespaceOptions = .with { ns in
                        ns.network = hostNetwork ? .node : .pod
                        ns.pid = hostPID ? .node : .container
                        ns.ipc = .pod
                    }
                }
            }
        }
    }
}

extension ContainerConfig {
    var proto: Runtime_V1_ContainerConfig {
        .with {
            $0.metadata = .with { md in
                md.name = name
                md.attempt = attempt
            }
            $0.image = .with {
                $0.image = image
                $0.userSpecifiedImage = userSpecifiedImage
            }
            $0.command = command
            $0.args = args
            $0.workingDir = workingDir
            $0.envs = env.map { e in .with { $0.key = e.name; $0.value = e.value } }
            $0.labels = labels
            $0.annotations = annotations
            $0.logPath = logPath
            $0.mounts = mounts.map { m in
                .with {
                    $0.containerPath = m.containerPath
                    $0.hostPath = m.hostPath
                    $0.readonly = m.readOnly
                    $0.propagation = switch m.propagation {
                    case .private: .propagationPrivate
                    case .hostToContainer: .propagationHostToContainer
                    case .bidirectional: .propagationBidirectional
                    }
                }
            }
            $0.linux = .with { linux in
                linux.securityContext = .with {
                    $0.readonlyRootfs = readOnlyRootFilesystem
                    if let capabilities {
                        $0.capabilities = .with {
                            $0.addCapabilities = capabilities.add
                            $0.dropCapabilities = capabilities.drop
                        }
                    }
                    $0.namespaceOptions = .with { ns in
                        ns.network = hostNetwork ? .node : .pod
                        ns.pid = hostPID ? .node : .container
                        ns.ipc = .pod
                    }
                }
            }
        }
    }
}

extension ContainerState {
    init(_ proto: Runtime_V1_ContainerState) {
        switch proto {
        case .containerCreated: self = .created
        case .containerRunning: self = .running
        case .containerExited: self = .exited
        default: self = .unknown
        }
    }

    var proto: Runtime_V1_ContainerState {
        switch self {
        case .created: .containerCreated
        case .running: .containerRunning
        case .exited: .containerExited
        case .unknown: .containerUnknown
        }
    }
}

extension PodSandboxInfo {
    init(_ p: Runtime_V1_PodSandbox) {
        self.init(id: p.id,
                  pod: PodIdentity(namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid),
                  attempt: p.metadata.attempt, state: p.state == .sandboxReady ? .ready : .notReady,
                  createdAtUnixNs: p.createdAt, labels: p.labels, annotations: p.annotations,
                  runtimeHandler: p.runtimeHandler, ip: "")
    }

    init(_ p: Runtime_V1_PodSandboxStatus) {
        self.init(id: p.id,
                  pod: PodIdentity(namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid),
                  attempt: p.metadata.attempt, state: p.state == .sandboxReady ? .ready : .notReady,
                  createdAtUnixNs: p.createdAt, labels: p.labels, annotations: p.annotations,
                  runtimeHandler: p.runtimeHandler, ip: p.network.ip)
    }
}

extension ContainerInfo {
    init(_ c: Runtime_V1_Container) {
        self.init(id: c.id, sandboxID: c.podSandboxID, name: c.metadata.name, attempt: c.metadata.attempt,
                  image: c.image.image, imageRef: c.imageRef, state: ContainerState(c.state),
                  createdAtUnixNs: c.createdAt, labels: c.labels, annotations: c.annotations)
    }
}

extension ContainerStatusInfo {
    init(_ s: Runtime_V1_ContainerStatus) {
        self.init(id: s.id, name: s.metadata.name, attempt: s.metadata.attempt, state: ContainerState(s.state),
                  createdAtUnixNs: s.createdAt, startedAtUnixNs: s.startedAt, finishedAtUnixNs: s.finishedAt,
                  exitCode: s.exitCode, image: s.image.image, imageRef: s.imageRef, reason: s.reason,
                  message: s.message, labels: s.labels, annotations: s.annotations, logPath: s.logPath,
                  verbose: nil)
    }
}

extension ImageInfo {
    init(_ i: Runtime_V1_Image) {
        self.init(id: i.id, repoTags: i.repoTags, repoDigests: i.repoDigests, sizeBytes: i.size, pinned: i.pinned)
    }
}

extension ContainerEvent {
    init(_ e: Runtime_V1_ContainerEventResponse) {
        let kind: Kind = switch e.containerEventType {
        case .containerCreatedEvent: .created
        case .containerStartedEvent: .started
        case .containerStoppedEvent: .stopped
        default: .deleted
        }
        self.init(containerID: e.containerID, kind: kind, createdAtUnixNs: e.createdAt,
                  sandbox: e.hasPodSandboxStatus ? PodSandboxInfo(e.podSandboxStatus) : nil,
                  containers: e.containersStatuses.map(ContainerStatusInfo.init))
    }
}
