import ContainerRuntime
import Foundation
import KernelProbes
import PodstartCore
import PodstartTestSupport
import Synchronization
import Testing

extension ContainerRuntimeIntegration {
    /// containerd's own API (events, containers, tasks, namespaces) and membership without /proc,
    /// on containers started with `ctr run` in a containerd namespace of the test's own.
    @Suite struct ContainerdIntegrationTests {
        let env: LocalEnvironment
        let namespace = "podstart-ctrd-\(UInt32.random(in: 0 ... .max))"

        init() throws { env = try LocalEnvironment.shared() }

        @discardableResult
        func ctr(_ arguments: [String], expectSuccess: Bool = true) -> (Int32, String) {
            let result = LocalEnvironment.run(["ctr", "--address", env.endpoint.socketPath, "-n", namespace] + arguments)
            if expectSuccess { #expect(result.0 == 0, "ctr \(arguments.joined(separator: " ")): \(result.1)") }
            return result
        }

        func pull(_ name: String) -> String {
            let ref = env.image(name)
            ctr(["image", "pull", "--plain-http", ref])
            return ref
        }

        func removeNamespace() {
            for id in ctr(["containers", "ls", "-q"], expectSuccess: false).1.split(separator: "\n") {
                ctr(["task", "kill", "-s", "KILL", String(id)], expectSuccess: false)
                ctr(["task", "rm", "-f", String(id)], expectSuccess: false)
                ctr(["containers", "rm", String(id)], expectSuccess: false)
            }
            for ref in ctr(["images", "ls", "-q"], expectSuccess: false).1.split(separator: "\n") {
                ctr(["images", "rm", "--sync", String(ref)], expectSuccess: false)
            }
            LocalEnvironment.run(["ctr", "--address", env.endpoint.socketPath, "namespaces", "rm", namespace])
            // runc removes a ctr container's cgroup /<namespace>/<id> but leaves /<namespace>
            // in every hierarchy.
            if let mounts = try? CgroupMounts.current() {
                for root in Set(mounts.v1.values).union(mounts.unified.map { [$0] } ?? []) {
                    rmdir("\(root)/\(namespace)")
                }
            }
        }

        /// Collects events of `namespace` until `done` says so or `seconds` pass.
        final class Collector: Sendable {
            let events = Mutex<[ContainerdEvent]>([])
            let failure = Mutex<String?>(nil)
            var snapshot: [ContainerdEvent] { events.withLock { $0 } }
        }

        func collect(_ client: ContainerdClient, into collector: Collector) -> Task<Void, Never> {
            let stream = client.events()
            return Task {
                do {
                    for try await event in stream { collector.events.withLock { $0.append(event) } }
                } catch is CancellationError {
                } catch {
                    collector.failure.withLock { $0 = "\(error)" }
                }
            }
        }

        /// containerd's Subscribe has no acknowledgement: label the namespace until its update
        /// event comes through, so nothing the test does afterwards is published before the
        /// subscription exists.
        func waitUntilSubscribed(_ collector: Collector) async throws {
            LocalEnvironment.run(["ctr", "--address", env.endpoint.socketPath, "namespaces", "create", namespace])
            for attempt in 0..<50 {
                LocalEnvironment.run(["ctr", "--address", env.endpoint.socketPath, "namespaces", "label",
                                      namespace, "podstart.test/sync=\(attempt)"])
                try await Task.sleep(for: .milliseconds(100))
                if collector.snapshot.contains(where: { $0.topic == "/namespaces/update" }) { return }
            }
            Issue.record("no /namespaces/update event within 5 s: the subscription never started")
        }

        func waitFor(_ collector: Collector, seconds: Double = 30, _ done: ([ContainerdEvent]) -> Bool) async throws {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while ContinuousClock.now < deadline {
                if done(collector.snapshot) { return }
                if let failure = collector.failure.withLock({ $0 }) { Issue.record("event stream failed: \(failure)"); return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        @Test func ctrRunDeliversTheContainerAndTaskLifecycleInOrder() async throws {
            defer { removeNamespace() }
            let ref = pull("small-files:latest")
            let client = try ContainerdClient(endpoint: env.endpoint)
            defer { client.close() }
            let collector = Collector()
            let reader = collect(client, into: collector)
            defer { reader.cancel() }
            try await waitUntilSubscribed(collector)

            let id = "web-1"
            let (status, output) = ctr(["run", "--rm", ref, id, "/bin/busybox", "sh", "-c", "exit 3"], expectSuccess: false)
            #expect(status == 3, "ctr run: \(output)")
            try await waitFor(collector) { $0.contains { $0.payload == .containerDelete(id: id) } }

            let mine = collector.snapshot.filter { $0.namespace == namespace && $0.payload.containerID == id }
            #expect(mine.map(\.topic) == ["/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit",
                                         "/tasks/delete", "/containers/delete"])
            guard mine.count == 6 else { return }
            #expect(mine[0].payload == .containerCreate(id: id, image: ref, runtime: "io.containerd.runc.v2"))
            guard case let .taskCreate(_, bundle, createPid, rootfs) = mine[1].payload,
                  case let .taskStart(_, startPid) = mine[2].payload,
                  case let .taskExit(_, execID, exitPid, exitStatus, exitedAt) = mine[3].payload,
                  case let .taskDelete(_, deletePid, deleteStatus, _) = mine[4].payload else {
                Issue.record("unexpected payloads: \(mine.map(\.payload))")
                return
            }
            #expect(createPid > 0 && createPid == startPid && startPid == exitPid && exitPid == deletePid)
            #expect(bundle.hasSuffix("/\(namespace)/\(id)"))
            // the overlay the task runs on, from the event alone: the image's layers below its own
            let overlay = try #require(rootfs, "TaskCreate carried no overlay rootfs")
            #expect(overlay.mountPoint == bundle + "/rootfs")
            #expect(!overlay.lowerDirs.isEmpty && overlay.lowerDirs.allSatisfy { $0.hasSuffix("/fs") && $0.contains("snapshots") })
            #expect(overlay.upperDir?.hasSuffix("/fs") == true)
            #expect(execID == "")
            #expect(exitStatus == 3 && deleteStatus == 3)
            #expect(zip(mine, mine.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            #expect(abs(now - mine[0].timestamp) < 120_000_000_000, "timestamps are unix ns")
            // Envelopes are stamped when published: a process this short can exit before its
            // TaskStart is published, never before its TaskCreate.
            #expect(exitedAt >= mine[1].timestamp && exitedAt <= mine[3].timestamp)
            // The pull before the subscription produced no events here, but the image and snapshot
            // events of the run (the rootfs snapshot) decode, and nothing was malformed.
            #expect(collector.snapshot.contains { if case .snapshotPrepare(let key, _, _) = $0.payload { key == id } else { false } })
            #expect(!collector.snapshot.contains { if case .malformed = $0.payload { true } else { false } })
        }

        @Test func namespacesContainersAndTasksListWhatRuns() async throws {
            defer { removeNamespace() }
            let ref = pull("small-files:latest")
            ctr(["run", "-d", "--label", "podstart.test/role=web", ref, "sleeper", "/bin/busybox", "sleep", "60"])
            ctr(["containers", "create", ref, "idle", "/bin/busybox", "true"])
            let taskLine = ctr(["task", "ls"]).1.split(separator: "\n").first { $0.hasPrefix("sleeper ") }
            let pid = taskLine.flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first }
                .flatMap { UInt32($0) }

            let client = try ContainerdClient(endpoint: env.endpoint)
            defer { client.close() }
            #expect(try await client.namespaces().contains(namespace))
            #expect(try await client.namespaces().contains("k8s.io"))
            let containers = try await client.containers(namespace: namespace)
            #expect(Set(containers.map(\.id)) == ["sleeper", "idle"])
            let sleeper = try #require(containers.first { $0.id == "sleeper" })
            #expect(sleeper.image == ref)
            #expect(sleeper.labels["podstart.test/role"] == "web")
            #expect(sleeper.runtime == "io.containerd.runc.v2")
            #expect(sleeper.snapshotter == "overlayfs")
            #expect(sleeper.snapshotKey == "sleeper")
            #expect(sleeper.createdAt > 0 && sleeper.updatedAt >= sleeper.createdAt)
            #expect(try await client.container(namespace: namespace, id: "sleeper") == sleeper)
            #expect(try await client.container(namespace: namespace, id: "missing") == nil)
            #expect(try await client.containers(namespace: "podstart-ctrd-empty-\(getpid())").isEmpty)

            let tasks = try await client.tasks(namespace: namespace)
            #expect(tasks.count == 1, "only the started container has a task: \(tasks)")
            let task = try #require(tasks.first)
            #expect(task.containerID == "sleeper")
            #expect(task.status == .running)
            #expect(task.pid == pid && pid != nil)
            #expect(task.exitedAt == nil)
            #expect(try await client.task(namespace: namespace, containerID: "sleeper") == task)
            #expect(try await client.task(namespace: namespace, containerID: "idle") == nil)

            ctr(["task", "kill", "-s", "KILL", "sleeper"])
            var stopped: ContainerdTask?
            for _ in 0..<100 {
                stopped = try await client.task(namespace: namespace, containerID: "sleeper")
                if stopped?.status == .stopped { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(stopped?.status == .stopped)
            #expect(stopped?.exitStatus == 137)
            #expect(stopped?.exitedAt != nil)
        }

        /// Kernel exec records of a container that exited within milliseconds, joined to
        /// containerd's task events: the pid, its mount namespace and its cgroup still resolve
        /// after the process and the container are gone, live and replayed without /proc.
        @Test func containerThatExitsAtOnceResolvesByPidMountNamespaceAndCgroupAfterwards() async throws {
            defer { removeNamespace() }
            let ref = pull("small-files:latest")
            let session: KernelProbeSession
            do {
                var configuration = KernelProbeSession.Configuration()
                configuration.pollIntervalMs = 20
                // Not .startingContainers: it ignores the mount namespaces in use when the session
                // opens, and the kernel hands a freed namespace inode number (an earlier test's
                // container still tearing down) to the next new namespace.
                configuration.filter = .allContainers
                session = try KernelProbeSession(configuration: configuration)
            } catch {
                Issue.record("the kernel probes could not start (this test needs root, BTF and tracefs): \(error)")
                return
            }
            defer { session.close() }
            try session.attach([.process])
            let kernelEvents = try session.kernelEvents()
            let tasks = Mutex<[TaskContext]>([])
            let execs = Mutex<[ExecEvent]>([])
            let resolver = ContainerResolver(endpoint: env.endpoint)
            let kernelReader = Task {
                for await event in kernelEvents {
                    let task: TaskContext? = switch event {
                    case .exec(let e): e.task
                    case .exit(let e): e.task
                    case .fork(let e): e.parent
                    default: nil
                    }
                    if case .exec(let e) = event { execs.withLock { $0.append(e) } }
                    if let task {
                        tasks.withLock { $0.append(task) }
                        await resolver.observe(task)
                    }
                }
            }
            defer { kernelReader.cancel() }
            let follower = Task { try await resolver.followContainerd() }
            defer { follower.cancel() }
            let client = try ContainerdClient(endpoint: env.endpoint)
            defer { client.close() }
            let collector = Collector()
            let reader = collect(client, into: collector)
            defer { reader.cancel() }
            try await waitUntilSubscribed(collector)
            for _ in 0..<50 where !(await resolver.followsContainerd) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(await resolver.followsContainerd)

            let id = "oneshot-\(UInt16.random(in: 0 ... .max))"
            ctr(["run", "--rm", ref, id, "/bin/busybox", "true"])
            try await waitFor(collector) { $0.contains { $0.payload == .containerDelete(id: id) } }
            let startPid = collector.snapshot.compactMap { event -> UInt32? in
                if case let .taskStart(cid, pid) = event.payload, cid == id { pid } else { nil }
            }.first
            let pid = try #require(startPid, "no TaskStart for \(id)")
            // The kernel record of the container's entrypoint (the init pid execs /bin/busybox).
            var exec: ExecEvent?
            for _ in 0..<100 {
                exec = execs.withLock { $0.first { $0.task.pid == pid && $0.filename.hasSuffix("busybox") } }
                if exec != nil { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let seen = execs.withLock { list in list.suffix(20).map { "\($0.task.pid) \($0.task.mountNamespace) \($0.filename)" } }
            let record = try #require(exec, "no exec record for pid \(pid); last execs: \(seen), reader: \(session.readerStatistics)").task
            #expect(access("/proc/\(pid)/ns/mnt", F_OK) != 0, "the container's process is gone")
            var live: ContainerMetadata?
            for _ in 0..<100 {
                live = try await resolver.metadata(pid: Int32(pid))
                if live?.state == .exited { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            for (how, hit) in [("pid", live),
                               ("mount namespace", await resolver.metadata(mountNamespaceInode: UInt64(record.mountNamespace))),
                               ("cgroup", await resolver.metadata(cgroupID: record.cgroupID))] {
                let meta = try #require(hit, "live resolver: nothing by \(how)")
                #expect(meta.containerID == id, "by \(how)")
                #expect(meta.containerdNamespace == namespace)
                #expect(meta.image == ref)
                #expect(meta.pod == nil)
                #expect(meta.state == .exited)
                #expect(meta.exitCode == 0)
                #expect(meta.mountNamespaceInode == UInt64(record.mountNamespace))
                #expect(meta.cgroupID == record.cgroupID)
            }

            // Replayed after the fact, when /proc has nothing: the events and kernel records alone.
            let replay = ContainerResolver(endpoint: env.endpoint)
            for event in collector.snapshot where event.payload != .containerDelete(id: id) { await replay.apply(event) }
            for task in tasks.withLock({ $0 }) { await replay.observe(task) }
            let byPid = try await replay.metadata(pid: Int32(pid))
            #expect(byPid?.containerID == id)
            #expect(byPid?.mountNamespaceInode == UInt64(record.mountNamespace))
            #expect(await replay.metadata(mountNamespaceInode: UInt64(record.mountNamespace))?.containerID == id)
            #expect(await replay.metadata(cgroupID: record.cgroupID)?.containerID == id)
            // ctr run puts the container in cgroup /<namespace>/<id>: the id is the cgroup's inode there
            // while it existed; the host's cgroup is no container.
            #expect(try await replay.metadata(pid: getpid()) == nil)
        }

        /// Runs last in the serialized suite's file order: it restarts containerd.
        @Test func killingContainerdEndsTheEventStreamWithAnErrorNamingTheSocket() async throws {
            let client = try ContainerdClient(endpoint: env.endpoint)
            defer { client.close() }
            let collector = Collector()
            let reader = collect(client, into: collector)
            defer { reader.cancel() }
            try await waitUntilSubscribed(collector)
            defer { removeNamespace() }
            let pidText = try String(contentsOfFile: "\(env.directory)/containerd/containerd.pid", encoding: .utf8)
            let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(kill(pid, SIGKILL) == 0)
            defer {
                // localenv.sh restarts containerd only once its old pid is gone (reaped).
                for _ in 0..<200 where access("/proc/\(pid)", F_OK) == 0 { usleep(50_000) }
                let (status, output) = LocalEnvironment.run(["bash", "\(LocalEnvironment.repositoryRoot)/scripts/localenv.sh", "up"])
                #expect(status == 0, "restarting the local environment: \(output)")
            }
            var failure: String?
            for _ in 0..<200 {
                failure = collector.failure.withLock { $0 }
                if failure != nil { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let message = try #require(failure, "the event stream did not end within 10 s of containerd's death")
            #expect(message.contains(env.endpoint.socketPath), "\(message)")
            #expect(message.contains("containerd"), "\(message)")
            // A new client on the dead socket fails at once, naming it too.
            do {
                _ = try await ContainerdClient(endpoint: env.endpoint, timeout: .seconds(5)).namespaces()
                Issue.record("namespaces() answered with containerd dead")
            } catch {
                #expect("\(error)".contains(env.endpoint.socketPath), "\(error)")
            }
        }
    }
}
