import Foundation
import NIOCore
import PodstartCore
import Testing
@testable import KubeletSources

/// The pod's record as the correlator reads it (`PodStatusReport`) from a recorded pod status, and
/// the kubelet's Pulled event wordings.
@Suite struct KubeStatusTests {
    static func samplePod() throws -> KubeAPI.Pod {
        try JSONDecoder().decode(KubeAPI.Pod.self, from: try Samples.data("pod-status-sample.json"))
    }

    /// The messages of one pod's recorded events of a reason (Foundation's reader: podstart's own
    /// reads them in PodEventLister).
    static func sampleEventMessages(pod: String, reason: String) throws -> [String] {
        let list = try JSONSerialization.jsonObject(with: try Samples.data("kubelet-events-sample.json")) as! [String: Any]
        return (list["items"] as! [[String: Any]]).filter {
            $0["reason"] as? String == reason && ($0["involvedObject"] as? [String: Any])?["name"] as? String == pod
        }.map { $0["message"] as? String ?? "" }
    }

    static func ns(_ s: String) -> Int64 { GoTime.parseRFC3339(s)!.nanosecondsSinceEpoch }

    @Test func theSampleStatusGivesTheScheduleInitRunningAndReadyInstants() throws {
        let observed = Self.ns("2024-11-29T16:13:22Z") + 40_000_000
        let r = try #require(PodStatusReport(pod: try Self.samplePod(), observedUnixNs: observed))
        #expect(r.uid == "3f0c2a7e-5b1d-4c3e-9a8f-1d2e3f4a5b6c")
        #expect(r.namespace == "shop" && r.name == "web-7d9f8c6b5-x2kqz")
        #expect(r.createdUnixNs == Self.ns("2024-11-29T16:13:10Z"))
        #expect(r.scheduledUnixNs == Self.ns("2024-11-29T16:13:10Z"))
        #expect(r.initContainers == [.init(name: "init-config", startedUnixNs: Self.ns("2024-11-29T16:13:12Z"),
                                           finishedUnixNs: Self.ns("2024-11-29T16:13:13Z"))])
        #expect(r.allRunningUnixNs == Self.ns("2024-11-29T16:13:17Z"))
        #expect(r.readyUnixNs == Self.ns("2024-11-29T16:13:22Z"))
        #expect(r.observedUnixNs == observed)
        #expect(!r.fromInitialList)
    }

    /// Log, events and status describe one pod start; their figures must agree.
    @Test func statusEventsAndLogAgree() throws {
        let status = try #require(PodStatusReport(pod: try Self.samplePod(), observedUnixNs: 0))
        let pulls = try Self.sampleEventMessages(pod: status.name, reason: "Pulled").compactMap { PulledEvent.parse(message: $0) }
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        scanner.feed(try Samples.text("kubelet-journal-sample.log"))
        scanner.finish()
        let web = try #require(reports.first { $0.pod == "\(status.namespace)/\(status.name)" })
        #expect(web.observation.created?.nanosecondsSinceEpoch == status.createdUnixNs)
        // containerd's pulls and the kubelet's Pulled events: same images, same sizes, same
        // durations to the millisecond the event keeps.
        #expect(web.pulls.map(\.image) == pulls.map(\.image))
        #expect(web.pulls.map(\.sizeBytes) == pulls.map(\.sizeBytes))
        #expect(pulls.map(\.sizeBytes) == [2_152_284, 72_099_400])
        for (c, e) in zip(web.pulls, pulls) {
            #expect(abs(c.end.goSub(c.begin) - e.includingWaitingNanoseconds!) < 5_000_000)
        }
        // The container's startedAt (whole seconds) is the second in which the kubelet saw it running.
        let running = try #require(web.observation.observedRunning)
        #expect(running.nanosecondsSinceEpoch / 1_000_000_000 == status.allRunningUnixNs! / 1_000_000_000)
        // V4's init total (from the same status fields, with sub-second precision) rounds to the status' 1 s.
        let v4 = try Samples.text("kubelet-journal-sample-v1.36.log").split(separator: "\n").compactMap { try? StartupLineParser.parse(String($0))?.get() }.first!
        let run = try #require(status.initContainers.first)
        #expect(abs(v4.totalInitContainerRuntimeNanoseconds! - (run.finishedUnixNs! - run.startedUnixNs!)) < 1_000_000_000)
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
}
