import Foundation
import SwiftProtobuf

/// One event containerd published (`containerd.services.events.v1.Envelope`).
public struct ContainerdEvent: Sendable, Hashable {
    /// When containerd published it: nanoseconds since the Unix epoch.
    public var timestamp: Int64
    /// The containerd namespace of the object (`k8s.io`, `default`, …).
    public var namespace: String
    /// `/tasks/start`, `/containers/create`, … (docs/inputs.md#containerd-events).
    public var topic: String
    public var payload: Payload

    public init(timestamp: Int64, namespace: String, topic: String, payload: Payload) {
        self.timestamp = timestamp
        self.namespace = namespace
        self.topic = topic
        self.payload = payload
    }

    /// The decoded event. Times are nanoseconds since the Unix epoch; pids are host pids.
    public enum Payload: Sendable, Hashable {
        case containerCreate(id: String, image: String, runtime: String)
        case containerUpdate(id: String, image: String, labels: [String: String])
        case containerDelete(id: String)
        /// The task exists (runc created the init process, which has not run the entrypoint yet).
        /// `rootfs`: the overlay containerd mounted as its root (nil for other snapshotters): it
        /// names the container's layers even once the container is gone.
        case taskCreate(containerID: String, bundle: String, pid: UInt32, rootfs: OverlayRootfs? = nil)
        /// The container's init process runs the entrypoint.
        case taskStart(containerID: String, pid: UInt32)
        /// A process exited; `execID` is empty for the container's init process.
        case taskExit(containerID: String, execID: String, pid: UInt32, exitStatus: UInt32, exitedAt: Int64)
        case taskDelete(containerID: String, pid: UInt32, exitStatus: UInt32, exitedAt: Int64)
        case taskOOM(containerID: String)
        case imageCreate(name: String)
        case imageUpdate(name: String)
        case imageDelete(name: String)
        /// `snapshotter` is empty from containerd 1.6, which does not send it.
        case snapshotPrepare(key: String, parent: String, snapshotter: String)
        case snapshotCommit(key: String, name: String, snapshotter: String)
        case snapshotRemove(key: String, snapshotter: String)
        /// A type podstart does not decode (`containerd.events.NamespaceCreate`, exec events, …).
        case other(typeURL: String)
        /// A known type whose bytes did not decode: count it, the stream goes on.
        case malformed(typeURL: String, reason: String)

        /// The container the event is about, for container and task events.
        public var containerID: String? {
            switch self {
            case let .containerCreate(id, _, _), let .containerUpdate(id, _, _), let .containerDelete(id):
                return id
            case let .taskCreate(id, _, _, _), let .taskStart(id, _), let .taskExit(id, _, _, _, _),
                 let .taskDelete(id, _, _, _), let .taskOOM(id):
                return id
            default:
                return nil
            }
        }
    }
}

extension ContainerdEvent {
    init(_ envelope: Containerd_Services_Events_V1_Envelope) {
        self.init(timestamp: envelope.hasTimestamp ? envelope.timestamp.unixNanoseconds : 0,
                  namespace: envelope.namespace, topic: envelope.topic,
                  payload: envelope.hasEvent ? Payload(typeURL: envelope.event.typeURL, value: envelope.event.value) : .other(typeURL: ""))
    }
}

extension ContainerdEvent.Payload {
    /// Decodes an event payload by its Any type URL. containerd writes bare type names
    /// (`containerd.events.TaskStart`); a `type.googleapis.com/`-style prefix is accepted too.
    /// Image events are `containerd.services.images.v1.Image*` in 1.6 and `containerd.events.Image*`
    /// later, with the same fields.
    public init(typeURL: String, value: Data) {
        let typeName = typeURL.split(separator: "/").last.map(String.init) ?? typeURL
        do {
            switch typeName {
            case "containerd.events.ContainerCreate":
                let m = try Containerd_Events_ContainerCreate(serializedBytes: value)
                self = .containerCreate(id: m.id, image: m.image, runtime: m.runtime.name)
            case "containerd.events.ContainerUpdate":
                let m = try Containerd_Events_ContainerUpdate(serializedBytes: value)
                self = .containerUpdate(id: m.id, image: m.image, labels: m.labels)
            case "containerd.events.ContainerDelete":
                self = .containerDelete(id: try Containerd_Events_ContainerDelete(serializedBytes: value).id)
            case "containerd.events.TaskCreate":
                let m = try Containerd_Events_TaskCreate(serializedBytes: value)
                let overlay = m.rootfs.first { $0.type == "overlay" }
                self = .taskCreate(containerID: m.containerID, bundle: m.bundle, pid: m.pid,
                                   rootfs: overlay.map { OverlayRootfs(mountPoint: m.bundle + "/rootfs", options: $0.options) })
            case "containerd.events.TaskStart":
                let m = try Containerd_Events_TaskStart(serializedBytes: value)
                self = .taskStart(containerID: m.containerID, pid: m.pid)
            case "containerd.events.TaskExit":
                let m = try Containerd_Events_TaskExit(serializedBytes: value)
                self = .taskExit(containerID: m.containerID, execID: m.id == m.containerID ? "" : m.id, pid: m.pid,
                                 exitStatus: m.exitStatus, exitedAt: m.hasExitedAt ? m.exitedAt.unixNanoseconds : 0)
            case "containerd.events.TaskDelete":
                let m = try Containerd_Events_TaskDelete(serializedBytes: value)
                self = .taskDelete(containerID: m.containerID, pid: m.pid, exitStatus: m.exitStatus,
                                   exitedAt: m.hasExitedAt ? m.exitedAt.unixNanoseconds : 0)
            case "containerd.events.TaskOOM":
                self = .taskOOM(containerID: try Containerd_Events_TaskOOM(serializedBytes: value).containerID)
            case "containerd.services.images.v1.ImageCreate", "containerd.events.ImageCreate":
                self = .imageCreate(name: try Containerd_Services_Images_V1_ImageCreate(serializedBytes: value).name)
            case "containerd.services.images.v1.ImageUpdate", "containerd.events.ImageUpdate":
                self = .imageUpdate(name: try Containerd_Services_Images_V1_ImageUpdate(serializedBytes: value).name)
            case "containerd.services.images.v1.ImageDelete", "containerd.events.ImageDelete":
                self = .imageDelete(name: try Containerd_Services_Images_V1_ImageDelete(serializedBytes: value).name)
            case "containerd.events.SnapshotPrepare":
                let m = try Containerd_Events_SnapshotPrepare(serializedBytes: value)
                self = .snapshotPrepare(key: m.key, parent: m.parent, snapshotter: m.snapshotter)
            case "containerd.events.SnapshotCommit":
                let m = try Containerd_Events_SnapshotCommit(serializedBytes: value)
                self = .snapshotCommit(key: m.key, name: m.name, snapshotter: m.snapshotter)
            case "containerd.events.SnapshotRemove":
                let m = try Containerd_Events_SnapshotRemove(serializedBytes: value)
                self = .snapshotRemove(key: m.key, snapshotter: m.snapshotter)
            default:
                self = .other(typeURL: typeURL)
            }
        } catch {
            self = .malformed(typeURL: typeURL, reason: "\(error)")
        }
    }
}

/// A container record of containerd (`containerd.services.containers.v1.Container`).
public struct ContainerdContainer: Sendable, Hashable {
    public var id: String
    /// The image reference the container was made from (`127.0.0.1:5000/x:latest`).
    public var image: String
    /// CRI containers carry the kubelet's labels here (`io.kubernetes.pod.uid`, …).
    public var labels: [String: String]
    /// `io.containerd.runc.v2`, …
    public var runtime: String
    public var snapshotter: String
    public var snapshotKey: String
    /// Nanoseconds since the Unix epoch.
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, image: String, labels: [String: String], runtime: String, snapshotter: String,
                snapshotKey: String, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.image = image
        self.labels = labels
        self.runtime = runtime
        self.snapshotter = snapshotter
        self.snapshotKey = snapshotKey
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    init(_ m: Containerd_Services_Containers_V1_Container) {
        self.init(id: m.id, image: m.image, labels: m.labels, runtime: m.runtime.name, snapshotter: m.snapshotter,
                  snapshotKey: m.snapshotKey, createdAt: m.hasCreatedAt ? m.createdAt.unixNanoseconds : 0,
                  updatedAt: m.hasUpdatedAt ? m.updatedAt.unixNanoseconds : 0)
    }
}

/// A container's task: its init process as containerd tracks it (`containerd.v1.types.Process`).
public struct ContainerdTask: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        case created, running, stopped, paused, pausing, unknown
    }

    public var containerID: String
    /// Host pid of the init process (0 before it exists).
    public var pid: UInt32
    public var status: Status
    public var exitStatus: UInt32
    /// Nanoseconds since the Unix epoch, once stopped.
    public var exitedAt: Int64?

    public init(containerID: String, pid: UInt32, status: Status, exitStatus: UInt32, exitedAt: Int64?) {
        self.containerID = containerID
        self.pid = pid
        self.status = status
        self.exitStatus = exitStatus
        self.exitedAt = exitedAt
    }

    init(_ m: Containerd_V1_Types_Process) {
        let status: Status = switch m.status {
        case .created: .created
        case .running: .running
        case .stopped: .stopped
        case .paused: .paused
        case .pausing: .pausing
        default: .unknown
        }
        // Go's zero time (0001-01-01) is what containerd sends for "not exited".
        let exited = m.hasExitedAt && m.exitedAt.seconds > 0 ? m.exitedAt.unixNanoseconds : nil
        // Tasks/List leaves container_id empty and puts the container id in id (the init process's id).
        self.init(containerID: m.containerID.isEmpty ? m.id : m.containerID, pid: m.pid, status: status, exitStatus: m.exitStatus, exitedAt: exited)
    }
}

extension Google_Protobuf_Timestamp {
    var unixNanoseconds: Int64 { seconds &* 1_000_000_000 &+ Int64(nanos) }
}
