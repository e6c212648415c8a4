import PodstartCore
import Testing

@Suite("Correlator")
struct CorrelatorTests {
    static let clock = WallClock(offsetNs: 1_700_000_000_000_000_000)
    static let t0: Int64 = 1_700_000_100_000_000_000
    static func ms(_ v: Int64) -> Int64 { t0 + v * 1_000_000 }
    static func mono(_ v: Int64) -> UInt64 { UInt64(ms(v) - clock.offsetNs) }
    static let ns: UInt32 = 4026532999
    static let task = TaskContext(pid: 50, tid: 50, parentPid: 40, namespacePid: 1, mountNamespace: ns, pidNamespace: 3, cgroupID: 1, comm: "app")
    static let runtimeTask = TaskContext(pid: 9, tid: 9, parentPid: 1, namespacePid: 9, mountNamespace: 1, pidNamespace: 1, cgroupID: 1, comm: "containerd")
    static func file(_ ino: UInt64, _ size: UInt64 = 1000) -> FileIdentity {
        FileIdentity(key: FileKey(device: DeviceNumber(rawValue: 40), inode: ino), dataKey: FileKey(device: DeviceNumber(rawValue: 40), inode: ino), sizeBytes: size, mode: 0o100644)
    }

    /// A pod start as the sources report it, in the order they deliver it (logs late).
    static var stream: [CorrelatorInput] {
        [
            .pod(PodSighting(uid: "u1", namespace: "shop", name: "web", createdUnixNs: ms(0), source: .podStatus)),
            .sandbox(SandboxCreation(uid: "u1", sandboxID: "sb", beginUnixNs: ms(100), endUnixNs: ms(180), source: .cri)),
            .kernel(.writeBegin(WriteBeginEvent(timestampNs: mono(250), task: runtimeTask, file: file(900),
                                                path: ResolvedPath(path: "/var/lib/containerd/io.containerd.content.v1.content/ingest/x/data", truncated: false),
                                                isRuntimeProcess: true))),
            .containerCreated(ContainerCreation(uid: "u1", containerID: "c1", name: "web", image: "nginx:1", imageDigest: "sha256:d",
                                                isInit: false, beginUnixNs: ms(1500), endUnixNs: ms(1550), source: .cri)),
            .containerStarted(ContainerStart(containerID: "c1", beginUnixNs: ms(1550), endUnixNs: ms(1600), source: .cri)),
            .kernel(.exec(ExecEvent(timestampNs: mono(1620), task: task, file: file(1), path: ResolvedPath(path: "/bin/app", truncated: false),
                                    filename: "/bin/app", arguments: ["/bin/app"], argumentsTruncated: false, isRuntimeProcess: false, oldPid: 50))),
            .containerMountNamespace(ContainerMountNamespace(containerID: "c1", mountNamespace: ns)),
            .kernel(.open(OpenEvent(timestampNs: mono(1700), task: task, syscall: .openat, result: 3, directoryFD: -100, openFlags: 0,
                                    rawPath: "conf", rawPathTruncated: false, path: ResolvedPath(path: "/etc/conf", truncated: false),
                                    file: file(2, 300), isRuntimeProcess: false))),
            .pull(ImagePull(uid: nil, image: "nginx:1", beginUnixNs: ms(200), endUnixNs: ms(1450), source: .containerd)),  // log line, late
            .ready(PodReadiness(uid: "u1", atUnixNs: ms(3000), source: .prober)),
            .tick(nowUnixNs: ms(4000)),
        ]
    }

    @Test func aStartBecomesOneTimelineWhosePhasesAddUp() throws {
        var c = Correlator(clock: Self.clock)
        var out: [PodStartTrace] = []
        for (i, input) in Self.stream.enumerated() {
            out += c.ingest(input)
            if i == 3 { c.addAggregates(openCounts: [], writeTotals: [
                WriteTotal(pid: 9, file: Self.file(900).key, mountNamespace: 1, firstNs: Self.mono(250), lastNs: Self.mono(1200),
                           bytes: 5_000_000, writes: 300, isRuntimeProcess: true)]) }
        }
        #expect(out.isEmpty, "ready at 3.0 s, grace 2 s: not yet")
        out += c.ingest(.tick(nowUnixNs: Self.ms(5001)))
        let trace = try #require(out.first)
        #expect(out.count == 1)
        #expect(trace.pod == .init(namespace: "shop", name: "web", uid: "u1"))
        #expect(trace.outcome == .ready)
        #expect(trace.e2eNanoseconds == 3_000_000_000)
        let top = trace.phases.filter { $0.parent == nil }
        #expect(top.reduce(0) { $0 + $1.nanoseconds } == trace.e2eNanoseconds)
        func span(_ p: PhaseName) -> PhaseSpan? { trace.phases.first { $0.name == p } }
        #expect(span(.sandbox)?.start == Self.ms(100) && span(.sandbox)?.end == Self.ms(180))
        #expect(span(.pull)?.start == Self.ms(200) && span(.pull)?.end == Self.ms(1450))
        #expect(span(.start)?.end == Self.ms(1620) && span(.start)?.source == .kernel, "start ends at the first exec")
        #expect(span(.probe)?.start == Self.ms(1620) && span(.probe)?.end == Self.ms(3000))
        #expect(span(.download)?.start == Self.ms(250))
        #expect(trace.containers.first?.accesses.map(\.path) == ["/bin/app", "/etc/conf"])
        #expect(trace.containers.first?.accesses.last?.firstAccessMs == 80)
        #expect(c.openStarts == 0)
    }

    /// The runtime deleted an ingest file and the file system gave its inode number to a layer
    /// file it unpacked next: the two are told apart by the inode's generation, so the pull is
    /// split into download and decompress (issue #19), not all download.
    @Test func anUnpackedFileOnAReusedInodeNumberIsDecompress() throws {
        var c = Correlator(clock: Self.clock)
        var out: [PodStartTrace] = []
        let ingest = WriteBeginEvent(timestampNs: Self.mono(250), task: Self.runtimeTask, file: Self.file(900),
                                     path: ResolvedPath(path: "/var/lib/containerd/io.containerd.content.v1.content/ingest/x/updatedat", truncated: false),
                                     isRuntimeProcess: true, fileGeneration: 11)
        var unpack = ingest
        unpack.timestampNs = Self.mono(900)
        unpack.path = ResolvedPath(path: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/7/fs/bin/app", truncated: false)
        unpack.fileGeneration = 12
        var stream = Self.stream
        stream[2] = .kernel(.writeBegin(ingest))
        stream.insert(.kernel(.writeBegin(unpack)), at: 3)
        for (i, input) in stream.enumerated() {
            out += c.ingest(input)
            if i == 4 { c.addAggregates(openCounts: [], writeTotals: [
                WriteTotal(pid: 9, file: Self.file(900).key, fileGeneration: 11, mountNamespace: 1, firstNs: Self.mono(250),
                           lastNs: Self.mono(800), bytes: 5_000_000, writes: 300, isRuntimeProcess: true),
                WriteTotal(pid: 9, file: Self.file(900).key, fileGeneration: 12, mountNamespace: 1, firstNs: Self.mono(900),
                           lastNs: Self.mono(1400), bytes: 9_000_000, writes: 500, isRuntimeProcess: true)]) }
        }
        out += c.ingest(.tick(nowUnixNs: Self.ms(5001)))
        let trace = try #require(out.first)
        func span(_ p: PhaseName) -> PhaseSpan? { trace.phases.first { $0.name == p } }
        #expect(span(.download)?.start == Self.ms(250))
        #expect(span(.decompress)?.start == Self.ms(900), "\(trace.phases)")
    }

    /// Sources are independent streams (kernel ring buffer, CRI, pod status, logs): each is in
    /// order, but they interleave any way. Every interleaving must give the same timeline.
    @Test func anyInterleavingOfTheSourcesGivesTheSameTimeline() throws {
        var reference = Correlator(clock: Self.clock)
        var expected: [PodStartTrace] = []
        for input in Self.stream { expected += reference.ingest(input) }
        expected += reference.ingest(.tick(nowUnixNs: Self.ms(6000)))
        #expect(expected.count == 1)
        let inputs = Array(Self.stream.dropLast())
        func group(_ i: CorrelatorInput) -> String {
            switch i {
            case .kernel: "kernel"
            case .sandbox, .containerCreated, .containerStarted, .containerMountNamespace, .containerExited: "cri"
            case .pull: "containerd-log"
            default: "status"
            }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var queues = Dictionary(grouping: inputs, by: group)
            var merged: [CorrelatorInput] = []
            while let key = queues.filter({ !$0.value.isEmpty }).keys.randomElement(using: &rng) {
                merged.append(queues[key]!.removeFirst())
            }
            var c = Correlator(clock: Self.clock)
            var got: [PodStartTrace] = []
            for input in merged { got += c.ingest(input) }
            got += c.ingest(.tick(nowUnixNs: Self.ms(6000)))
            #expect(got.count == 1)
            #expect(got.first?.phases == expected.first?.phases)
        }
    }

    /// On a busy node almost every input is a kernel record. They move the clock, so a start
    /// whose grace ends between two of them is closed by the later one; and an exec, which can
    /// make a start ready earlier than the runtime said, is looked at at once.
    @Test func kernelRecordsAloneCloseAStartAtItsDeadline() throws {
        var inputs = Self.stream.dropLast()
        var c = Correlator(clock: Self.clock)
        for input in inputs { #expect(c.ingest(input).isEmpty) }
        func open(_ at: Int64) -> CorrelatorInput {
            .kernel(.open(OpenEvent(timestampNs: Self.mono(at), task: Self.task, syscall: .openat, result: 3, directoryFD: -100,
                                    openFlags: 0, rawPath: "x", rawPathTruncated: false, path: ResolvedPath(path: "/x", truncated: false),
                                    file: Self.file(3), isRuntimeProcess: false)))
        }
        #expect(c.ingest(open(4000)).isEmpty)
        #expect(c.ingest(open(4999)).isEmpty, "ready at 3.0 s, grace 2 s: not yet")
        #expect(c.ingest(open(5001)).first?.e2eNanoseconds == 3_000_000_000)

        // ready when running: the listing saw the start late (ends 4.0 s), the exec at 1.8 s says better
        var config = Correlator.Configuration()
        config.readyWhenRunning = true
        var r = Correlator(configuration: config, clock: Self.clock)
        inputs = [
            .pod(PodSighting(uid: "u1", namespace: "shop", name: "web", createdUnixNs: Self.ms(0), source: .cri)),
            .containerCreated(ContainerCreation(uid: "u1", containerID: "c1", name: "web", image: "nginx:1", imageDigest: nil,
                                                isInit: false, beginUnixNs: Self.ms(1500), endUnixNs: Self.ms(1550), source: .cri)),
            .containerStarted(ContainerStart(containerID: "c1", beginUnixNs: Self.ms(1550), endUnixNs: Self.ms(4000), source: .derived)),
            .containerMountNamespace(ContainerMountNamespace(containerID: "c1", mountNamespace: Self.ns)),
        ]
        for input in inputs { #expect(r.ingest(input).isEmpty) }
        #expect(r.ingest(open(1700)).isEmpty)
        #expect(r.ingest(.kernel(.exec(ExecEvent(timestampNs: Self.mono(1800), task: Self.task, file: Self.file(1),
                                                 path: ResolvedPath(path: "/bin/app", truncated: false), filename: "/bin/app",
                                                 arguments: ["/bin/app"], argumentsTruncated: false, isRuntimeProcess: false,
                                                 oldPid: 50)))).isEmpty)
        #expect(r.ingest(open(3700)).isEmpty)
        let closed = r.ingest(open(3900))
        #expect(closed.first?.e2eNanoseconds == 1_800_000_000, "due 2 s after the exec, not after the listing's 4.0 s")
    }

    /// containerd logs PullImage with the image as the pod spec wrote it; the runtime names the
    /// container's image in full. Both spellings are one image.
    @Test func aPullLoggedUnderAShortImageNameIsTheContainersPull() throws {
        #expect(ImageReference.canonical("nginx") == "docker.io/library/nginx:latest")
        #expect(ImageReference.canonical("nginx:1") == ImageReference.canonical("docker.io/library/nginx:1"))
        #expect(ImageReference.canonical("127.0.0.1:5000/x/y") == "127.0.0.1:5000/x/y:latest")
        #expect(ImageReference.canonical("nginx:1") != ImageReference.canonical("nginx:2"))
        #expect(ImageReference.canonical("sha256:0123") == "sha256:0123", "an image id stays an id")
        #expect(ImageReference.canonical("Not A Ref") == "Not A Ref")
        for (logged, created) in [("nginx:1", "docker.io/library/nginx:1"), ("docker.io/library/nginx:1", "nginx:1")] {
            var c = Correlator(clock: Self.clock)
            var out: [PodStartTrace] = []
            for input in Self.stream {
                switch input {
                case .pull(var pull):
                    pull.uid = nil
                    pull.image = logged
                    out += c.ingest(.pull(pull))
                case .containerCreated(var creation):
                    creation.image = created
                    out += c.ingest(.containerCreated(creation))
                default: out += c.ingest(input)
                }
            }
            out += c.ingest(.tick(nowUnixNs: Self.ms(6000)))
            let pull = try #require(out.first?.phases.first { $0.name == .pull }, "\(logged) vs \(created)")
            #expect(pull.start == Self.ms(200) && pull.end == Self.ms(1450))
        }
    }

    @Test func aPodThatNeverBecomesReadyIsClosedAsFailedWithTheReason() throws {
        var config = Correlator.Configuration()
        config.startTimeoutNs = 10_000_000_000
        var c = Correlator(configuration: config, clock: Self.clock)
        _ = c.ingest(.pod(PodSighting(uid: "u2", namespace: "ns", name: "stuck", createdUnixNs: Self.ms(0), source: .podStatus)))
        _ = c.ingest(.sandbox(SandboxCreation(uid: "u2", sandboxID: "s", beginUnixNs: Self.ms(10), endUnixNs: Self.ms(90), source: .cri)))
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(9_000))).isEmpty)
        let out = c.ingest(.tick(nowUnixNs: Self.ms(10_001)))
        #expect(out.first?.outcome == .failed)
        #expect(out.first?.failureReason?.contains("not ready within 10 s") == true)
        #expect(out.first?.ready == nil)
    }

    @Test func preexistingPodsAndRestartsAreNotStarts() {
        var c = Correlator(clock: Self.clock)
        _ = c.ingest(.preexisting(uid: "old"))
        _ = c.ingest(.containerCreated(ContainerCreation(uid: "old", containerID: "x", name: "a", image: "i", imageDigest: nil, isInit: false,
                                                         beginUnixNs: Self.ms(0), endUnixNs: Self.ms(1), source: .cri)))
        _ = c.ingest(.ready(PodReadiness(uid: "old", atUnixNs: Self.ms(2), source: .podStatus)))
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(100_000))).isEmpty)
        #expect(c.openStarts == 0)

        var reported: [PodStartTrace] = []
        for input in Self.stream { reported += c.ingest(input) }
        reported += c.ingest(.tick(nowUnixNs: Self.ms(6000)))
        #expect(reported.count == 1)
        // the container restarts inside the running pod: no second start
        _ = c.ingest(.containerCreated(ContainerCreation(uid: "u1", containerID: "c1-restart", name: "web", image: "nginx:1", imageDigest: nil,
                                                         isInit: false, beginUnixNs: Self.ms(7000), endUnixNs: Self.ms(7050), source: .cri)))
        _ = c.ingest(.ready(PodReadiness(uid: "u1", atUnixNs: Self.ms(7100), source: .prober)))
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(20_000))).isEmpty)
    }
}
