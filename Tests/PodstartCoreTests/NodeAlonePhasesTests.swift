import PodstartCore
import Testing

/// A pod start seen by the node alone (issue #18): the CRI listing, containerd's event stream on
/// the same socket, and the kernel's exec records — no containerd log, no kubelet log. The start
/// still has sandbox, pull, create and start, each naming its source.
@Suite("Phases from the node alone")
struct NodeAlonePhasesTests {
    typealias T = CorrelatorTests
    static let sandboxID = String(repeating: "5", count: 64)
    static let containerID = String(repeating: "c", count: 64)
    static let stateDir = "/run/containerd/io.containerd.runtime.v2.task/k8s.io"

    static let shim = TaskContext(pid: 300, tid: 300, parentPid: 1, namespacePid: 300, mountNamespace: 1, pidNamespace: 1, cgroupID: 1,
                                  comm: "containerd-shim")

    /// The shim's runc, as the kernel records it: argv cut at 256 bytes.
    static func runc(_ step: String, _ id: String, pid: UInt32, at: Int64) -> CorrelatorInput {
        var argv = ["runc", "--root", "/run/containerd/runc/k8s.io", "--log", "\(stateDir)/\(id)/log.json", "--log-format", "json", step]
        argv += step == "create" ? ["--bundle", "\(stateDir)/\(id)", "--pid-file", "\(stateDir)/\(id)/init.pid", id] : [id]
        var bytes = 0
        var kept: [String] = []
        for a in argv {
            if bytes + a.utf8.count + 1 > 256 { kept.append(String(a.prefix(max(0, 255 - bytes)))); break }
            kept.append(a)
            bytes += a.utf8.count + 1
        }
        var task = shim
        task.pid = pid
        task.tid = pid
        task.comm = "runc"
        return .kernel(.exec(ExecEvent(timestampNs: T.mono(at), task: task, file: T.file(77), path: ResolvedPath(path: "/usr/sbin/runc", truncated: false),
                                       filename: "/usr/sbin/runc", arguments: kept, argumentsTruncated: kept.count < argv.count,
                                       isRuntimeProcess: true, oldPid: pid)))
    }

    static func exit(pid: UInt32, at: Int64) -> CorrelatorInput {
        var task = shim
        task.pid = pid
        task.tid = pid
        task.comm = "runc"
        return .kernel(.exit(ExitEvent(timestampNs: T.mono(at), task: task, waitStatus: 0, isRuntimeProcess: true)))
    }

    /// The listing sees the sandbox at 180 ms (RunPodSandbox ended at 95 ms: the pause container's
    /// runc start exited), the image stored at 400 ms (containerd's ImageCreate event), the
    /// container with CRI's createdAt 420 ms, started (createdAt 420 → startedAt 470), its runc
    /// create 425–455 and start 460–466, its first exec at 468; ready when running.
    static var stream: [CorrelatorInput] {
        [
            .pod(PodSighting(uid: "u1", namespace: "default", name: "web", createdUnixNs: T.ms(10), source: .cri)),
            .sandbox(SandboxCreation(uid: "u1", sandboxID: sandboxID, beginUnixNs: T.ms(10), endUnixNs: T.ms(180), source: .derived)),
            runc("create", sandboxID, pid: 401, at: 60), exit(pid: 401, at: 85),
            runc("start", sandboxID, pid: 402, at: 88), exit(pid: 402, at: 95),
            .pull(ImagePull(uid: nil, image: "127.0.0.1:5000/podstart-test/reader:latest", beginUnixNs: T.ms(400), endUnixNs: T.ms(400), source: .containerd)),
            .containerCreated(ContainerCreation(uid: "u1", containerID: containerID, name: "main", image: "127.0.0.1:5000/podstart-test/reader:latest",
                                                imageDigest: "sha256:d", isInit: false, beginUnixNs: T.ms(420), endUnixNs: T.ms(420), source: .cri)),
            runc("create", containerID, pid: 403, at: 425), exit(pid: 403, at: 455),
            runc("start", containerID, pid: 404, at: 460), exit(pid: 404, at: 466),
            .kernel(.exec(ExecEvent(timestampNs: T.mono(468), task: T.task, file: T.file(1), path: ResolvedPath(path: "/reader", truncated: false),
                                    filename: "/reader", arguments: ["/reader"], argumentsTruncated: false, isRuntimeProcess: false, oldPid: 50))),
            .containerStarted(ContainerStart(containerID: containerID, beginUnixNs: T.ms(420), endUnixNs: T.ms(470), source: .derived)),
            .containerMountNamespace(ContainerMountNamespace(containerID: containerID, mountNamespace: T.ns)),
            .tick(nowUnixNs: T.ms(5000)),
        ]
    }

    static func trace(_ inputs: [CorrelatorInput]) throws -> PodStartTrace {
        var config = Correlator.Configuration()
        config.readyWhenRunning = true
        var c = Correlator(configuration: config, clock: T.clock)
        var out: [PodStartTrace] = []
        for input in inputs { out += c.ingest(input) }
        return try #require(out.first)
    }

    @Test func aStartSeenByTheRuntimeAndTheKernelHasSandboxPullCreateAndStart() throws {
        let trace = try Self.trace(Self.stream)
        let top = trace.phases.filter { $0.parent == nil }
        #expect(top.map(\.name) == [.sandbox, .pull, .create, .start], "\(top.map { "\($0.name) \($0.source)" })")
        func span(_ p: PhaseName) -> PhaseSpan? { top.first { $0.name == p } }
        #expect(span(.sandbox)?.start == T.ms(10) && span(.sandbox)?.end == T.ms(95) && span(.sandbox)?.source == .kernel,
                "RunPodSandbox ends as runc started the pause container, not at the listing's sighting")
        #expect(span(.pull)?.start == T.ms(95) && span(.pull)?.end == T.ms(400) && span(.pull)?.source == .containerd)
        #expect(span(.create)?.start == T.ms(400) && span(.create)?.end == T.ms(420) && span(.create)?.source == .cri)
        #expect(span(.start)?.start == T.ms(420) && span(.start)?.end == T.ms(468) && span(.start)?.source == .kernel)
        #expect(trace.ready == T.ms(468))
        #expect(top.reduce(0) { $0 + $1.nanoseconds } == trace.e2eNanoseconds)
    }

    /// No first exec seen (probes attached too late for it): the start ends when runc started the
    /// container, still a kernel time, not the listing's startedAt.
    @Test func withoutAFirstExecTheStartEndsWhenRuncStartedTheContainer() throws {
        let inputs = Self.stream.filter { if case .kernel(.exec(let e)) = $0 { return e.isRuntimeProcess } else { return true } }
        let trace = try Self.trace(inputs)
        let start = try #require(trace.phases.first { $0.name == .start })
        #expect(start.end == T.ms(466) && start.source == .kernel)
    }

    /// A pod whose image was already there: no pull, create from the sandbox's end.
    @Test func withoutAPullCreateBeginsWhenTheSandboxIsDone() throws {
        let inputs = Self.stream.filter { if case .pull = $0 { return false } else { return true } }
        let trace = try Self.trace(inputs)
        let top = trace.phases.filter { $0.parent == nil }
        #expect(top.map(\.name) == [.sandbox, .create, .start])
        #expect(top.first { $0.name == .create }?.start == T.ms(95))
    }

    /// A pull a log timed wins over the image event's end alone.
    @Test func aLoggedPullIsKeptOverTheImageEvent() throws {
        var inputs = Self.stream
        inputs.insert(.pull(ImagePull(uid: nil, image: "127.0.0.1:5000/podstart-test/reader:latest", beginUnixNs: T.ms(120),
                                      endUnixNs: T.ms(399), source: .containerd)), at: 6)
        let trace = try Self.trace(inputs)
        let pull = try #require(trace.phases.first { $0.name == .pull })
        #expect(pull.start == T.ms(120) && pull.end == T.ms(399))
    }

    /// containerd's event names a container the kubelet created by image id; the listing names
    /// its image. Whichever comes first, the pull logged under the image's name is the start's.
    @Test func aContainerFirstNamedByItsImageIDStillGetsThePullOfItsName() throws {
        let id = "sha256:" + String(repeating: "d", count: 64)
        let byID = CorrelatorInput.containerCreated(ContainerCreation(
            uid: "u1", containerID: Self.containerID, name: "main", image: id, imageDigest: "sha256:d", isInit: false,
            beginUnixNs: T.ms(419), endUnixNs: T.ms(419), source: .containerd))
        for position in [7, 8] {  // before the listing's creation, after it
            var inputs = Self.stream
            inputs.insert(byID, at: position)
            let trace = try Self.trace(inputs)
            let pull = try #require(trace.phases.first { $0.name == .pull }, "no pull when the id came \(position == 7 ? "first" : "second")")
            #expect(pull.end == T.ms(400))
            #expect(trace.containers.first?.image == "127.0.0.1:5000/podstart-test/reader:latest")
        }
        #expect(ImageReference.isImageID(id) && ImageReference.isImageID(String(repeating: "0", count: 64)))
        #expect(!ImageReference.isImageID("127.0.0.1:5000/podstart-test/reader:latest") && !ImageReference.isImageID("busybox"))
    }

    @Test func runcCommandLinesCutByTheKernelStillNameTheirContainer() throws {
        let id = Self.containerID
        for (argv, truncated, expected) in [
            (["runc", "--root", "/run/containerd/runc/k8s.io", "--log", "\(Self.stateDir)/\(id)/log.json", "--log-format", "json", "create",
              "--bundle", "/run/containerd/io.containerd.runt"], true, RuncInvocation(step: .create, containerID: id)),
            (["runc", "--root", "/r", "--log", "\(Self.stateDir)/\(id)/log.json", "--log-format", "json", "start", id], false,
             RuncInvocation(step: .start, containerID: id)),
            (["runc", "--root=/r", "--systemd-cgroup", "start", "ctr-reader"], false, RuncInvocation(step: .start, containerID: "ctr-reader")),
            (["runc", "--root", "/r", "--log", "\(Self.stateDir)/\(id)/log.json", "--log-format", "json", "state", id], false, nil),
            (["runc", "--root", "/r", "--log", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/"], true, nil),
            (["runc", "--root", "/r", "start"], true, nil),
        ] as [([String], Bool, RuncInvocation?)] {
            #expect(RuncInvocation(arguments: argv, truncated: truncated) == expected, "\(argv)")
        }
    }
}
