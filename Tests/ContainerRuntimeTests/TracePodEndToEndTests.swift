import ContainerRuntime
import Foundation
import PodstartCore
import PodstartTestSupport
import Synchronization
import Testing

extension ContainerRuntimeIntegration {
    /// `podstart trace --pod NS/NAME` as on a kubelet node: the built binary follows a test API
    /// server (TLS, a test CA, a bearer token, through --kubeconfig) serving a pod list and a watch
    /// shaped exactly like the real node's (reference/real-cluster-1.28/api-pods-final.json:
    /// pod-a-reader with its names, UID, node and image renamed), while the test plays the kubelet:
    /// it creates the pod in the API, starts its sandbox and container through the real
    /// containerd's CRI with the kubelet's labels, and writes the pod's status through the watch
    /// (Pending after the sandbox, then Running and Ready) as a kubelet does.
    @Suite struct TracePodEndToEndTests {
        static let token = "trace-pod-token-77d1"
        static let node = "tracepod-node"
        let env: LocalEnvironment
        let binary: String

        init() throws {
            env = try LocalEnvironment.shared()
            binary = try LocalEnvironment.podstartBinary()
        }

        /// The recorded pod-a-reader, renamed: name, UID, node, image (the local registry's).
        static func recordedPod(name: String, uid: String, image: String) throws -> [String: Any] {
            try RecordedPods.pod("pod-a-reader", name: name, uid: uid, node: node, asCreated: false) { _ in image }
        }

        static func rfc3339Second(_ unixNs: Int64) -> String {
            let formatter = ISO8601DateFormatter()
            formatter.timeZone = TimeZone(identifier: "UTC")
            return formatter.string(from: Date(timeIntervalSince1970: Double(unixNs / 1_000_000_000)))
        }

        /// `podstart trace --pod` in the background, its output in files.
        final class TraceProcess: @unchecked Sendable {
            let process = Process()
            let stdout: String
            let stderr: String
            init(_ arguments: [String]) throws {
                let base = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-trace-pod-\(UUID().uuidString)").path
                stdout = base + ".out"
                stderr = base + ".err"
                _ = FileManager.default.createFile(atPath: stdout, contents: nil)
                _ = FileManager.default.createFile(atPath: stderr, contents: nil)
                process.executableURL = URL(fileURLWithPath: arguments[0])
                process.arguments = Array(arguments.dropFirst())
                process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
                process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
                try process.run()
            }
            /// Waits for the exit (a hung binary is a failure, not a speed check).
            func finish(within limit: Duration = .seconds(180)) async throws -> (Int32, String, String) {
                let deadline = ContinuousClock.now + limit
                while process.isRunning {
                    guard ContinuousClock.now < deadline else { process.terminate(); throw LocalEnvironment.StartFailure(description: "podstart trace --pod never ended") }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return (process.terminationStatus, (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "",
                        (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "")
            }
        }

        static func until(_ what: String, _ done: () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(60)  // a hung test, not a speed check
            while !done() {
                guard ContinuousClock.now < deadline else { throw LocalEnvironment.StartFailure(description: "never: \(what)") }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        @Test func tracePodFollowsTheKubeletsStartThroughTheAPIAndCRIWithEveryPhase() async throws {
            let pki = try TestPKI.make()
            let api = TestPodAPIServer(token: Self.token, node: Self.node)
            let server = try await api.serve(pki: pki)
            defer { api.close(); Task { try? await server.shutdown() } }
            let uid = UUID().uuidString.lowercased()
            let name = "reader-\(uid.prefix(8))"
            let image = env.image("reader:latest")
            let recorded = try Self.recordedPod(name: name, uid: uid, image: image)

            let trace = try TraceProcess([binary, "trace", "--pod", "default/\(name)", "--kubeconfig", try api.kubeconfig(port: server.port, pki: pki),
                                          "--node-name", Self.node, "--cri-endpoint", env.endpoint.description, "--output", "json",
                                          "--timeout", "120s"])
            // the trace listed the node's pods and watches them: now the pod is created
            try await Self.until("the trace watches the node's pods") { server.log.contains { $0.uri.contains("watch=true") } }

            let createdNs = WallClock.unixNow()
            let creation = Self.rfc3339Second(createdNs)
            var pod = recorded
            var meta = pod["metadata"] as! [String: Any]
            meta["creationTimestamp"] = creation
            meta["managedFields"] = nil
            pod["metadata"] = meta
            pod["status"] = ["phase": "Pending", "qosClass": "BestEffort"]
            try api.publish("ADDED", pod)
            let created = pod

            // the kubelet's start, through the real runtime, with its labels
            var options = env.options(image: "reader:latest")
            options.pod = PodIdentity(namespace: "default", name: name, uid: uid)
            options.containerName = "reader"
            options.cold = true  // a real pull
            let recordedStatus = recorded["status"] as! [String: Any]
            let condition = Self.condition
            // the kubelet's first status write, once the sandbox is up: scheduled, initialized, not ready
            var pending = created
            var pendingStatus = recordedStatus
            pendingStatus["phase"] = "Pending"
            pendingStatus["startTime"] = creation
            pendingStatus["conditions"] = [condition("Initialized", "True", creation), condition("Ready", "False", creation),
                                           condition("ContainersReady", "False", creation), condition("PodScheduled", "True", creation)]
            pendingStatus["containerStatuses"] = [["name": "reader", "state": ["waiting": ["reason": "ContainerCreating"]], "lastState": [:] as [String: Any],
                                                   "ready": false, "restartCount": 0, "image": image, "imageID": "", "started": false]]
            pending["status"] = pendingStatus
            let pendingObject = PodObject(value: pending)
            let sandboxUp = Mutex(false)
            let record = try await PodStarter(endpoint: env.endpoint).run(options, onEvent: { event in
                if case .sandboxReady = event {
                    _ = try? api.publish("MODIFIED", pendingObject.value)
                    sandboxUp.withLock { $0 = true }
                }
            }, whileReady: { record in
                // running and Ready, as the kubelet writes it (second resolution)
                let now = Self.rfc3339Second(WallClock.unixNow())
                var running = created
                var status = recordedStatus
                status["startTime"] = creation
                status["conditions"] = [condition("Initialized", "True", creation), condition("Ready", "True", now),
                                        condition("ContainersReady", "True", now), condition("PodScheduled", "True", creation)]
                var container = (recordedStatus["containerStatuses"] as! [[String: Any]])[0]
                container["state"] = ["running": ["startedAt": Self.rfc3339Second(record.running.unixNs)]]
                container["image"] = image
                container["imageID"] = record.imageDigest.map { "\(image.split(separator: ":").dropLast().joined(separator: ":"))@\($0)" } ?? ""
                container["containerID"] = "containerd://\(record.containerID)"
                status["containerStatuses"] = [container]
                running["status"] = status
                let readyWritten = try api.publish("MODIFIED", running)
                // the pod runs until the trace has written its start
                let (code, output, errors) = try await trace.finish()
                try Self.check(code: code, output: output, errors: errors, record: record, uid: uid, name: name, createdNs: createdNs,
                               readyWritten: readyWritten)
            })
            #expect(sandboxUp.withLock { $0 })
            #expect(record.pod.uid == uid)
        }

        static func condition(_ type: String, _ status: String, _ at: String) -> [String: Any] {
            ["type": type, "status": status, "lastProbeTime": NSNull(), "lastTransitionTime": at]
        }

        /// A pod object handed to the start's event callback (read only there).
        struct PodObject: @unchecked Sendable { let value: [String: Any] }

        static func check(code: Int32, output: String, errors: String, record: PodStartRecord, uid: String, name: String, createdNs: Int64,
                          readyWritten: Int64) throws {
            #expect(code == 0, "podstart trace --pod failed (\(code)): \(errors)")
            let line = output.split(separator: "\n").first { $0.hasPrefix("{") } ?? ""
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "no trace JSON: \(output) \(errors)")
            let pod = try #require(object["pod"] as? [String: Any])
            #expect(pod["uid"] as? String == uid)
            #expect(pod["name"] as? String == name)
            #expect(pod["namespace"] as? String == "default")
            #expect(object["outcome"] as? String == "ready")
            func time(_ text: Any?) throws -> Int64 { try #require((text as? String).flatMap(Timestamp.parseRFC3339)) }
            let phases = try (object["phases"] as? [[String: Any]] ?? []).map { p in
                (name: p["name"] as? String ?? "", start: try time(p["start"]), end: try time(p["end"]), parent: p["parent"] as? String)
            }
            let names = Set(phases.map(\.name))
            for phase in ["schedule", "sandbox", "pull", "create", "start", "ready_report"] {
                #expect(names.contains(phase), "phase \(phase) missing: \(line)")
            }
            #expect(!names.contains("probe"), "pod-a has no readiness probe: the time to Ready is the kubelet's report")
            // created is the pod's creation: the API's whole second, made sub-second by the instant
            // the watch delivered the new pod (within the second's window, before the sandbox)
            let created = try time(object["created"])
            let second = createdNs / 1_000_000_000 * 1_000_000_000
            let sandboxCall = try #require(record.call("RunPodSandbox"))
            #expect(created >= second && created < second + 2_000_000_000 && created <= sandboxCall.begin.unixNs,
                    "created \(created), creationTimestamp \(second), RunPodSandbox \(sandboxCall.begin.unixNs)")
            // each CRI phase overlaps the call the test made (the trace sees the runtime's listing
            // and events, not the calls), in the kubelet's order
            for (phase, call) in [("sandbox", "RunPodSandbox"), ("pull", "PullImage"), ("create", "CreateContainer"), ("start", "StartContainer")] {
                let made = try #require(record.call(call), "the test made no \(call)")
                let span = try #require(phases.first { $0.name == phase })
                #expect(span.start < made.end.unixNs && span.end > made.begin.unixNs,
                        "\(phase) \(span.start)…\(span.end) does not overlap \(call) \(made.begin.unixNs)…\(made.end.unixNs)")
            }
            let order = ["schedule", "sandbox", "pull", "create", "start", "ready_report"].compactMap { n in phases.first { $0.name == n && $0.parent == nil } }
            for (a, b) in zip(order, order.dropFirst()) { #expect(a.end <= b.start, "\(a.name) ends after \(b.name) starts") }
            let ready = try time(object["ready"])
            #expect(ready >= record.running.unixNs, "Ready before the container ran")
            // ready is the Ready status write (the watch's delivery of it), not its whole second
            #expect(abs(ready - readyWritten) <= 10_000_000, "ready \(ready), the Ready status written at \(readyWritten)")
            // the kernel probes saw the container's reads, named by layer
            let container = try #require((object["containers"] as? [[String: Any]])?.first)
            #expect(container["name"] as? String == "reader")
            let paths = (container["accesses"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
            #expect(paths.contains("/data/one.txt"), "accesses: \(paths)")
        }

        /// Plays the kubelet for `pod` while `podstart trace --pod` follows it: writes the pod to
        /// the API as created, starts it through the real containerd with `options` (its sandbox,
        /// init containers, container), writing the status as the kubelet does at each step
        /// (KubeletStatusWriter), Ready once the start's readiness check passed. Returns the trace's
        /// exit and output, the record, and when Ready was written (Unix ns).
        func startAsKubelet(_ pod: [String: Any], options: PodStartOptions, readinessProbe: Bool)
            async throws -> (code: Int32, output: String, errors: String, record: PodStartRecord, readyWritten: Int64) {
            let pki = try TestPKI.make()
            let api = TestPodAPIServer(token: Self.token, node: Self.node)
            let server = try await api.serve(pki: pki)
            defer { api.close(); Task { try? await server.shutdown() } }
            let name = (pod["metadata"] as! [String: Any])["name"] as! String
            let trace = try TraceProcess([binary, "trace", "--pod", "default/\(name)", "--kubeconfig", try api.kubeconfig(port: server.port, pki: pki),
                                          "--node-name", Self.node, "--cri-endpoint", env.endpoint.description, "--output", "json",
                                          "--timeout", "120s"])
            try await Self.until("the trace watches the node's pods") { server.log.contains { $0.uri.contains("watch=true") } }
            let kubelet = KubeletStatusWriter(pod: pod, api: api)
            try kubelet.create()
            var outcome: (Int32, String, String)?
            let (record, readyWritten) = try await kubelet.start(options, endpoint: env.endpoint, readinessProbe: readinessProbe) { _, _ in
                // the pod runs until the trace has written its start
                outcome = try await trace.finish()
            }
            let (code, output, errors) = try #require(outcome)
            return (code, output, errors, record, readyWritten)
        }

        typealias Phase = (name: String, start: Int64, end: Int64, parent: String?)

        /// The trace JSON of a ready start and its phases.
        static func parse(_ code: Int32, _ output: String, _ errors: String) throws -> ([String: Any], [Phase]) {
            #expect(code == 0, "podstart trace --pod failed (\(code)): \(errors)")
            let line = output.split(separator: "\n").first { $0.hasPrefix("{") } ?? ""
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "no trace JSON: \(output) \(errors)")
            #expect(object["outcome"] as? String == "ready")
            func time(_ text: Any?) throws -> Int64 { try #require((text as? String).flatMap(Timestamp.parseRFC3339)) }
            let phases = try (object["phases"] as? [[String: Any]] ?? []).map { p in
                (name: p["name"] as? String ?? "", start: try time(p["start"]), end: try time(p["end"]), parent: p["parent"] as? String)
            }
            return (object, phases)
        }

        /// Nanoseconds of `interval` that spans named `name` (top level or parts) cover.
        static func covered(_ phases: [Phase], _ names: Set<String>, _ interval: (Int64, Int64)) -> Int64 {
            phases.filter { names.contains($0.name) }.map { max(0, min($0.end, interval.1) - max($0.start, interval.0)) }.reduce(0, +)
        }

        /// pod-d-init as recorded (init container `init`: small-files running `sleep 1`, then
        /// reader), with a second init container added (`init-2`, `sleep 0.5`): the kubelet runs
        /// each to completion, one after the other, before the reader's image is pulled. Both
        /// images are pulled cold. The trace has an `init` span per init container covering its
        /// run, and no pull span touches a run (in 1.28 the kubelet's own pull window spans them).
        @Test func tracePodWithInitContainersHasAnInitPhasePerInitContainerAndNoneOfItInPull() async throws {
            let uid = UUID().uuidString.lowercased()
            let name = "init-\(uid.prefix(8))"
            var pod = try RecordedPods.pod("pod-d-init", name: name, uid: uid, node: Self.node, image: env.image)
            var spec = pod["spec"] as! [String: Any]
            var inits = spec["initContainers"] as! [[String: Any]]
            var second = inits[0]
            second["name"] = "init-2"
            second["command"] = ["/bin/busybox", "sleep", "0.5"]
            inits.append(second)
            spec["initContainers"] = inits
            pod["spec"] = spec

            var options = env.options(image: "reader:latest")
            options.pod = PodIdentity(namespace: "default", name: name, uid: uid)
            options.containerName = "reader"
            options.cold = true
            options.initContainers = inits.map { c in
                .init(name: c["name"] as! String, image: c["image"] as! String, command: c["command"] as! [String])
            }
            // the init image cold too: its pull comes before the first run, the reader's after the last
            let initImage = options.initContainers[0].image
            let endpoint = env.endpoint
            try await CRIClient.withClient(endpoint: endpoint, timeout: .seconds(60)) { client in
                _ = try await PodStarter(endpoint: endpoint).removeImageForColdStart(initImage, client: client)
            }
            let (code, output, errors, record, readyWritten) = try await startAsKubelet(pod, options: options, readinessProbe: false)
            let (object, phases) = try Self.parse(code, output, errors)
            #expect((object["pod"] as? [String: Any])?["uid"] as? String == uid)

            try #require(record.initContainers.count == 2, "the start ran \(record.initContainers.count) init containers")
            let initSpans = phases.filter { $0.name == "init" && $0.parent == nil }
            #expect(initSpans.count == 2, "one init span per init container: \(phases)")
            for run in record.initContainers {
                let interval = (run.runtimeStartedAtUnixNs, run.runtimeFinishedAtUnixNs)
                let length = interval.1 - interval.0
                #expect(length >= 400_000_000, "init container \(run.name) ran \(length) ns")
                // its own run is init: all of it but the exec of its first process (start's end)
                let inInit = Self.covered(phases, ["init"], interval)
                #expect(inInit >= length - 50_000_000, "init \(run.name): \(inInit) of its \(length) ns run in init: \(phases)")
                #expect(Self.covered(phases, ["pull", "download", "decompress", "pull_other"], interval) == 0,
                        "init \(run.name)'s run counted as pull: \(phases)")
                // one init span per container: this one covers most of this run
                #expect(initSpans.contains { min($0.end, interval.1) - max($0.start, interval.0) >= length - 50_000_000 },
                        "no init span of its own for \(run.name): \(initSpans)")
            }
            // both pulls are there, each overlapping its own PullImage: the init image's before the
            // first run, the reader's after the last
            let pulls = phases.filter { $0.name == "pull" && $0.parent == nil }
            let initPull = try #require(record.initContainers[0].call("PullImage"), "the init image was not pulled")
            let readerPull = try #require(record.call("PullImage"), "reader was not pulled")
            for call in [initPull, readerPull] {
                #expect(pulls.contains { $0.start < call.end.unixNs && $0.end > call.begin.unixNs },
                        "no pull span overlaps PullImage \(call.begin.unixNs)…\(call.end.unixNs): \(pulls); the trace's phases: \(object["phases"] ?? "none")")
            }
            #expect(readerPull.begin.unixNs >= record.initContainers[1].runtimeFinishedAtUnixNs, "the kubelet's order")
            let ready = try #require((object["ready"] as? String).flatMap(Timestamp.parseRFC3339))
            #expect(abs(ready - readyWritten) <= 10_000_000, "ready \(ready), the Ready status written at \(readyWritten)")
            let names = Set(phases.map(\.name))
            #expect(names.contains("ready_report") && !names.contains("probe"), "pod-d has no readiness probe: \(names)")
        }

        /// pod-b-slowready as recorded: slow-ready (ready 1.5 s after it runs) with an exec
        /// readiness probe. The kubelet writes the running status, then Ready once the probe passes
        /// (here: after the start's own check of /tmp/ready passed): `probe` = the container
        /// running → Ready, and ready is the Ready status write (within 10 ms, issue #15), though
        /// the API gives its time to the second.
        @Test func tracePodWithAReadinessProbeHasAProbePhaseEndingAtTheReadyWrite() async throws {
            let uid = UUID().uuidString.lowercased()
            let name = "slow-\(uid.prefix(8))"
            let pod = try RecordedPods.pod("pod-b-slowready", name: name, uid: uid, node: Self.node, image: env.image)
            var options = env.options(image: "slow-ready:latest")
            options.pod = PodIdentity(namespace: "default", name: name, uid: uid)
            options.containerName = "slow"
            options.readiness = .exec(command: ["/bin/busybox", "test", "-f", "/tmp/ready"])
            let (code, output, errors, record, readyWritten) = try await startAsKubelet(pod, options: options, readinessProbe: true)
            let (object, phases) = try Self.parse(code, output, errors)
            #expect((object["pod"] as? [String: Any])?["name"] as? String == name)
            let ready = try #require((object["ready"] as? String).flatMap(Timestamp.parseRFC3339))
            #expect(abs(ready - readyWritten) <= 10_000_000, "ready \(ready), the Ready status written at \(readyWritten)")
            let names = Set(phases.map(\.name))
            #expect(!names.contains("ready_report"), "a pod with a readiness probe: \(names)")
            let probe = try #require(phases.first { $0.name == "probe" }, "no probe phase: \(phases)")
            #expect(probe.end == ready, "probe ends at ready")
            // it begins as the container runs: after StartContainer was made, before the image's
            // 1.5 s delay passed (the start's check saw /tmp/ready only after it)
            let start = try #require(record.call("StartContainer"))
            #expect(probe.start >= start.begin.unixNs && probe.start <= record.running.unixNs + 50_000_000,
                    "probe starts at \(probe.start); StartContainer \(start.begin.unixNs), running seen \(record.running.unixNs)")
            #expect(probe.end - probe.start >= 1_500_000_000, "probe \(probe.end - probe.start) ns, the image is ready 1.5 s after it runs")
        }

        @Test func tracePodOfAPodAlreadyRunningSaysSoAndFails() async throws {
            let pki = try TestPKI.make()
            let api = TestPodAPIServer(token: Self.token, node: Self.node)
            let server = try await api.serve(pki: pki)
            defer { api.close(); Task { try? await server.shutdown() } }
            let uid = UUID().uuidString.lowercased()
            let name = "reader-\(uid.prefix(8))"
            // the recorded pod as it was at the end: Running and Ready before the trace began
            try api.publish("ADDED", try Self.recordedPod(name: name, uid: uid, image: env.image("reader:latest")))
            let trace = try TraceProcess([binary, "trace", "--pod", "default/\(name)", "--kubeconfig", try api.kubeconfig(port: server.port, pki: pki),
                                          "--node-name", Self.node, "--cri-endpoint", env.endpoint.description, "--no-kernel", "--timeout", "60s"])
            let (code, output, errors) = try await trace.finish()
            #expect(code != 0)
            #expect(errors.contains("was already Ready when the trace began"), "stderr: \(errors)")
            #expect(!output.contains("{"), "no trace printed: \(output)")
        }

        @Test func tracePodOfAPodDeletedBeforeItRanSaysSoAndFails() async throws {
            let pki = try TestPKI.make()
            let api = TestPodAPIServer(token: Self.token, node: Self.node)
            let server = try await api.serve(pki: pki)
            defer { api.close(); Task { try? await server.shutdown() } }
            let uid = UUID().uuidString.lowercased()
            let name = "reader-\(uid.prefix(8))"
            let trace = try TraceProcess([binary, "trace", "--pod", "default/\(name)", "--kubeconfig", try api.kubeconfig(port: server.port, pki: pki),
                                          "--node-name", Self.node, "--cri-endpoint", env.endpoint.description, "--no-kernel", "--output", "json",
                                          "--timeout", "60s"])
            try await Self.until("the trace watches the node's pods") { server.log.contains { $0.uri.contains("watch=true") } }
            var pod = try Self.recordedPod(name: name, uid: uid, image: env.image("reader:latest"))
            var meta = pod["metadata"] as! [String: Any]
            meta["creationTimestamp"] = Self.rfc3339Second(WallClock.unixNow())
            pod["metadata"] = meta
            pod["status"] = ["phase": "Pending", "qosClass": "BestEffort"]
            try api.publish("ADDED", pod)
            try api.publish("DELETED", pod)
            let (code, output, errors) = try await trace.finish()
            #expect(code != 0)
            #expect(errors.contains("pod default/\(name) did not start: pod deleted before it was ready"), "stderr: \(errors)")
            // nothing of it ran on the node: no start to print
            #expect(!output.contains("{"), "output: \(output)")
        }

        @Test func tracePodWithOnlyTheKubeletReadsItsPodsAndSeesThePodAlreadyReady() async throws {
            // no API server: the kubelet's /pods (authenticated, its own CA), as recorded at the end
            let pki = try TestPKI.make()
            let uid = UUID().uuidString.lowercased()
            let name = "reader-\(uid.prefix(8))"
            let pod = try Self.recordedPod(name: name, uid: uid, image: env.image("reader:latest"))
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["kind": "PodList", "apiVersion": "v1", "metadata": [:] as [String: Any], "items": [pod]]),
                              as: UTF8.self)
            let server = try await TestHTTPSServer(pki: pki, route: { uri, auth in
                guard auth == "Bearer \(Self.token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized"]) }
                return uri == "/pods" ? TestRoute(chunks: [body]) : TestRoute(status: .notFound, chunks: ["not found"])
            })
            defer { Task { try? await server.shutdown() } }
            let tokenFile = pki.directory + "/kubelet-token"
            try Self.token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let (code, output) = LocalEnvironment.run(["env", "-u", "KUBERNETES_SERVICE_HOST", binary, "trace", "--pod", "default/\(name)",
                                                       "--kubelet-url", "https://127.0.0.1:\(server.port)", "--kubelet-token-file", tokenFile,
                                                       "--kubelet-ca-file", pki.caFile, "--node-name", Self.node, "--no-kernel",
                                                       "--cri-endpoint", env.endpoint.description, "--timeout", "60s"])
            #expect(code != 0)
            #expect(output.contains("pod default/\(name) (uid \(uid)) was already Ready when the trace began"), "output: \(output)")
            #expect(server.log.contains { $0.uri == "/pods" && $0.authorization == "Bearer \(Self.token)" })
        }

        @Test func tracePodWithoutAPIServerOrKubeletRefusesNamingTheFlags() throws {
            let (code, output) = LocalEnvironment.run(["env", "-u", "KUBERNETES_SERVICE_HOST", binary, "trace", "--pod", "default/web-0",
                                                       "--cri-endpoint", env.endpoint.description])
            #expect(code != 0)
            #expect(output.contains("--kubeconfig") && output.contains("--kubelet-url"), "output: \(output)")
        }

        @Test func tracePodTimesOutWithAClearMessageWhenThePodNeverComes() async throws {
            let pki = try TestPKI.make()
            let api = TestPodAPIServer(token: Self.token, node: Self.node)
            let server = try await api.serve(pki: pki)
            defer { api.close(); Task { try? await server.shutdown() } }
            let trace = try TraceProcess([binary, "trace", "--pod", "default/never-created", "--kubeconfig", try api.kubeconfig(port: server.port, pki: pki),
                                          "--node-name", Self.node, "--cri-endpoint", env.endpoint.description, "--no-kernel", "--timeout", "2s"])
            let (code, _, errors) = try await trace.finish()
            #expect(code != 0)
            #expect(errors.contains("no pod default/never-created appeared on node \(Self.node) within 2s (--timeout)"), "stderr: \(errors)")
        }
    }
}
