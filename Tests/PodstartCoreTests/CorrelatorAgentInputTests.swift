import PodstartCore
import Testing

/// The inputs the agent adds to what `podstart trace` feeds: starts without a pod, task pids
/// joined with exec records, the kubelet's startup line, readiness = running, and several
/// sources naming one container.
@Suite("Correlator: agent inputs")
struct CorrelatorAgentInputTests {
    typealias T = CorrelatorTests
    static func exec(pid: UInt32, ns: UInt32, at ms: Int64) -> CorrelatorInput {
        let task = TaskContext(pid: pid, tid: pid, parentPid: 1, namespacePid: 1, mountNamespace: ns, pidNamespace: 3, cgroupID: 1, comm: "app")
        return .kernel(.exec(ExecEvent(timestampNs: T.mono(ms), task: task, file: T.file(1), path: ResolvedPath(path: "/bin/app", truncated: false),
                                       filename: "/bin/app", arguments: ["/bin/app"], argumentsTruncated: false, isRuntimeProcess: false, oldPid: pid)))
    }

    static func run(_ inputs: [CorrelatorInput], configuration: Correlator.Configuration = .init()) -> [PodStartTrace] {
        var c = Correlator(configuration: configuration, clock: T.clock)
        return inputs.flatMap { c.ingest($0) }
    }

    static var readyWhenRunning: Correlator.Configuration {
        var configuration = Correlator.Configuration()
        configuration.readyWhenRunning = true
        return configuration
    }

    @Test func aContainerStartedThroughContainerdIsAStartOfItsOwnWithItsRuntimeIdentity() throws {
        let out = Self.run([
            .runtimeContainer(RuntimeContainer(uid: "web-1", containerdNamespace: "default", containerID: "web-1")),
            .pod(PodSighting(uid: "web-1", namespace: "", name: "", createdUnixNs: T.ms(0), source: .containerd)),
            .containerCreated(ContainerCreation(uid: "web-1", containerID: "web-1", name: "web-1", image: "busybox:1", imageDigest: nil,
                                                isInit: false, beginUnixNs: T.ms(0), endUnixNs: T.ms(20), source: .containerd)),
            .containerStarted(ContainerStart(containerID: "web-1", beginUnixNs: T.ms(20), endUnixNs: T.ms(60), source: .containerd)),
            .containerPid(ContainerInitProcess(containerID: "web-1", pid: 700)),
            Self.exec(pid: 700, ns: 4026532111, at: 55),
            .tick(nowUnixNs: T.ms(3000)),
        ], configuration: Self.readyWhenRunning)
        let trace = try #require(out.first)
        #expect(trace.runtime == .init(containerdNamespace: "default", containerID: "web-1"))
        #expect(trace.storageKey == "web-1")
        #expect(trace.pod.namespace.isEmpty && trace.pod.name.isEmpty)
        #expect(trace.ready == T.ms(55), "ready = the first exec, joined through the task pid")
        #expect(trace.phases.first { $0.name == .start }?.source == .kernel)
        #expect(trace.e2eNanoseconds == trace.phases.filter { $0.parent == nil }.reduce(0) { $0 + $1.nanoseconds })
    }

    @Test func aTaskPidArrivingAfterItsProcessExitedStillGivesTheMountNamespace() throws {
        // exec first (the kernel is faster than the runtime's event), pid later, process long gone
        let out = Self.run([
            .pod(PodSighting(uid: "u", namespace: "ns", name: "p", createdUnixNs: T.ms(0), source: .cri)),
            .containerCreated(ContainerCreation(uid: "u", containerID: "c", name: "main", image: "i", imageDigest: nil,
                                                isInit: false, beginUnixNs: T.ms(10), endUnixNs: T.ms(20), source: .cri)),
            Self.exec(pid: 801, ns: 4026532222, at: 40),
            .containerStarted(ContainerStart(containerID: "c", beginUnixNs: T.ms(20), endUnixNs: T.ms(45), source: .cri)),
            .containerPid(ContainerInitProcess(containerID: "c", pid: 801)),
            .containerExited(ContainerExit(containerID: "c", atUnixNs: T.ms(50), exitCode: 3)),
            .tick(nowUnixNs: T.ms(3000)),
        ], configuration: Self.readyWhenRunning)
        let trace = try #require(out.first)
        #expect(trace.ready == T.ms(40))
        #expect(trace.containers.first?.exitCode == 3)
        let start = try #require(trace.phases.first { $0.name == .start })
        #expect(start.end == T.ms(40) && start.source == .kernel)
    }

    @Test func theKubeletsStartupLineJoinsByNameBeforeOrAfterThePodIsKnown() throws {
        let line = KubeletPodStartupObservation(
            namespace: "shop", name: "web", variant: .v3, sloSecondsText: "1", sloSeconds: 1, e2eNanoseconds: 2_000_000_000,
            created: KubeletTimestamp(nanosecondsSinceEpoch: T.ms(0)),
            firstStartedPulling: KubeletTimestamp(nanosecondsSinceEpoch: T.ms(300)),
            lastFinishedPulling: KubeletTimestamp(nanosecondsSinceEpoch: T.ms(1300)),
            watchObservedRunning: KubeletTimestamp(nanosecondsSinceEpoch: T.ms(2000)))
        let pod: [CorrelatorInput] = [
            .pod(PodSighting(uid: "u", namespace: "shop", name: "web", createdUnixNs: T.ms(0), source: .cri)),
            .containerCreated(ContainerCreation(uid: "u", containerID: "c", name: "web", image: "i", imageDigest: nil,
                                                isInit: false, beginUnixNs: T.ms(1400), endUnixNs: T.ms(1500), source: .cri)),
            .containerStarted(ContainerStart(containerID: "c", beginUnixNs: T.ms(1500), endUnixNs: T.ms(1600), source: .cri)),
        ]
        let ready: CorrelatorInput = .ready(PodReadiness(uid: "u", atUnixNs: T.ms(1700), source: .prober))
        for inputs in [pod + [.kubeletStartup(line), ready], [.kubeletStartup(line)] + pod + [ready]] {
            let out = Self.run(inputs + [.tick(nowUnixNs: T.ms(4500))])
            let trace = try #require(out.first)
            #expect(trace.ready == T.ms(1700), "the line's watchObservedRunningTime is never a readiness time")
            let pull = try #require(trace.phases.first { $0.name == .pull })
            #expect(pull.start == T.ms(300) && pull.end == T.ms(1300) && pull.source == .kubeletLog)
            #expect(trace.phases.first { $0.name == .probe }?.end == T.ms(1700))
            let sli = try #require(trace.sli)
            #expect(sli.source == .kubeletLog && sli.watchObservedRunningUnixNs == T.ms(2000))
            #expect(sli.seconds == 1.0, "(2000 − 0) − (1300 − 300) ms, as the kubelet computes podStartSLOduration")
        }
    }

    /// A startup line whose instants lie centuries apart (1700 and 2200, both times a kubelet
    /// line may hold) used to overflow the correlator's timeout and the trace's end to end
    /// (exit 132 in the agent's --kubelet-log). Now differences saturate and the start is recorded.
    @Test func aStartupLineWithCenturiesBetweenItsInstantsDoesNotTrap() throws {
        let created = Timestamp.parseRFC3339("1700-01-01T00:00:00Z")!, watch = Timestamp.parseRFC3339("2200-01-01T00:00:00Z")!
        let line = KubeletPodStartupObservation(
            namespace: "shop", name: "web", variant: .v3, sloSecondsText: "1", sloSeconds: 1, e2eNanoseconds: .max,
            created: KubeletTimestamp(nanosecondsSinceEpoch: created),
            watchObservedRunning: KubeletTimestamp(nanosecondsSinceEpoch: watch))
        let out = Self.run([
            .pod(PodSighting(uid: "u", namespace: "shop", name: "web", createdUnixNs: nil, source: .cri)),
            .kubeletStartup(line),
            .tick(nowUnixNs: watch.saturatingAdd(60_000_000_000)),
        ])
        let trace = try #require(out.first)
        // the kubelet's line is no readiness source (its watch time can be seconds late): the start
        // ends at the timeout, and the line's instants are kept for the SLI, saturated
        #expect(trace.created == created)
        #expect(trace.e2eNanoseconds > 0)
        #expect(trace.sli.map { $0.seconds.isFinite && $0.seconds >= 0 } ?? true)
    }

    @Test func withoutAReadinessSourceAPodIsNotReadyUnlessConfiguredSo() {
        let inputs: [CorrelatorInput] = [
            .pod(PodSighting(uid: "u", namespace: "ns", name: "p", createdUnixNs: T.ms(0), source: .cri)),
            .containerCreated(ContainerCreation(uid: "u", containerID: "c", name: "main", image: "i", imageDigest: nil,
                                                isInit: false, beginUnixNs: T.ms(10), endUnixNs: T.ms(20), source: .cri)),
            .containerStarted(ContainerStart(containerID: "c", beginUnixNs: T.ms(20), endUnixNs: T.ms(45), source: .cri)),
            .tick(nowUnixNs: T.ms(10_000)),
        ]
        #expect(Self.run(inputs).isEmpty, "the default waits for a readiness source")
        let ready = Self.run(inputs, configuration: Self.readyWhenRunning)
        #expect(ready.first?.ready == T.ms(45), "no exec seen: the runtime's start")
        #expect(ready.first?.phases.contains { $0.name == .probe } == false)
    }

    @Test func aLogsMeasuredCallBeatsAListingsInstantAndAListingNeverOverwritesIt() throws {
        for order in [false, true] {
            let listing: [CorrelatorInput] = [
                .containerCreated(ContainerCreation(uid: "u", containerID: "c", name: "main", image: "reg/app:1", imageDigest: "sha256:x",
                                                    isInit: false, beginUnixNs: T.ms(500), endUnixNs: T.ms(500), source: .cri)),
                .containerStarted(ContainerStart(containerID: "c", beginUnixNs: T.ms(500), endUnixNs: T.ms(700), source: .derived)),
            ]
            let log: [CorrelatorInput] = [
                .containerCreated(ContainerCreation(uid: "u", containerID: "c", name: "main", image: "", imageDigest: nil,
                                                    isInit: false, beginUnixNs: T.ms(400), endUnixNs: T.ms(490), source: .containerd)),
                .containerStarted(ContainerStart(containerID: "c", beginUnixNs: T.ms(520), endUnixNs: T.ms(690), source: .containerd)),
            ]
            let out = Self.run([.pod(PodSighting(uid: "u", namespace: "ns", name: "p", createdUnixNs: T.ms(0), source: .cri))]
                               + (order ? listing + log : log + listing)
                               + [.ready(PodReadiness(uid: "u", atUnixNs: T.ms(800), source: .prober)), .tick(nowUnixNs: T.ms(3000))])
            let trace = try #require(out.first)
            let create = try #require(trace.phases.first { $0.name == .create })
            #expect(create.start == T.ms(400) && create.end == T.ms(490) && create.source == .containerd)
            let start = try #require(trace.phases.first { $0.name == .start })
            #expect(start.start == T.ms(520) && start.end == T.ms(690) && start.source == .containerd)
            #expect(trace.containers.first?.image == "reg/app:1" && trace.containers.first?.imageDigest == "sha256:x",
                    "identity fields from whichever source knew them")
        }
    }
}
