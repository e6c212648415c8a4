import PodstartCore
import Testing

@Suite("CorrelatorInputCodec")
struct CorrelatorInputCodecTests {
    static let task = TaskContext(pid: 4_000_000_000, tid: 7, parentPid: 1, namespacePid: 1, mountNamespace: 4026532999,
                                  pidNamespace: 4026532998, cgroupID: UInt64.max, comm: "a \"quoted\"\tcomm\u{1}")
    static let file = FileIdentity(key: FileKey(device: DeviceNumber(major: 0, minor: 63), inode: 12),
                                   dataKey: FileKey(device: DeviceNumber(major: 8, minor: 1), inode: UInt64.max),
                                   sizeBytes: 1 << 40, mode: 0o100755)
    static let startup = KubeletPodStartupObservation(
        namespace: "shop", name: "web-0", variant: .v3, sloSecondsText: "1.234567891", sloSeconds: 1.234567891,
        e2eNanoseconds: 2_345_678_901,
        created: KubeletTimestamp(nanosecondsSinceEpoch: 1_700_000_000_000_000_000),
        firstStartedPulling: KubeletTimestamp(nanosecondsSinceEpoch: 1_700_000_000_100_000_001, monotonicNanoseconds: 99),
        lastFinishedPulling: nil,
        observedRunning: KubeletTimestamp(nanosecondsSinceEpoch: -5, monotonicNanoseconds: Int64.min),
        watchObservedRunning: KubeletTimestamp(nanosecondsSinceEpoch: Int64.max, monotonicNanoseconds: nil),
        totalImagesPullingNanoseconds: 7, totalInitContainerRuntimeNanoseconds: nil, isStatefulPod: false,
        imagePullSessionsCount: 3, imagePullSessionsStartsCount: 0)

    /// Every case, with the kernel kinds and the extremes of their fields.
    static var everyCase: [CorrelatorInput] {
        var startup = Self.startup
        startup.kubeletUTCOffsetSeconds = -3600
        var v4 = Self.startup
        v4.variant = .v4
        v4.sloSeconds = 1e-7
        v4.sloSecondsText = "1e-07"
        v4.created = nil
        return [
            .pod(PodSighting(uid: "u1", namespace: "shop", name: "web-0", createdUnixNs: 1_700_000_000_000_000_000, source: .podStatus)),
            .pod(PodSighting(uid: "ü—\u{0}", namespace: "", name: "", createdUnixNs: nil, source: .kubeletLog)),
            .scheduled(PodScheduling(uid: "u1", atUnixNs: -1, source: .events)),
            .sandbox(SandboxCreation(uid: "u1", sandboxID: "sb", beginUnixNs: 1, endUnixNs: Int64.max, source: .cri)),
            .pull(ImagePull(uid: nil, image: "127.0.0.1:5000/x:latest", beginUnixNs: 3, endUnixNs: 4, source: .containerd)),
            .pull(ImagePull(uid: "u1", image: "y", beginUnixNs: 3, endUnixNs: 4, source: .derived)),
            .containerCreated(ContainerCreation(uid: "u1", containerID: "c1", name: "web", image: "nginx:1", imageDigest: "sha256:d", isInit: true,
                                                beginUnixNs: 5, endUnixNs: 6, source: .cri)),
            .containerCreated(ContainerCreation(uid: "u1", containerID: "c2", name: "", image: "", imageDigest: nil, isInit: false,
                                                beginUnixNs: 5, endUnixNs: 6, source: .containerd)),
            .containerStarted(ContainerStart(containerID: "c1", beginUnixNs: 7, endUnixNs: 8, source: .kernel)),
            .containerMountNamespace(ContainerMountNamespace(containerID: "c1", mountNamespace: UInt32.max)),
            .containerExited(ContainerExit(containerID: "c1", atUnixNs: 9, exitCode: Int32.min)),
            .ready(PodReadiness(uid: "u1", atUnixNs: 10, source: .prober)),
            .failed(PodFailure(uid: "u1", atUnixNs: 11, reason: "image \"x\" not found\nretrying")),
            .preexisting(uid: "u0"),
            .runtimeContainer(RuntimeContainer(uid: "c9", containerdNamespace: "default", containerID: "c9")),
            .containerPid(ContainerInitProcess(containerID: "c1", pid: 77)),
            .kubeletStartup(startup),
            .kubeletStartup(v4),
            .kernel(.exec(ExecEvent(timestampNs: UInt64.max, task: task, file: file, path: ResolvedPath(path: "/bin/sh", truncated: true),
                                    filename: "sh", arguments: ["sh", "-c", "echo ☃"], argumentsTruncated: true, isRuntimeProcess: true, oldPid: 3))),
            .kernel(.fork(ForkEvent(timestampNs: 1, parent: task, childPid: 8, isRuntimeProcess: false))),
            .kernel(.exit(ExitEvent(timestampNs: 2, task: task, waitStatus: -1, isRuntimeProcess: true))),
            .kernel(.open(OpenEvent(timestampNs: 3, task: task, syscall: .openat2, result: -2, directoryFD: -100, openFlags: UInt32.max,
                                    rawPath: "../x", rawPathTruncated: true, path: nil, file: nil, isRuntimeProcess: false))),
            .kernel(.open(OpenEvent(timestampNs: 3, task: task, syscall: .open, result: 3, directoryFD: 5, openFlags: 0,
                                    rawPath: "x", rawPathTruncated: false, path: ResolvedPath(path: "/x", truncated: false), file: file,
                                    isRuntimeProcess: false))),
            .kernel(.readRange(ReadRangeEvent(timestampNs: 4, mountNamespace: 4026532999, file: file.dataKey, firstPage: 0,
                                              pageCount: UInt64.max, firstAccessNs: 3, pid: 50, source: .fill))),
            .kernel(.readRange(ReadRangeEvent(timestampNs: 4, mountNamespace: 1, file: file.key, firstPage: 17, pageCount: 1,
                                              firstAccessNs: 3, pid: 50, source: .access))),
            .kernel(.blockIO(BlockIOEvent(timestampNs: 5, device: DeviceNumber(major: 259, minor: 0), mountNamespace: nil, pid: 0,
                                          comm: "kworker/0:1", operation: .write, sector: 123, bytes: UInt32.max, error: -5,
                                          issueNs: 4, latencyNs: 1))),
            .kernel(.blockIO(BlockIOEvent(timestampNs: 5, device: DeviceNumber(rawValue: 0), mountNamespace: 7, pid: 1,
                                          comm: "", operation: .other, sector: 0, bytes: 0, error: 0, issueNs: 0, latencyNs: 0))),
            .kernel(.writeBegin(WriteBeginEvent(timestampNs: 6, task: task, file: file,
                                                path: ResolvedPath(path: "/var/lib/containerd/ingest/data", truncated: false),
                                                isRuntimeProcess: true, fileGeneration: UInt32.max))),
            .kernel(.fuseRequest(FuseRequestEvent(timestampNs: UInt64.max, task: task, sendNs: 0, unique: UInt64.max,
                                                  connection: DeviceNumber(major: 0, minor: 61), opcode: 15, requestBytes: 80,
                                                  replyBytes: UInt32.max, error: -5, file: file.dataKey))),
            .kernel(.fuseRequest(FuseRequestEvent(timestampNs: 7, task: task, sendNs: 8, unique: 1, connection: DeviceNumber(rawValue: 0),
                                                  opcode: 1, requestBytes: 0, replyBytes: 0, error: 0, file: nil))),
            .aggregates(KernelAggregates(openCounts: [], writeTotals: [])),
            .aggregates(KernelAggregates(openCounts: [OpenCount(mountNamespace: 9, file: file.key, pathHash: nil, count: 3, firstNs: 1),
                                                      OpenCount(mountNamespace: 9, file: nil, pathHash: UInt64.max, count: 1, firstNs: 2)],
                                         writeTotals: [WriteTotal(pid: 9, file: file.dataKey, fileGeneration: 7, mountNamespace: 1, firstNs: 1, lastNs: 2, bytes: 3, writes: 4,
                                                                  isRuntimeProcess: true)])),
            .tick(nowUnixNs: Int64.min),
        ]
    }

    @Test func everyCaseRoundTripsExactly() throws {
        for input in Self.everyCase {
            let line = CorrelatorInputCodec.line(input)
            #expect(!line.contains("\n"), "one line per input: \(line)")
            let back = try CorrelatorInputCodec.decode(JSON.parse(line))
            #expect(back == input, "\(line)")
        }
    }

    @Test func aRecordingRoundTripsWithItsClock() {
        let clock = WallClock(offsetNs: 1_763_000_000_123_456_789)
        let text = ([CorrelatorInputCodec.header(clock: clock).rendered()] + Self.everyCase.map(CorrelatorInputCodec.line))
            .joined(separator: "\n") + "\n"
        let recording = CorrelatorInputCodec.read(text)
        #expect(recording.problems.isEmpty, "\(recording.problems)")
        #expect(recording.version == 1)
        #expect(recording.clock == clock)
        #expect(recording.inputs == Self.everyCase)
    }

    @Test func malformedLinesAreCountedAndNamedAndTheRestIsKept() {
        let good = Self.everyCase.map(CorrelatorInputCodec.line)
        let lines = [
            #"{"podstartInputs":1,"clockOffsetNs":42}"#,
            good[0],
            "{not json",
            #"["input","pod"]"#,
            #"{"uid":"u1"}"#,
            #"{"input":"teleport","uid":"u1"}"#,
            #"{"input":"ready","uid":"u1","at":"soon","source":"prober"}"#,
            #"{"input":"ready","uid":"u1","at":5,"source":"psychic"}"#,
            #"{"input":"containerMountNamespace","containerId":"c","mntns":4294967296}"#,
            #"{"input":"kernel","kind":"exec","ts":1}"#,
            #"{"input":"kernel","kind":"teleport","ts":1}"#,
            #"{"input":"kernel","kind":"read","ts":1,"mntns":1,"file":{"dev":1,"ino":-3},"firstPage":0,"pageCount":1,"firstAccessNs":0,"pid":1,"source":"fill"}"#,
            #"{"input":"aggregates","openCounts":[{"mntns":1}],"writeTotals":[]}"#,
            "",
            "   ",
            String(repeating: "[", count: 10_000),
            good[1],
            #"{"podstartInputs":2,"clockOffsetNs":42}"#,
            #"{"input":"tick","now":18446744073709551615}"#,
            good[2],
        ]
        let recording = CorrelatorInputCodec.read(lines.joined(separator: "\n"))
        #expect(recording.inputs == Array(Self.everyCase[0..<3]))
        #expect(recording.clock == WallClock(offsetNs: 42))
        let byLine = Dictionary(uniqueKeysWithValues: recording.problems.map { ($0.line, $0.reason) })
        #expect(byLine.keys.sorted() == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 18, 19])
        #expect(byLine[3]?.hasPrefix("not JSON") == true)
        #expect(byLine[4] == "line: not an object")
        #expect(byLine[5] == "input: missing")
        #expect(byLine[6] == "input: unknown kind 'teleport'")
        #expect(byLine[7] == "at: not an integer in the Int64 range")
        #expect(byLine[8] == "source: unknown source 'psychic'")
        #expect(byLine[9] == "mntns: out of the UInt32 range")
        #expect(byLine[10] == "task: missing")
        #expect(byLine[11] == "kind: unknown kernel record kind 'teleport'")
        #expect(byLine[12] == "file.ino: not an unsigned 64-bit integer")
        #expect(byLine[13] == "openCounts[0].count: missing")
        #expect(byLine[16]?.contains("nested too deeply") == true)
        #expect(byLine[18]?.hasPrefix("header: unsupported version 2") == true)
        #expect(byLine[19] == "now: not an integer in the Int64 range")
        #expect(recording.skippedByReason["input: unknown kind 'teleport'"] == 1)
    }
}
