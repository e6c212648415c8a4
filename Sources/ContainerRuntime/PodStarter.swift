import Foundation
import PodstartCore
#if canImport(Glibc)
import Glibc
#endif

/// What to start: one pod with one container, and how to tell it is ready.
public struct PodStartOptions: Sendable {
    /// The image as a user writes it in a pod spec (`127.0.0.1:5000/app:1`, `busybox:1.36`).
    public var image: String
    /// Overrides the image's entrypoint (the pod spec's `command`); empty = the image's.
    public var command: [String] = []
    /// The pod spec's `args`.
    public var args: [String] = []
    public var env: [ContainerConfig.EnvVar] = []
    public var readiness: ReadinessCheck = .running
    /// Time between readiness checks, like the kubelet's `periodSeconds` (finer by default, since
    /// the probe phase can be no more precise than this).
    public var probePeriod: Duration = .milliseconds(100)
    /// Limit of one readiness check (`timeoutSeconds`).
    public var probeTimeout: Duration = .seconds(1)
    /// Limit of the whole start, from RunPodSandbox to ready.
    public var timeout: Duration = .seconds(300)
    /// Remove the image (and so its content and snapshots) first, so the pull is real.
    public var cold: Bool = false
    public var pod: PodIdentity
    public var containerName: String = "main"
    /// Parent of the pods' log directories (`/var/log/pods` on a node).
    public var logRoot: String
    /// cgroupfs parent of the pod cgroups. Not `/kubepods`: a kubelet on the same node would treat
    /// pod cgroups there that it does not know as orphans.
    public var cgroupRoot: String = "/podstart"
    /// The pod's `hostNetwork` / `hostPID` (node agents, like node-exporter).
    public var hostNetwork = false
    public var hostPID = false
    /// Host paths bind-mounted into the container, as hostPath volumes.
    public var mounts: [ContainerConfig.Mount] = []
    public var readOnlyRootFilesystem = false
    /// securityContext.capabilities of the container; nil = the runtime's default set.
    public var capabilities: ContainerConfig.Capabilities?

    public init(image: String, pod: PodIdentity = PodStartOptions.newPod()) {
        self.image = image
        self.pod = pod
        let env = ProcessInfo.processInfo.environment["PODSTART_POD_LOG_DIR"]
        self.logRoot = env.flatMap { $0.isEmpty ? nil : $0 } ?? "/var/log/pods"
    }

    /// A fresh pod identity in namespace `podstart` with a random UID, as the API server would
    /// assign one.
    public static func newPod(name: String = "trace") -> PodIdentity {
        let uid = UUID().uuidString.lowercased()
        return PodIdentity(namespace: "podstart", name: "\(name)-\(uid.prefix(8))", uid: uid)
    }

    public var logDirectory: String { "\(logRoot)/\(pod.namespace)_\(pod.name)_\(pod.uid)" }
    public var cgroupParent: String { "\(cgroupRoot)/pod\(pod.uid)" }
}

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

/// Starts one pod exactly as the kubelet does through CRI, waits for it to be ready, and always
/// tears down what it created.
///
/// The kubelet's order (kuberuntime `SyncPod`): RunPodSandbox, then per container ImageStatus →
/// PullImage (only if missing, with the sandbox config) → CreateContainer (image = the image id,
/// user_specified_image = the reference) → StartContainer; then its prober polls readiness.
public struct PodStarter: Sendable {
    public var endpoint: CRIEndpoint
    /// Deadline of each ordinary CRI call.
    public var callTimeout: Duration

    public init(endpoint: CRIEndpoint, callTimeout: Duration = .seconds(60)) {
        self.endpoint = endpoint
        self.callTimeout = callTimeout
    }

    /// Starts the pod, waits until ready, calls `whileReady` (the pod still runs: read its mounts,
    /// stop tracing), tears everything down and returns the record. On failure or cancellation the
    /// pod is torn down before the error is rethrown.
    public func run(
        _ options: PodStartOptions,
        onEvent: @escaping @Sendable (PodStartEvent) -> Void = { _ in },
        whileReady: (PodStartRecord) async throws -> Void = { _ in }
    ) async throws -> PodStartRecord {
        let state = StartState()
        do {
            let record = try await CRIClient.withClient(endpoint: endpoint, timeout: callTimeout) { client in
                if options.cold { try await removeImageForColdStart(options.image, client: client) }
                let record = try await start(options, client: client, state: state, onEvent: onEvent)
                try await whileReady(record)
                return record
            }
            let leftovers = await teardown(options, state: state)
            if !leftovers.isEmpty {
                throw PodStartError.teardownFailed(original: "pod started, but", leftovers: leftovers)
            }
            return record
        } catch {
            let leftovers = await teardown(options, state: state)
            let mapped: any Error = (error as? CRIError).map { PodStartError.runtime($0) } ?? error
            if !leftovers.isEmpty {
                throw PodStartError.teardownFailed(original: "\(mapped)", leftovers: leftovers)
            }
            throw mapped
        }
    }

    /// Ids of what a start created so far, for teardown.
    final class StartState: @unchecked Sendable {
        private let lock = NSLock()
        private var _sandboxID: String?
        private var _containerID: String?
        var sandboxID: String? {
            get { lock.withLock { _sandboxID } }
            set { lock.withLock { _sandboxID = newValue } }
        }
        var containerID: String? {
            get { lock.withLock { _containerID } }
            set { lock.withLock { _containerID = newValue } }
        }
    }

    /// Removes the image and everything that would let containerd skip downloading it, whatever
    /// is left of it: the image by id (CRI then drops every reference — tag, `repo@sha256:`
    /// digest, `sha256:` id — and containerd's GC frees its content and snapshots), copies of the
    /// same repository and tag pulled through another registry host (a mirror or proxy), and
    /// images of the same repository whose tag is gone. The last case is `ctr images rm <tag>`:
    /// it deletes only the tag's record, while the `sha256:<config>` and digest records CRI made
    /// keep the content, so a lookup by tag finds nothing and the next pull takes milliseconds.
    /// Returns the ids removed.
    @discardableResult
    public func removeImageForColdStart(_ image: String, client: CRIClient) async throws -> [String] {
        var ids = Set<String>()
        if let present = try await client.imageStatus(image) { ids.insert(present.id) }
        let wanted = Self.repositoryPathAndTag(image)
        let repository = Self.repositoryPath(image)
        for other in try await client.listImages() {
            let sameTag = other.repoTags.contains { Self.repositoryPathAndTag($0) == wanted }
            // An untagged image of this repository may be the tag's, left by a removed tag.
            let orphanOfRepository = other.repoTags.isEmpty && other.repoDigests.contains { Self.repositoryPath($0) == repository }
            if sameTag || orphanOfRepository { ids.insert(other.id) }
        }
        for id in ids.sorted() {
            do {
                try await client.removeImage(id)
            } catch let error as CRIError where error.isNotFound {
                continue // removed meanwhile (by GC of another reference)
            }
        }
        if try await client.imageStatus(image) != nil {
            throw PodStartError.runtime(.badResponse(method: "RemoveImage", detail: "\(image) is still present after removal"))
        }
        for id in ids where try await client.imageStatus(id) != nil {
            throw PodStartError.runtime(.badResponse(method: "RemoveImage", detail: "\(id) (of \(image)) is still present after removal"))
        }
        return ids.sorted()
    }

    /// `host:port/path/name:tag` or `…@sha256:…` → `path/name` (Docker Hub names get their
    /// implicit parts).
    static func repositoryPath(_ reference: String) -> String {
        let withTag = repositoryPathAndTag(reference)
        guard let colon = withTag.lastIndex(of: ":"), !withTag[colon...].contains("/") else { return withTag }
        return String(withTag[..<colon])
    }

    /// `host:port/path/name:tag` → `path/name:tag` (Docker Hub names get their implicit parts).
    static func repositoryPathAndTag(_ reference: String) -> String {
        var ref = reference
        if let at = ref.firstIndex(of: "@") { ref = String(ref[..<at]) }
        var parts = ref.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count > 1, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost" {
            let host = parts.removeFirst()
            if host == "docker.io" || host == "index.docker.io", parts.count == 1 { parts.insert("library", at: 0) }
        } else if parts.count == 1 {
            parts.insert("library", at: 0)  // Docker Hub's implicit namespace
        }
        var path = parts.joined(separator: "/")
        if !(path.split(separator: "/").last ?? "").contains(":") { path += ":latest" }
        return path
    }

    private func start(_ options: PodStartOptions, client: CRIClient, state: StartState,
                       onEvent: @Sendable (PodStartEvent) -> Void) async throws -> PodStartRecord {
        try FileManager.default.createDirectory(atPath: options.logDirectory, withIntermediateDirectories: true)
        let sandboxConfig = kubeletSandboxConfig(options)
        var calls: [CallTiming] = []
        let created = Instant.now()
        let deadline = created.monotonicNs + UInt64(options.timeout.nanoseconds)
        func remaining(_ phase: String) throws -> Duration {
            let now = WallClockless.monotonicNow()
            guard now < deadline else {
                throw PodStartError.timedOut(phase: phase, afterSeconds: options.timeout.seconds)
            }
            return .nanoseconds(Int64(deadline - now))
        }

        func timed<T>(_ method: String, _ body: () async throws -> T) async throws -> T {
            let begin = Instant.now()
            do {
                let value = try await body()
                calls.append(CallTiming(method: method, begin: begin, end: .now(), succeeded: true))
                return value
            } catch {
                calls.append(CallTiming(method: method, begin: begin, end: .now(), succeeded: false))
                throw error
            }
        }

        // 1. Sandbox.
        let sandboxID = try await timed("RunPodSandbox") {
            try await client.runPodSandbox(sandboxConfig, timeout: min(try remaining("RunPodSandbox"), .seconds(600)))
        }
        state.sandboxID = sandboxID
        let (_, sandboxInfo) = try await client.podSandboxStatus(id: sandboxID, verbose: true)
        onEvent(.sandboxReady(sandboxID: sandboxID, pausePid: sandboxInfo?.pid ?? 0))

        // 2. Image: ImageStatus, PullImage only if missing.
        var image = try await timed("ImageStatus") { try await client.imageStatus(options.image) }
        var pulled = false
        if image == nil {
            pulled = true
            do {
                _ = try await timed("PullImage") {
                    try await client.pullImage(options.image, sandboxConfig: sandboxConfig,
                                               timeout: try remaining("PullImage"))
                }
            } catch let error as CRIError {
                if case .deadlineExceeded = error { throw PodStartError.timedOut(phase: "PullImage", afterSeconds: options.timeout.seconds) }
                throw PodStartError.pullFailed(image: options.image, detail: Self.pullDetail(error))
            }
            image = try await client.imageStatus(options.image)
        }
        guard let image else {
            throw PodStartError.pullFailed(image: options.image, detail: "the runtime does not list it after PullImage")
        }

        // 3. Create and start.
        let containerConfig = kubeletContainerConfig(options, imageID: image.id)
        let containerID = try await timed("CreateContainer") {
            try await client.createContainer(sandboxID: sandboxID, config: containerConfig, sandboxConfig: sandboxConfig)
        }
        state.containerID = containerID
        onEvent(.containerCreated(containerID: containerID))
        try await timed("StartContainer") { try await client.startContainer(id: containerID) }

        // 4. Running: the first status that says so (or that it already exited).
        var status = try await client.containerStatus(id: containerID, verbose: true)
        let running = Instant.now()
        let pid = status.verbose?.pid ?? 0
        let mntns = pid > 0 ? Self.mountNamespaceInode(pid: pid) : nil
        if status.state == .running { onEvent(.containerRunning(containerID: containerID, pid: pid, mountNamespaceInode: mntns)) }
        let rootfs = OverlayRootfs.find(containerID: containerID)

        // 5. Readiness, polled like the kubelet's prober: a check every period until one succeeds.
        let prober = ReadinessProber(check: options.readiness, client: client, containerID: containerID,
                                     containerPid: pid, netnsPath: sandboxInfo?.networkNamespacePath,
                                     timeout: options.probeTimeout)
        var attempts = 0
        var lastFailure = "no check made"
        var ready: Instant?
        var nextTick = running.monotonicNs
        while ready == nil {
            if status.hasExited || status.state == .exited {
                throw PodStartError.containerExited(container: options.containerName, exitCode: status.exitCode,
                                                    reason: status.reason,
                                                    logTail: Self.logTail(options, lines: 10))
            }
            attempts += 1
            switch await prober.check() {
            case .success: ready = .now()
            case .failure(let why): lastFailure = why
            }
            if ready != nil { break }
            nextTick += UInt64(options.probePeriod.nanoseconds)
            let now = WallClockless.monotonicNow()
            if now >= deadline {
                throw PodStartError.notReady(afterSeconds: created.seconds(to: .now()), check: options.readiness,
                                             lastFailure: lastFailure)
            }
            if nextTick > now { try await Task.sleep(for: .nanoseconds(Int64(min(nextTick, deadline) - now))) }
            status = try await client.containerStatus(id: containerID)
        }

        let digest = image.manifestDigest
        return PodStartRecord(
            pod: options.pod, containerName: options.containerName, sandboxID: sandboxID, containerID: containerID,
            image: options.image, imageID: image.id, imageDigest: digest, pulled: pulled, created: created,
            calls: calls, running: running, runtimeStartedAtUnixNs: status.startedAtUnixNs, ready: ready!,
            readiness: options.readiness, probeAttempts: attempts, containerPid: pid,
            sandboxPid: sandboxInfo?.pid ?? 0, mountNamespaceInode: mntns,
            networkNamespacePath: sandboxInfo?.networkNamespacePath, rootfs: rootfs)
    }

    // MARK: kubelet's configs (FORMATS.md §4.3)

    func kubeletSandboxConfig(_ options: PodStartOptions) -> PodSandboxConfig {
        let pod = options.pod
        var config = PodSandboxConfig(
            pod: pod, hostname: pod.name, logDirectory: options.logDirectory,
            labels: [
                KubeletLabels.podName: pod.name,
                KubeletLabels.podNamespace: pod.namespace,
                KubeletLabels.podUID: pod.uid,
                // A pod label of our own, copied to the sandbox like any pod label, so leftovers of
                // an interrupted start can be found.
                "podstart.dev/trace": "true",
            ],
            annotations: [
                KubeletLabels.configSeen: Self.rfc3339Nano(Instant.now().unixNs),
                KubeletLabels.configSource: "api",
            ],
            cgroupParent: options.cgroupParent)
        config.attempt = 0
        config.hostNetwork = options.hostNetwork
        config.hostPID = options.hostPID
        // The kubelet leaves the hostname empty for host-network pods: they share the node's UTS
        // namespace, where runc refuses to set one.
        if options.hostNetwork { config.hostname = "" }
        return config
    }

    /// The sandbox config a start with `options` uses (CreateContainer of extra containers in the
    /// same pod must repeat it).
    public func kubeletSandboxConfigForTests(_ options: PodStartOptions) -> PodSandboxConfig {
        kubeletSandboxConfig(options)
    }

    func kubeletContainerConfig(_ options: PodStartOptions, imageID: String) -> ContainerConfig {
        let pod = options.pod
        var config = ContainerConfig(name: options.containerName, image: imageID,
                                     logPath: "\(options.containerName)/0.log")
        config.userSpecifiedImage = options.image
        config.command = options.command
        config.args = options.args
        config.env = options.env
        config.mounts = options.mounts
        config.readOnlyRootFilesystem = options.readOnlyRootFilesystem
        config.capabilities = options.capabilities
        config.hostNetwork = options.hostNetwork
        config.hostPID = options.hostPID
        config.labels = [
            KubeletLabels.podName: pod.name,
            KubeletLabels.podNamespace: pod.namespace,
            KubeletLabels.podUID: pod.uid,
            KubeletLabels.containerName: options.containerName,
        ]
        var hasher = FNV1a64()
        hasher.add(options.containerName); hasher.add(options.image)
        for part in options.command + options.args { hasher.add(part) }
        config.annotations = [
            KubeletLabels.containerHash: String(hasher.value, radix: 16),
            KubeletLabels.containerRestartCount: "0",
            KubeletLabels.terminationMessagePath: "/dev/termination-log",
            KubeletLabels.terminationMessagePolicy: "File",
            KubeletLabels.terminationGracePeriod: "30",
            KubeletLabels.containerType: "container",
        ]
        return config
    }

    // MARK: teardown

    /// Removes the container and sandbox (and anything else carrying this pod's UID), the pod's
    /// cgroups and log directory. Runs in a task of its own with a fresh connection, so it also
    /// completes when the start was cancelled (Ctrl-C). Returns what could not be removed.
    func teardown(_ options: PodStartOptions, state: StartState) async -> [String] {
        let endpoint = self.endpoint
        let timeout = self.callTimeout
        return await Task.detached { () -> [String] in
            var leftovers: [String] = []
            // An interrupted start may leave a call running in the runtime (a StartContainer
            // cancelled on our side goes on in containerd, and a container "starting" cannot be
            // removed yet): retry for a while before reporting leftovers.
            for round in 0..<20 {
                leftovers = await Self.removePodObjects(options, state: state, endpoint: endpoint, timeout: timeout)
                if leftovers.isEmpty { break }
                try? await Task.sleep(for: .milliseconds(100 * min(round + 1, 5)))
            }
            leftovers += Self.removePodCgroups(options)
            try? FileManager.default.removeItem(atPath: options.logDirectory)
            return leftovers
        }.value
    }

    /// One pass of removing the pod's containers and sandboxes; returns what is still there.
    static func removePodObjects(_ options: PodStartOptions, state: StartState, endpoint: CRIEndpoint,
                                 timeout: Duration) async -> [String] {
        var leftovers: [String] = []
        do {
            try await CRIClient.withClient(endpoint: endpoint, timeout: timeout) { client in
                // What we know of, plus whatever an interrupted call created without telling us.
                let selector = [KubeletLabels.podUID: options.pod.uid]
                var containers = Set(try await client.listContainers(labelSelector: selector).map(\.id))
                if let id = state.containerID { containers.insert(id) }
                var sandboxes = Set(try await client.listPodSandboxes(labelSelector: selector).map(\.id))
                if let id = state.sandboxID { sandboxes.insert(id) }
                for id in containers {
                    do {
                        try await client.stopContainer(id: id, gracePeriodSeconds: 0)
                        try await client.removeContainer(id: id)
                    } catch let error as CRIError where error.isNotFound {
                    } catch {
                        leftovers.append("container \(id): \(error)")
                    }
                }
                for id in sandboxes {
                    do {
                        try await client.stopPodSandbox(id: id)
                        try await client.removePodSandbox(id: id)
                    } catch let error as CRIError where error.isNotFound {
                    } catch {
                        leftovers.append("sandbox \(id): \(error)")
                    }
                }
            }
        } catch {
            // Without a runtime to ask, only what we know was created is a leftover.
            if state.sandboxID != nil || state.containerID != nil {
                leftovers.append("pod \(options.pod): \(error)")
            }
        }
        return leftovers
    }

    /// runc leaves the pod-level cgroup (the sandbox's parent) in every hierarchy; the kubelet
    /// removes it itself, so do we. Only empty cgroups can be removed; a busy one is reported.
    static func removePodCgroups(_ options: PodStartOptions) -> [String] {
        var leftovers: [String] = []
        let base = "/sys/fs/cgroup"
        let hierarchies = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).map { "\(base)/\($0)" } + [base]
        for hierarchy in hierarchies {
            let dir = hierarchy + options.cgroupParent
            var st = stat()
            guard stat(dir, &st) == 0 else { continue }
            // Container cgroups below the pod are removed by runc; remove any left, deepest first.
            let children = ((try? FileManager.default.subpathsOfDirectory(atPath: dir)) ?? [])
                .filter { !$0.contains(".") || $0.hasSuffix(".scope") }
                .map { "\(dir)/\($0)" }
                .filter { var s = stat(); return stat($0, &s) == 0 && s.st_mode & S_IFMT == S_IFDIR }
                .sorted { $0.count > $1.count }
            for child in children { rmdir(child) }
            if rmdir(dir) != 0 && errno != ENOENT {
                leftovers.append("cgroup \(dir): \(String(cString: strerror(errno)))")
            }
        }
        return leftovers
    }

    // MARK: helpers

    static func pullDetail(_ error: CRIError) -> String {
        if case let .call(_, _, _, message) = error { return message }
        if case let .notFound(_, _, message) = error { return message }
        return error.description
    }

    static func mountNamespaceInode(pid: Int32) -> UInt64? { ProcessNamespace.mount(pid: pid) }

    /// The last lines the container wrote, from its CRI log (`<time> <stream> <P|F> <text>`).
    static func logTail(_ options: PodStartOptions, lines: Int) -> [String] {
        let path = "\(options.logDirectory)/\(options.containerName)/0.log"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").suffix(lines).map { line in
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            return fields.count == 4 ? String(fields[3]) : String(line)
        }
    }

    static func rfc3339Nano(_ unixNs: Int64) -> String { Timestamp.rfc3339(unixNanoseconds: unixNs) }
}

/// FNV-1a, 64 bit: a stable stand-in for the kubelet's container hash annotation.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ text: String) {
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
        value ^= 0xff
        value = value &* 0x100_0000_01b3
    }
}

enum WallClockless {
    static func monotonicNow() -> UInt64 { Instant.now().monotonicNs }
}

extension Duration {
    var nanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
    var seconds: Double { Double(nanoseconds) / 1e9 }
}
