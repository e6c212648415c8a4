import PodstartCore
import Testing

/// #16.7: a start's "not ready within N s" deadline follows CLOCK_MONOTONIC. The wall clock is
/// stepped (a `.clockOffset` input, as the agent's clock sends after measuring the offset again)
/// forward and back by an hour, while monotonic time passes as it does: the timeout fires when
/// the monotonic limit passes, neither an hour early nor an hour late; kernel records after the
/// step are converted with the new offset.
@Suite struct CorrelatorClockStepTests {
    static let clock = WallClock(offsetNs: 1_700_000_000_000_000_000)
    static let t0: Int64 = 1_700_000_100_000_000_000
    static let s: Int64 = 1_000_000_000
    static let hour = 3600 * s
    static func ms(_ v: Int64) -> Int64 { t0 + v * 1_000_000 }

    /// A correlator with a 10 s timeout and a pod opened at t0 (wall = monotonic + offset).
    static func opened() -> Correlator {
        var config = Correlator.Configuration()
        config.startTimeoutNs = 10 * s
        var c = Correlator(configuration: config, clock: clock)
        _ = c.ingest(.pod(PodSighting(uid: "u", namespace: "ns", name: "stuck", createdUnixNs: ms(0), source: .podStatus)))
        _ = c.ingest(.sandbox(SandboxCreation(uid: "u", sandboxID: "sb", beginUnixNs: ms(10), endUnixNs: ms(90), source: .cri)))
        #expect(c.ingest(.tick(nowUnixNs: ms(5_000))).isEmpty)
        return c
    }

    @Test(arguments: [hour, -hour, 30 * 86_400 * s, -s])
    func theTimeoutFiresAtItsMonotonicLimitWhateverTheStep(step: Int64) throws {
        var c = Self.opened()
        // 5 s of monotonic time passed; the wall clock is stepped by `step`
        #expect(c.ingest(.clockOffset(offsetNs: Self.clock.offsetNs + step)).isEmpty)
        #expect(c.clock.offsetNs == Self.clock.offsetNs + step)
        // wall readings now read `step` more for the same monotonic instant
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(5_000) + step)).isEmpty, "closed right at the step")
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(9_999) + step)).isEmpty, "closed before its 10 s of monotonic time")
        let out = c.ingest(.tick(nowUnixNs: Self.ms(10_001) + step))
        let trace = try #require(out.first, "not closed after its 10 s of monotonic time (step \(step))")
        #expect(trace.outcome == .failed)
        #expect(trace.failureReason?.contains("not ready within 10 s") == true)
        // its instants are those read before the step
        #expect(trace.created == Self.ms(0))
        #expect(c.openStarts == 0)
    }

    @Test func withoutTheOffsetInputAStepForwardStillClosesTheStartEarly() {
        // what the re-measured offset prevents: the same ticks, the step unannounced
        var c = Self.opened()
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(5_000) + Self.hour)).count == 1)
    }

    @Test func aStartOpenedAfterAStepTimesOutOnTheNewWallReadings() throws {
        var c = Self.opened()
        _ = c.ingest(.clockOffset(offsetNs: Self.clock.offsetNs - Self.hour))
        let later = Self.ms(6_000) - Self.hour
        _ = c.ingest(.pod(PodSighting(uid: "v", namespace: "ns", name: "late", createdUnixNs: later, source: .podStatus)))
        // the first start (opened before the step) closes at its own limit …
        let first = c.ingest(.tick(nowUnixNs: Self.ms(10_001) - Self.hour))
        #expect(first.map(\.pod.uid) == ["u"])
        // … the second at its own, on the wall clock as stepped
        #expect(c.ingest(.tick(nowUnixNs: later + 9_999_000_000)).isEmpty)
        let second = c.ingest(.tick(nowUnixNs: later + 10_001_000_000))
        #expect(second.map(\.pod.uid) == ["v"])
    }

    @Test func aReadyStartsGraceIsNotStretchedByAStepBack() throws {
        var c = Self.opened()
        _ = c.ingest(.ready(PodReadiness(uid: "u", atUnixNs: Self.ms(6_000), source: .prober)))
        _ = c.ingest(.clockOffset(offsetNs: Self.clock.offsetNs - Self.hour))
        // 2 s grace after ready at 6 s: closed by 8 s of monotonic time, not an hour later
        #expect(c.ingest(.tick(nowUnixNs: Self.ms(7_000) - Self.hour)).isEmpty)
        let out = c.ingest(.tick(nowUnixNs: Self.ms(8_001) - Self.hour))
        #expect(out.first?.outcome == .ready)
        #expect(out.first?.ready == Self.ms(6_000))
    }

    @Test func kernelRecordsAfterAStepAreConvertedWithTheNewOffset() throws {
        var c = Correlator(clock: Self.clock)
        let ns: UInt32 = 4026532999
        let task = TaskContext(pid: 50, tid: 50, parentPid: 40, namespacePid: 1, mountNamespace: ns, pidNamespace: 3, cgroupID: 1, comm: "app")
        let file = FileIdentity(key: FileKey(device: DeviceNumber(rawValue: 40), inode: 1), dataKey: FileKey(device: DeviceNumber(rawValue: 40), inode: 1),
                                sizeBytes: 10, mode: 0o100644)
        _ = c.ingest(.pod(PodSighting(uid: "u", namespace: "ns", name: "web", createdUnixNs: Self.ms(0), source: .podStatus)))
        _ = c.ingest(.containerCreated(ContainerCreation(uid: "u", containerID: "c1", name: "web", image: "app:1", imageDigest: nil,
                                                         isInit: false, beginUnixNs: Self.ms(100), endUnixNs: Self.ms(150), source: .cri)))
        _ = c.ingest(.containerStarted(ContainerStart(containerID: "c1", beginUnixNs: Self.ms(150), endUnixNs: Self.ms(200), source: .cri)))
        _ = c.ingest(.containerMountNamespace(ContainerMountNamespace(containerID: "c1", mountNamespace: ns)))
        // stepped forward 1 h; an exec at monotonic instant "300 ms" reads as 300 ms + 1 h
        _ = c.ingest(.clockOffset(offsetNs: Self.clock.offsetNs + Self.hour))
        let monotonic = UInt64(Self.ms(300) - Self.clock.offsetNs)
        _ = c.ingest(.kernel(.exec(ExecEvent(timestampNs: monotonic, task: task, file: file, path: ResolvedPath(path: "/bin/app", truncated: false),
                                             filename: "/bin/app", arguments: ["/bin/app"], argumentsTruncated: false,
                                             isRuntimeProcess: false, oldPid: 50))))
        _ = c.ingest(.ready(PodReadiness(uid: "u", atUnixNs: Self.ms(400) + Self.hour, source: .prober)))
        let out = c.ingest(.tick(nowUnixNs: Self.ms(3_000) + Self.hour))
        let trace = try #require(out.first)
        #expect(trace.containers.first?.firstExec == Self.ms(300) + Self.hour)
    }

    @Test func theOffsetInputRoundTripsThroughARecording() throws {
        let input = CorrelatorInput.clockOffset(offsetNs: -1_234_567_890_123)
        let line = CorrelatorInputCodec.line(input)
        #expect(line == #"{"input":"clockOffset","offsetNs":-1234567890123}"#)
        let text = CorrelatorInputCodec.header(clock: Self.clock).rendered() + "\n" + line + "\n" + CorrelatorInputCodec.line(.tick(nowUnixNs: 5)) + "\n"
        let recording = CorrelatorInputCodec.read(text)
        #expect(recording.problems.isEmpty)
        #expect(recording.inputs == [input, .tick(nowUnixNs: 5)])
        #expect(CorrelatorInputCodec.read(#"{"input":"clockOffset"}"#).problems.count == 1)
    }
}
