import Foundation
import NIOCore
import PodstartCore
import Testing
@testable import KubeletSources

/// Pod status and events: the recorded samples, and the same samples served by a local HTTPS
/// server as a kubelet (/metrics, /pods) and an API server (list + watch) would serve them.
@Suite struct KubeStatusTests {
    static func samplePod() throws -> KubeAPI.Pod {
        try JSONDecoder().decode(KubeAPI.Pod.self, from: try Samples.data("pod-status-sample.json"))
    }

    static func sampleEvents() throws -> KubeAPI.EventList {
        try JSONDecoder().decode(KubeAPI.EventList.self, from: try Samples.data("kubelet-events-sample.json"))
    }

    static func t(_ s: String) -> KubeletTimestamp { GoTime.parseRFC3339(s)! }

    @Test func sampleStatusAndEventsGiveTheScheduleAndProbePhases() throws {
        let tl = PodStatusTimeline(pod: try Self.samplePod(), events: try Self.sampleEvents().items)
        #expect(tl.pod == "shop/web-7d9f8c6b5-x2kqz")
        #expect(tl.uid == "3f0c2a7e-5b1d-4c3e-9a8f-1d2e3f4a5b6c")
        #expect(tl.nodeName == "ip-10-0-12-34.ec2.internal")
        #expect(tl.created == Self.t("2024-11-29T16:13:10Z"))
        #expect(tl.scheduled == Self.t("2024-11-29T16:13:10Z"))
        #expect(tl.readyToStartContainers == Self.t("2024-11-29T16:13:10Z"))
        #expect(tl.initialized == Self.t("2024-11-29T16:13:13Z"))
        #expect(tl.containersReady == Self.t("2024-11-29T16:13:22Z"))
        #expect(tl.ready == Self.t("2024-11-29T16:13:22Z"))
        #expect(tl.allContainersRunning == Self.t("2024-11-29T16:13:17Z"))
        #expect(tl.scheduleNanoseconds == 0)
        #expect(tl.probeNanoseconds == 5_000_000_000)
        #expect(tl.initContainers == [.init(name: "init-config", started: Self.t("2024-11-29T16:13:12Z"), finished: Self.t("2024-11-29T16:13:13Z"))])
        #expect(tl.initNanoseconds == 1_000_000_000)
        #expect(tl.pulls == [
            PulledEvent(container: "init-config", image: "busybox:1.36", pullNanoseconds: 1_326_000_000, includingWaitingNanoseconds: 1_327_000_000, sizeBytes: 2_152_284, cached: false),
            PulledEvent(container: "web", image: "nginx:1.27.3", pullNanoseconds: 3_360_000_000, includingWaitingNanoseconds: 3_360_000_000, sizeBytes: 72_099_400, cached: false),
        ])
        #expect(tl.failedPulls == 0)
    }

    /// Log, events and status describe one pod start; their figures must agree.
    @Test func statusEventsAndLogAgree() throws {
        let tl = PodStatusTimeline(pod: try Self.samplePod(), events: try Self.sampleEvents().items)
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        scanner.feed(try Samples.text("kubelet-journal-sample.log"))
        scanner.finish()
        let web = try #require(reports.first { $0.pod == tl.pod })
        #expect(web.observation.created == tl.created)
        // containerd's pulls and the kubelet's Pulled events: same images, same sizes, same
        // durations to the millisecond the event keeps.
        #expect(web.pulls.map(\.image) == tl.pulls.map(\.image))
        #expect(web.pulls.map(\.sizeBytes) == tl.pulls.map(\.sizeBytes))
        for (c, e) in zip(web.pulls, tl.pulls) {
            #expect(abs(c.end.goSub(c.begin) - e.includingWaitingNanoseconds!) < 5_000_000)
        }
        // The container's startedAt (whole seconds) is the second in which the kubelet saw it running.
        let running = try #require(web.observation.observedRunning)
        #expect(running.nanosecondsSinceEpoch / 1_000_000_000 == tl.allContainersRunning!.nanosecondsSinceEpoch / 1_000_000_000)
        // V4's init total (from the same status fields, with sub-second precision) rounds to the status' 1 s.
        let v4 = try Samples.text("kubelet-journal-sample-v1.36.log").split(separator: "\n").compactMap { try? StartupLineParser.parse(String($0))?.get() }.first!
        #expect(abs(v4.totalInitContainerRuntimeNanoseconds! - tl.initNanoseconds!) < 1_000_000_000)
    }

    @Test(arguments: [
        ("Successfully pulled image \"nginx\" in 49.18401355s", PulledEvent(image: "nginx", pullNanoseconds: 49_184_013_550, cached: false)),
        ("Successfully pulled image \"a:1\" in 890ms (27.88s including waiting). Image size: 5 bytes.", PulledEvent(image: "a:1", pullNanoseconds: 890_000_000, includingWaitingNanoseconds: 27_880_000_000, sizeBytes: 5, cached: false)),
        ("Container image \"busybox:1.36\" already present on machine", PulledEvent(image: "busybox:1.36", cached: true)),
        ("Container image \"busybox:1.36\" already present on machine and can be accessed by the pod", PulledEvent(image: "busybox:1.36", cached: true)),
    ])
    func pulledEventWordings(message: String, expected: PulledEvent) {
        #expect(PulledEvent.parse(message: message) == expected)
    }

    @Test func trackerJoinsEventsToPodsFromTheWatch() throws {
        var tracker = PodTimelineTracker()
        for e in try Self.sampleEvents().items { tracker.update(event: e) }
        let tl = tracker.update(pod: try Self.samplePod())
        #expect(tl.pulls.count == 2)
        #expect(tracker.timeline(uid: "3f0c2a7e-5b1d-4c3e-9a8f-1d2e3f4a5b6c")?.probeNanoseconds == 5_000_000_000)
    }
}

