import ContainerRuntime
import Foundation
import PodstartTestSupport
import Synchronization
import Testing

extension ContainerRuntimeIntegration {
    /// Real pod starts through the CRI of a real containerd (scripts/localenv.sh): sandbox with CNI,
    /// pull from a loopback registry, runc containers. Serialized: they share two cores and the
    /// timing checks must not compete with each other.
    @Suite struct PodStarterIntegrationTests {
        let env: LocalEnvironment

        init() throws { env = try LocalEnvironment.shared() }

        /// Nothing of the pod remains in the runtime, the cgroup tree, the log directory or netns.
        func expectNothingLeft(_ pod: PodIdentity, netns: String? = nil, logDirectory: String) async throws {
            let (containers, sandboxes) = try await CRIClient.withClient(endpoint: env.endpoint) { client in
                let selector = [KubeletLabels.podUID: pod.uid]
                return (try await client.listContainers(labelSelector: selector).count,
                        try await client.listPodSandboxes(labelSelector: selector).count)
            }
            #expect(containers == 0 && sandboxes == 0)
            for hierarchy in ["cpu", "memory", "pids", "systemd", "unified"] {
                #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(hierarchy)/podstart/pod\(pod.uid)"),
                        "cgroup left in \(hierarchy)")
            }
            #expect(!FileManager.default.fileExists(atPath: logDirectory))
            if let netns { #expect(!FileManager.default.fileExists(atPath: netns), "netns \(netns) left") }
        }

        @Test func podStartsThroughCRIInKubeletOrderAndTeardownLeavesNothing() async throws {
            let options = env.options(image: "small-files:latest")
            var seenWhileReady: (sandboxes: Int, containers: Int, ip: String) = (0, 0, "")
            let record = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { record in
                try await CRIClient.withClient(endpoint: env.endpoint) { client in
                    let selector = [KubeletLabels.podUID: record.pod.uid]
                    seenWhileReady.sandboxes = try await client.listPodSandboxes(labelSelector: selector).count
                    seenWhileReady.containers = try await client.listContainers(labelSelector: selector).count
                    seenWhileReady.ip = try await client.podSandboxStatus(id: record.sandboxID).0.ip
                }
            })
            #expect(seenWhileReady.sandboxes == 1 && seenWhileReady.containers == 1)
            #expect(seenWhileReady.ip.hasPrefix("10.88."), "pod got eth0 address \(seenWhileReady.ip)")

            let methods = record.calls.map(\.method)
            let expected = record.pulled
                ? ["RunPodSandbox", "ImageStatus", "PullImage", "CreateContainer", "StartContainer"]
                : ["RunPodSandbox", "ImageStatus", "CreateContainer", "StartContainer"]
            #expect(methods == expected)
            for (call, next) in zip(record.calls, record.calls.dropFirst()) {
                #expect(call.begin <= call.end && call.end <= next.begin, "\(call.method) overlaps \(next.method)")
                #expect(call.succeeded)
            }
            #expect(record.created <= record.calls[0].begin)
            #expect(record.calls.last!.end <= record.running && record.running <= record.ready)
            #expect(record.containerPid > 0 && record.sandboxPid > 0)
            #expect(record.mountNamespaceInode != nil)
            #expect(record.imageID.hasPrefix("sha256:"))
            #expect(record.imageDigest?.hasPrefix("sha256:") == true)
            // Sandbox creation on these machines takes ~80 ms; anything under 30 s is a real call.
            let sandbox = try #require(record.call("RunPodSandbox"))
            #expect(sandbox.seconds > 0.005 && sandbox.seconds < 30)
            try await expectNothingLeft(record.pod, netns: record.networkNamespacePath, logDirectory: options.logDirectory)
        }

        @Test func coldStartRemovesTheImageSoPullImageReallyPulls() async throws {
            var options = env.options(image: "large-layer:latest")
            options.cold = true
            let record = try await PodStarter(endpoint: env.endpoint).run(options)
            #expect(record.pulled)
            let pull = try #require(record.call("PullImage"))
            // 64 MiB of incompressible data through the loopback registry: measurably long.
            #expect(pull.seconds > 0.05, "pull took \(pull.seconds) s")
            try await expectNothingLeft(record.pod, logDirectory: options.logDirectory)
        }

        @Test func fileReadinessWaitsForTheEntrypointsDelay() async throws {
            var options = env.options(image: "slow-ready:latest")
            options.readiness = .file(path: "/tmp/ready")
            options.probePeriod = .milliseconds(20)
            let record = try await PodStarter(endpoint: env.endpoint).run(options)
            let probeSeconds = record.running.seconds(to: record.ready)
            // The entrypoint sleeps 1.5 s after the container starts; the container's start lies
            // between StartContainer's begin and the first status that says running.
            #expect(abs(probeSeconds - 1.5) <= 0.15, "probe phase \(probeSeconds) s")
            #expect(record.probeAttempts > 10)
            try await expectNothingLeft(record.pod, logDirectory: options.logDirectory)
        }

        @Test func execReadinessUsesExecSyncInTheContainer() async throws {
            var options = env.options(image: "slow-ready:latest")
            options.env = [.init(name: "READY_DELAY", value: "0.5")]
            options.readiness = .exec(command: ["/bin/busybox", "test", "-e", "/tmp/ready"])
            let record = try await PodStarter(endpoint: env.endpoint).run(options)
            let probeSeconds = record.running.seconds(to: record.ready)
            #expect(probeSeconds >= 0.45 && probeSeconds < 3, "probe phase \(probeSeconds) s")
            try await expectNothingLeft(record.pod, logDirectory: options.logDirectory)
        }

        @Test(arguments: ["http", "tcp"])
        func networkReadinessChecksRunOnThePodsOwnLoopback(kind: String) async throws {
            var options = env.options(image: "small-files:latest")
            // busybox httpd binds to all addresses of the pod's namespace; the check only ever
            // connects to 127.0.0.1 inside it.
            options.command = ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 0.3; exec /bin/busybox httpd -f -p 8080 -h /data"]
            options.readiness = kind == "http" ? .http(port: 8080, path: "/small/f0000.txt") : .tcp(port: 8080)
            options.probePeriod = .milliseconds(50)
            let record = try await PodStarter(endpoint: env.endpoint).run(options)
            let probeSeconds = record.running.seconds(to: record.ready)
            #expect(probeSeconds >= 0.25 && probeSeconds < 5, "probe phase \(probeSeconds) s")
            // Nothing listens on the host's loopback port: the check really ran in the pod.
            try await expectNothingLeft(record.pod, logDirectory: options.logDirectory)
        }

        @Test func missingImageFailsClearlyAndLeavesNothing() async throws {
            let options = env.options(image: "does-not-exist:latest")
            do {
                _ = try await PodStarter(endpoint: env.endpoint).run(options)
                Issue.record("a start with a missing image succeeded")
            } catch let error as PodStartError {
                guard case .pullFailed(let image, let detail) = error else {
                    Issue.record("unexpected error \(error)"); return
                }
                #expect(image.hasSuffix("does-not-exist:latest"))
                #expect(detail.contains("not found"), "detail: \(detail)")
            }
            try await expectNothingLeft(options.pod, logDirectory: options.logDirectory)
        }

        @Test func containerExitingBeforeReadyReportsItsExitCode() async throws {
            var options = env.options(image: "small-files:latest")
            options.command = ["/bin/busybox", "sh", "-c", "echo giving up; exit 3"]
            options.readiness = .file(path: "/tmp/ready")
            do {
                _ = try await PodStarter(endpoint: env.endpoint).run(options)
                Issue.record("a container that exits with 3 became ready")
            } catch let error as PodStartError {
                guard case .containerExited(_, let code, _, let logTail) = error else {
                    Issue.record("unexpected error \(error)"); return
                }
                #expect(code == 3)
                #expect(logTail.contains("giving up"), "log tail: \(logTail)")
                #expect(error.description.contains("exited with code 3"))
            }
            try await expectNothingLeft(options.pod, logDirectory: options.logDirectory)
        }

        @Test func notReadyWithinTimeoutFailsAndTearsDown() async throws {
            var options = env.options(image: "small-files:latest")
            options.readiness = .file(path: "/never")
            options.timeout = .seconds(3)
            do {
                _ = try await PodStarter(endpoint: env.endpoint).run(options)
                Issue.record("became ready without /never")
            } catch let error as PodStartError {
                guard case .notReady = error else { Issue.record("unexpected error \(error)"); return }
                #expect(error.description.contains("/never"))
            }
            try await expectNothingLeft(options.pod, logDirectory: options.logDirectory)
        }

        @Test func cancelledStartStillTearsDown() async throws {
            var options = env.options(image: "small-files:latest")
            options.readiness = .file(path: "/never")
            let starter = PodStarter(endpoint: env.endpoint)
            let startOptions = options
            let task = Task { try await starter.run(startOptions) }
            // Cancel once the container exists (as Ctrl-C would, mid-start).
            let deadline = Date().addingTimeInterval(30)
            var sawContainer = false
            while Date() < deadline, !sawContainer {
                try await Task.sleep(for: .milliseconds(50))
                sawContainer = try await CRIClient.withClient(endpoint: env.endpoint) { client in
                    !(try await client.listContainers(labelSelector: [KubeletLabels.podUID: options.pod.uid]).isEmpty)
                }
            }
            #expect(sawContainer)
            task.cancel()
            let result = await task.result
            #expect(throws: (any Error).self) { try result.get() }
            try await expectNothingLeft(options.pod, logDirectory: options.logDirectory)
        }

        /// Cancelled while StartContainer is in flight (a few milliseconds after the container was
        /// created): containerd 1.6, its call cut short, kept a task it could not delete and the
        /// teardown left the pod behind (CI, 2026-12-07). The call now runs to its end first, and
        /// nothing of the pod remains whenever the cancellation lands.
        /// The exact window (after the shim created the task, before containerd read its pid) is
        /// narrow and was not hit here in 15 sweeps of the call, so the test checks what avoids it:
        /// containerd's own log says the call returned successfully, never "context canceled".
        @Test(arguments: Array(stride(from: 0, through: 60, by: 10))) func aStartCancelledDuringStartContainerLeavesNothing(afterMilliseconds: Int) async throws {
            var options = env.options(image: "small-files:latest")
            options.readiness = .file(path: "/never")
            let starter = PodStarter(endpoint: env.endpoint)
            let startOptions = options
            final class Shared: Sendable {
                let task = Mutex<Task<PodStartRecord, any Error>?>(nil)
                let created = Mutex<String?>(nil)
            }
            let shared = Shared()
            let task = Task {
                try await starter.run(startOptions, onEvent: { event in
                    guard case .containerCreated(let id) = event else { return }
                    shared.created.withLock { $0 = id }
                    // StartContainer follows at once: cancel while it is in the runtime
                    Task.detached {
                        try? await Task.sleep(for: .milliseconds(afterMilliseconds))
                        shared.task.withLock { $0 }?.cancel()
                    }
                })
            }
            shared.task.withLock { $0 = task }
            let result = await task.result
            let id = try #require(shared.created.withLock { $0 }, "the container was never created")
            #expect(throws: (any Error).self) { try result.get() }
            // containerd 1.6's CRI log line for the call's end (2.x writes the same)
            let log = try String(contentsOfFile: "\(env.directory)/containerd/containerd.log", encoding: .utf8)
            let ends = log.split(separator: "\n").filter { $0.contains("StartContainer for \\\"\(id)\\\"") && !$0.contains("level=info msg=\"StartContainer for \\\"\(id)\\\"\"") }
            #expect(ends.contains { $0.contains("returns successfully") }, "StartContainer was cut short: \(ends)")
            #expect(!ends.contains { $0.contains("context canceled") }, "\(ends)")
            if case .failure(let error as PodStartError) = result, case .teardownFailed = error {
                Issue.record("the teardown left the pod: \(error)")
            }
            try await expectNothingLeft(options.pod, logDirectory: options.logDirectory)
        }

        @Test func missingSocketNamesTheSocketAndWhatToDo() async throws {
            let endpoint = CRIEndpoint(socketPath: "/run/podstart-test-nothing-here/containerd.sock")
            var options = env.options(image: "small-files:latest")
            options.timeout = .seconds(5)
            do {
                _ = try await PodStarter(endpoint: endpoint).run(options)
                Issue.record("started a pod without a runtime")
            } catch {
                let text = "\(error)"
                #expect(text.contains("/run/podstart-test-nothing-here/containerd.sock"))
                #expect(text.contains("containerd not running? start it or pass --cri-endpoint"))
            }
        }

        @Test func rootfsOverlayMapsEachFileToTheLayerThatProvidesIt() async throws {
            var options = env.options(image: "reader:latest")
            options.readiness = .file(path: "/tmp/ready")
            var hits: [String: OverlayRootfs.LayerHit?] = [:]
            var layerCount = 0
            let record = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { record in
                let rootfs = try #require(record.rootfs)
                layerCount = rootfs.lowerDirs.count
                for path in ["/reader", "/bin/busybox", "/data/one.txt", "/data/two.bin", "/data/three.txt",
                             "/tmp/ready", "/nonexistent"] {
                    hits[path] = rootfs.layerIndex(providing: path)
                }
            })
            #expect(layerCount == 3)
            // lowerDirs are topmost first: layer 3 (three.txt) is index 0, layer 1 (binaries) index 2.
            #expect(hits["/data/three.txt"] == .lower(0))
            #expect(hits["/data/one.txt"] == .lower(1))
            #expect(hits["/data/two.bin"] == .lower(1))
            #expect(hits["/reader"] == .lower(2))
            #expect(hits["/bin/busybox"] == .lower(2))
            #expect(hits["/tmp/ready"] == .upper)
            #expect(hits["/nonexistent"] == .some(nil))
            #expect(record.rootfs?.mountPoint.hasSuffix("/\(record.containerID)/rootfs") == true)
        }
    }
}
