import Foundation
import PodstartCore
#if canImport(Glibc)
import Glibc
#endif

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

    /// Runs a runtime call to its end (its own deadline still applies) even when the start is
    /// cancelled meanwhile, then honours the cancellation. A StartContainer cancelled mid-call left
    /// containerd 1.6 with a task it still held as running ("failed to get task pid: context
    /// canceled") while CRI called the container exited: StopContainer did nothing, RemoveContainer
    /// and RemovePodSandbox failed with "cannot delete running task", and the pod stayed with its
    /// cgroups after the teardown gave up.
    static func runToEnd<T: Sendable>(_ call: @escaping @Sendable () async throws -> T) async throws -> T {
        let value = try await Task.detached(operation: call).value
        try Task.checkCancellation()
        return value
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

        // Image: ImageStatus, PullImage only if missing; (image, pulled).
        func ensureImage(_ reference: String) async throws -> (ImageInfo, Bool) {
            var image = try await timed("ImageStatus") { try await client.imageStatus(reference) }
            var pulled = false
            if image == nil {
                pulled = true
                do {
                    _ = try await timed("PullImage") {
                        try await client.pullImage(reference, sandboxConfig: sandboxConfig,
                                                   timeout: try remaining("PullImage"))
                    }
                } catch let error as CRIError {
                    if case .deadlineExceeded = error { throw PodStartError.timedOut(phase: "PullImage", afterSeconds: options.timeout.seconds) }
                    throw PodStartError.pullFailed(image: reference, detail: Self.pullDetail(error))
                }
                image = try await client.imageStatus(reference)
            }
            guard let image else {
                throw PodStartError.pullFailed(image: reference, detail: "the runtime does not list it after PullImage")
            }
            return (image, pulled)
        }

        // 2. Init containers, each run to completion before the next step (kuberuntime's
        // computeInitContainerActions: one at a time, the next once the previous exited 0).
        var initRuns: [PodStartRecord.InitContainerRun] = []
        for spec in options.initContainers {
            let podCalls = calls
            calls = []
            let initOptions = options.forInit(spec)
            let (initImage, _) = try await ensureImage(spec.image)
            let id = try await timed("CreateContainer") {
                try await client.createContainer(sandboxID: sandboxID, config: kubeletContainerConfig(initOptions, imageID: initImage.id),
                                                 sandboxConfig: sandboxConfig)
            }
            state.containerID = id
            onEvent(.containerCreated(containerID: id))
            try await timed("StartContainer") { try await Self.runToEnd { try await client.startContainer(id: id) } }
            var status = try await client.containerStatus(id: id)
            while !status.hasExited {
                if WallClockless.monotonicNow() >= deadline {
                    throw PodStartError.timedOut(phase: "init container \(spec.name)", afterSeconds: options.timeout.seconds)
                }
                try await Task.sleep(for: .milliseconds(20))
                status = try await client.containerStatus(id: id)
            }
            let exitSeen = Instant.now()
            guard status.exitCode == 0 else {
                throw PodStartError.containerExited(container: spec.name, exitCode: status.exitCode, reason: status.reason,
                                                    logTail: Self.logTail(initOptions, lines: 10))
            }
            initRuns.append(.init(name: spec.name, containerID: id, image: spec.image, calls: calls,
                                  runtimeStartedAtUnixNs: status.startedAtUnixNs, runtimeFinishedAtUnixNs: status.finishedAtUnixNs,
                                  exitSeen: exitSeen))
            onEvent(.initContainerExited(name: spec.name, containerID: id, startedAtUnixNs: status.startedAtUnixNs,
                                         finishedAtUnixNs: status.finishedAtUnixNs))
            calls = podCalls
        }

        // 3. The container's image.
        let (image, pulled) = try await ensureImage(options.image)

        // 4. Create and start.
        let containerConfig = kubeletContainerConfig(options, imageID: image.id)
        let containerID = try await timed("CreateContainer") {
            try await client.createContainer(sandboxID: sandboxID, config: containerConfig, sandboxConfig: sandboxConfig)
        }
        state.containerID = containerID
        onEvent(.containerCreated(containerID: containerID))
        try await timed("StartContainer") { try await Self.runToEnd { try await client.startContainer(id: containerID) } }

        // 5. Running: the first status that says so (or that it already exited).
        var status = try await client.containerStatus(id: containerID, verbose: true)
        let running = Instant.now()
        let pid = status.verbose?.pid ?? 0
        let mntns = pid > 0 ? ContainerResolver.Processes.live.mountNamespace(pid) : nil
        if status.state == .running { onEvent(.containerRunning(containerID: containerID, pid: pid, mountNamespaceInode: mntns)) }
        let rootfs = OverlayRootfs.find(containerID: containerID)

        // 6. Readiness, polled like the kubelet's prober: a check every period until one succeeds.
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
            networkNamespacePath: sandboxInfo?.networkNamespacePath, rootfs: rootfs, initContainers: initRuns)
    }

    // MARK: helpers

    static func pullDetail(_ error: CRIError) -> String {
        if case let .call(_, _, _, message) = error { return message }
        if case let .notFound(_, _, message) = error { return message }
        return error.description
    }

    /// The last lines the container wrote, from its CRI log (`<time> <stream> <P|F> <text>`).
    static func logTail(_ options: PodStartOptions, lines: Int) -> [String] {
        let path = "\(options.logDirectory)/\(options.containerName)/0.log"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").suffix(lines).map { line in
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            return fields.count == 4 ? String(fields[3]) : String(line)
        }
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
