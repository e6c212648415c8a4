import PodstartCore
import Testing

/// The pod's own record (API server watch, the kubelet's /pods) in the correlator, with the times
/// of the real node in reference/real-cluster-1.28: the API's whole seconds
/// (api-pods-final.json), and as the instants the records reached the node the kubelet's own
/// times from its log (`SyncLoop ADD`, "Status for pod updated successfully").
@Suite("Correlator: pod records")
struct CorrelatorPodRecordTests {
    static let clock = WallClock(offsetNs: 1_700_000_000_000_000_000)
    static func t(_ text: String) -> Int64 { Timestamp.parseRFC3339(text)! }

    static func report(_ uid: String, _ name: String, created: String, scheduled: String?, probe: Bool?,
                       inits: [PodStatusReport.InitContainerRun] = [], running: String? = nil, ready: String? = nil,
                       observed: String, initialList: Bool = false) -> CorrelatorInput {
        .podStatus(PodStatusReport(uid: uid, namespace: "default", name: name, createdUnixNs: t(created), scheduledUnixNs: scheduled.map(t),
                                   hasReadinessProbe: probe, initContainers: inits, allRunningUnixNs: running.map(t), readyUnixNs: ready.map(t),
                                   observedUnixNs: t(observed), fromInitialList: initialList, source: .podStatus))
    }

    static func run(_ inputs: [CorrelatorInput]) -> [PodStartTrace] {
        var c = Correlator(clock: clock)
        return inputs.flatMap { c.ingest($0) } + c.flush()
    }

    @Test func aPodWithoutAReadinessProbeGetsNoProbeButItsReadyReportAndASubSecondCreation() throws {
        // pod-a-reader: created 03:01:08 with its node name, Ready written at 03:01:09.830509
        let out = Self.run([
            Self.report("a", "pod-a-reader", created: "2026-12-06T03:01:08Z", scheduled: "2026-12-06T03:01:08Z", probe: false,
                        observed: "2026-12-06T03:01:08.826630Z"),
            Self.report("a", "pod-a-reader", created: "2026-12-06T03:01:08Z", scheduled: "2026-12-06T03:01:08Z", probe: false,
                        running: "2026-12-06T03:01:09Z", ready: "2026-12-06T03:01:09Z", observed: "2026-12-06T03:01:09.830509Z"),
        ])
        let trace = try #require(out.first)
        #expect(trace.created == Self.t("2026-12-06T03:01:08.826630Z"), "the first node instant inside the creation second")
        #expect(trace.ready == Self.t("2026-12-06T03:01:09.830509Z"), "the delivery of the Ready write, inside its second")
        #expect(!trace.phases.contains { $0.name == .probe }, "no readiness probe: no probe phase")
        let report = try #require(trace.phases.first { $0.name == .readyReport })
        #expect(report.start == Self.t("2026-12-06T03:01:09Z") && report.end == trace.ready)
        let schedule = try #require(trace.phases.first { $0.name == .schedule }, "present, and zero for a pod created with its node")
        #expect(schedule.nanoseconds == 0 && schedule.start == trace.created)
        #expect(trace.e2eNanoseconds == trace.phases.filter { $0.parent == nil }.reduce(0) { $0 + $1.nanoseconds })
    }

    @Test func aPodWithAReadinessProbeHasAProbePhaseToItsReadyWrite() throws {
        // pod-b-slowready: running at 03:01:36, Ready written at 03:01:38.241480
        let out = Self.run([
            Self.report("b", "pod-b-slowready", created: "2026-12-06T03:01:36Z", scheduled: "2026-12-06T03:01:36Z", probe: true,
                        observed: "2026-12-06T03:01:36.193420Z"),
            Self.report("b", "pod-b-slowready", created: "2026-12-06T03:01:36Z", scheduled: "2026-12-06T03:01:36Z", probe: true,
                        running: "2026-12-06T03:01:36Z", observed: "2026-12-06T03:01:36.882421Z"),
            Self.report("b", "pod-b-slowready", created: "2026-12-06T03:01:36Z", scheduled: "2026-12-06T03:01:36Z", probe: true,
                        running: "2026-12-06T03:01:36Z", ready: "2026-12-06T03:01:38Z", observed: "2026-12-06T03:01:38.241480Z"),
        ])
        let trace = try #require(out.first)
        let probe = try #require(trace.phases.first { $0.name == .probe })
        #expect(probe.end == Self.t("2026-12-06T03:01:38.241480Z") && probe.source == .podStatus)
        #expect(!trace.phases.contains { $0.name == .readyReport })
        // podstart's own SLI: creationTimestamp → the record showing every container running
        let sli = try #require(trace.sli)
        #expect(sli.createdUnixNs == Self.t("2026-12-06T03:01:36Z"))
        #expect(sli.watchObservedRunningUnixNs == Self.t("2026-12-06T03:01:36.882421Z") && sli.source == .podStatus)
    }

    @Test func withTheKubeletsLogAStartWaitsForItsLateStartupLine() throws {
        // pod-a: Ready at 03:01:09.83, the kubelet's line at 03:01:36.19 (its next pod watch event)
        var configuration = Correlator.Configuration()
        configuration.kubeletLineWaitNs = 60_000_000_000
        var c = Correlator(configuration: configuration, clock: Self.clock)
        var out: [PodStartTrace] = []
        for input in [
            Self.report("a", "pod-a-reader", created: "2026-12-06T03:01:08Z", scheduled: "2026-12-06T03:01:08Z", probe: false,
                        running: "2026-12-06T03:01:09Z", ready: "2026-12-06T03:01:09Z", observed: "2026-12-06T03:01:09.830509Z"),
            .tick(nowUnixNs: Self.t("2026-12-06T03:01:30Z")),
        ] { out += c.ingest(input) }
        #expect(out.isEmpty, "20 s after Ready, still waiting for the kubelet's line")
        let line = KubeletPodStartupObservation(
            namespace: "default", name: "pod-a-reader", variant: .v2, sloSecondsText: "28.062170183", sloSeconds: 28.062170183,
            e2eNanoseconds: 0, created: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:01:08Z")),
            firstStartedPulling: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:01:08.975994255Z")),
            lastFinishedPulling: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:01:09.107001741Z")),
            watchObservedRunning: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:01:36.193177683Z")))
        out += c.ingest(.kubeletStartup(line))
        let trace = try #require(out.first)
        #expect(trace.ready == Self.t("2026-12-06T03:01:09.830509Z"), "ready stays the Ready write")
        #expect(abs((trace.sli?.seconds ?? 0) - 28.062170183) < 1e-6 && trace.sli?.source == .kubeletLog)
        // a pod whose line never comes is recorded when the wait is over, with podstart's own SLI
        var quiet = Correlator(configuration: configuration, clock: Self.clock)
        _ = quiet.ingest(Self.report("q", "quiet", created: "2026-12-06T03:01:08Z", scheduled: "2026-12-06T03:01:08Z", probe: false,
                                     running: "2026-12-06T03:01:09Z", ready: "2026-12-06T03:01:09Z", observed: "2026-12-06T03:01:09.830509Z"))
        let late = quiet.ingest(.tick(nowUnixNs: Self.t("2026-12-06T03:02:10Z")))
        #expect(late.first?.sli?.source == .podStatus)
    }

    @Test func anInitContainerIsItsOwnPhaseOutsideTheKubeletsPullWindow() throws {
        // pod-d-init: the kubelet's first pull → last pull spans the init container's run
        let line = KubeletPodStartupObservation(
            namespace: "default", name: "pod-d-init", variant: .v2, sloSecondsText: "13.017230239", sloSeconds: 13.017230239,
            e2eNanoseconds: 0, created: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:01:58Z")),
            firstStartedPulling: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:01:58.977272302Z")),
            lastFinishedPulling: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:02:00.944463233Z")),
            observedRunning: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:02:01.930612476Z")),
            watchObservedRunning: KubeletTimestamp(nanosecondsSinceEpoch: Self.t("2026-12-06T03:02:12.98442116Z")))
        let initRun = PodStatusReport.InitContainerRun(name: "init", startedUnixNs: Self.t("2026-12-06T03:01:59Z"),
                                                       finishedUnixNs: Self.t("2026-12-06T03:02:00Z"))
        let out = Self.run([
            Self.report("d", "pod-d-init", created: "2026-12-06T03:01:58Z", scheduled: "2026-12-06T03:01:58Z", probe: false,
                        observed: "2026-12-06T03:01:58.846793Z"),
            Self.report("d", "pod-d-init", created: "2026-12-06T03:01:58Z", scheduled: "2026-12-06T03:01:58Z", probe: false,
                        inits: [initRun], running: "2026-12-06T03:02:01Z", ready: "2026-12-06T03:02:01Z", observed: "2026-12-06T03:02:01.930592Z"),
            .kubeletStartup(line),
        ])
        let trace = try #require(out.first)
        let initSpan = try #require(trace.phases.first { $0.name == .`init` })
        #expect(initSpan.start == initRun.startedUnixNs && initSpan.end == initRun.finishedUnixNs)
        for pull in trace.phases where pull.name == .pull {
            #expect(pull.end <= initSpan.start || pull.start >= initSpan.end, "no pull inside the init run")
        }
        #expect(trace.phases.filter { $0.name == .pull }.count == 2, "the window's parts before and after the init run")
        // the SLI is the kubelet's own: 1.28 subtracts the whole window, init run included
        let sli = try #require(trace.sli)
        #expect(sli.source == .kubeletLog && abs(sli.seconds - 13.017230239) < 1e-6)
    }

    /// The runtime saw the init container run from 24.54 s; its status says 24 s (the API's whole
    /// second). The init image's pull ended at 24.41 s, inside that second: the pull keeps its end,
    /// the status's early second does not cut it (trace --pod lost the pull's tail in 2 of 6 runs).
    @Test func aRuntimeMeasuredInitRunCutsPullsWhereItRanNotWhereItsStatusSecondBegins() throws {
        let initID = String(repeating: "1", count: 64)
        func at(_ ms: Int64) -> Int64 { Self.t("2026-12-07T06:04:23Z") + ms * 1_000_000 }
        let initRun = PodStatusReport.InitContainerRun(name: "init", startedUnixNs: Self.t("2026-12-07T06:04:24Z"),
                                                       finishedUnixNs: Self.t("2026-12-07T06:04:25Z"))
        let image = "127.0.0.1:35000/podstart-test/small-files:latest"
        let out = Self.run([
            Self.report("d", "pod-d-init", created: "2026-12-07T06:04:23Z", scheduled: "2026-12-07T06:04:23Z", probe: false,
                        observed: "2026-12-07T06:04:23.682Z"),
            .sandbox(SandboxCreation(uid: "d", sandboxID: "s", beginUnixNs: at(792), endUnixNs: at(921), source: .cri)),
            .pull(ImagePull(uid: nil, image: image, beginUnixNs: at(1414), endUnixNs: at(1414), source: .containerd)),
            .containerCreated(ContainerCreation(uid: "d", containerID: initID, name: "init", image: image, imageDigest: nil, isInit: true,
                                                beginUnixNs: at(1425), endUnixNs: at(1425), source: .cri)),
            .containerStarted(ContainerStart(containerID: initID, beginUnixNs: at(1425), endUnixNs: at(1543), source: .cri)),
            .containerExited(ContainerExit(containerID: initID, atUnixNs: at(2546), exitCode: 0)),
            Self.report("d", "pod-d-init", created: "2026-12-07T06:04:23Z", scheduled: "2026-12-07T06:04:23Z", probe: false,
                        inits: [initRun], running: "2026-12-07T06:04:26Z", ready: "2026-12-07T06:04:26Z", observed: "2026-12-07T06:04:26.4Z"),
        ])
        let trace = try #require(out.first)
        let pull = try #require(trace.phases.first { $0.name == .pull && $0.parent == nil }, "\(trace.phases)")
        #expect(pull.start == at(921) && pull.end == at(1414), "the pull from the sandbox's end to its image stored: \(pull)")
        let initSpan = try #require(trace.phases.first { $0.name == .`init` && $0.parent == nil })
        #expect(initSpan.start == at(1543) && initSpan.end == at(2546), "the runtime's run, not the status's seconds: \(initSpan)")
    }

    @Test func aPodReadyInTheFirstListingStartedBeforeTheAgentAndAFarOffDeliveryGivesOnlyTheSecond() throws {
        let preexisting = Self.run([
            Self.report("x", "old", created: "2026-12-06T02:00:00Z", scheduled: "2026-12-06T02:00:00Z", probe: false,
                        running: "2026-12-06T02:00:01Z", ready: "2026-12-06T02:00:02Z", observed: "2026-12-06T03:00:00Z", initialList: true),
        ])
        #expect(preexisting.isEmpty)
        // a pod the watch shows long after it changed (a relist, a replay): the API's seconds
        let late = try #require(Self.run([
            Self.report("y", "late", created: "2026-12-06T02:00:00Z", scheduled: "2026-12-06T02:00:03Z", probe: true,
                        running: "2026-12-06T02:00:05Z", ready: "2026-12-06T02:00:07Z", observed: "2026-12-06T03:00:00Z"),
        ]).first)
        #expect(late.created == Self.t("2026-12-06T02:00:00Z") && late.ready == Self.t("2026-12-06T02:00:07Z"))
        let schedule = try #require(late.phases.first { $0.name == .schedule })
        #expect(schedule.end == Self.t("2026-12-06T02:00:03Z"), "bound by a scheduler: created → PodScheduled")
        #expect(late.phases.first { $0.name == .probe }?.start == Self.t("2026-12-06T02:00:05Z"))
    }
}
