import Foundation
import PodstartCore

/// Everything measured about one pod start, on podstart's own clocks.
public struct PodStartRecord: Sendable {
    public var pod: PodIdentity
    public var containerName: String
    public var sandboxID: String
    public var containerID: String
    /// The image as given.
    public var image: String
    /// The image id (`sha256:<config digest>`), as ImageStatus/PullImage answered.
    public var imageID: String
    /// `sha256:<manifest digest>` from the image's repo digests, when the runtime reports one.
    public var imageDigest: String?
    /// Whether PullImage was called (the image was not present).
    public var pulled: Bool
    /// When the start began: just before RunPodSandbox (the pod's "created" on this timeline).
    public var created: Instant
    /// Every CRI call of the start, in order: RunPodSandbox, ImageStatus, [PullImage],
    /// CreateContainer, StartContainer, then the status calls of the readiness loop are not listed.
    public var calls: [CallTiming]
    /// When podstart first saw the container running (end of that ContainerStatus call).
    public var running: Instant
    /// The runtime's own start time of the container (ContainerStatus.started_at), Unix ns.
    public var runtimeStartedAtUnixNs: Int64
    /// When the first successful readiness check completed.
    public var ready: Instant
    public var readiness: ReadinessCheck
    /// Readiness checks made, the successful one included.
    public var probeAttempts: Int
    /// Host pid of the container's first process (0 if it was already gone).
    public var containerPid: Int32
    /// Host pid of the sandbox's pause process.
    public var sandboxPid: Int32
    /// Inode of the container's mount namespace (`/proc/PID/ns/mnt`), the key the kernel probes see.
    public var mountNamespaceInode: UInt64?
    public var networkNamespacePath: String?
    /// The container's root filesystem as mounted by the runtime.
    public var rootfs: OverlayRootfs?
    /// The init containers' runs, in the order they ran (before the container's ImageStatus).
    public var initContainers: [InitContainerRun] = []

    /// One init container run to completion.
    public struct InitContainerRun: Sendable {
        public var name: String
        public var containerID: String
        public var image: String
        /// Its CRI calls: ImageStatus, [PullImage], CreateContainer, StartContainer.
        public var calls: [CallTiming]
        /// The runtime's own start and exit times of its process (ContainerStatus), Unix ns.
        public var runtimeStartedAtUnixNs: Int64
        public var runtimeFinishedAtUnixNs: Int64
        /// When podstart saw it exited (end of that ContainerStatus call).
        public var exitSeen: Instant
        public func call(_ method: String) -> CallTiming? { calls.first { $0.method == method } }
    }

    /// The call named `method`, if made.
    public func call(_ method: String) -> CallTiming? { calls.first { $0.method == method } }

    /// Seconds from `created` to `ready`.
    public var e2eSeconds: Double { created.seconds(to: ready) }
}

/// Milestones of a start as they happen, for tracers that must act at once (e.g. add the new
/// container to a kernel filter).
public enum PodStartEvent: Sendable {
    case sandboxReady(sandboxID: String, pausePid: Int32)
    case containerCreated(containerID: String)
    case containerRunning(containerID: String, pid: Int32, mountNamespaceInode: UInt64?)
    /// An init container ran to completion (exit code 0); the next one, or the container, follows.
    case initContainerExited(name: String, containerID: String, startedAtUnixNs: Int64, finishedAtUnixNs: Int64)
}

/// Why a start failed. Teardown has already run when one of these is thrown.
public enum PodStartError: Error, CustomStringConvertible {
    case pullFailed(image: String, detail: String)
    case containerExited(container: String, exitCode: Int32, reason: String, logTail: [String])
    case notReady(afterSeconds: Double, check: ReadinessCheck, lastFailure: String)
    case timedOut(phase: String, afterSeconds: Double)
    case runtime(CRIError)
    /// The start failed and teardown left something behind too.
    case teardownFailed(original: String, leftovers: [String])

    public var description: String {
        switch self {
        case let .pullFailed(image, detail):
            return "image \(image) could not be pulled: \(detail)"
        case let .containerExited(container, exitCode, reason, logTail):
            var text = "container \(container) exited with code \(exitCode) before it was ready"
            if !reason.isEmpty { text += " (\(reason))" }
            if !logTail.isEmpty { text += "; last output:\n  " + logTail.joined(separator: "\n  ") }
            return text
        case let .notReady(seconds, check, lastFailure):
            return "not ready after \(String(format: "%.1f", seconds)) s: readiness check \(check) kept failing: \(lastFailure)"
        case let .timedOut(phase, seconds):
            return "\(phase) did not finish within the --timeout of \(String(format: "%.1f", seconds)) s"
        case let .runtime(error):
            return error.description
        case let .teardownFailed(original, leftovers):
            return "\(original)\nteardown could not remove: \(leftovers.joined(separator: ", "))"
        }
    }
}
