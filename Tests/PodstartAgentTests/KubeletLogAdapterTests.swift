import KubeletSources
import PodstartAgent
import PodstartCore
import Testing

/// The real kubelet's klog (v1.28.7, --v=3) through the kubelet-log adapter.
@Suite struct KubeletLogAdapterTests {
    @Test func theFourteenStartupLinesAndNothingElse() throws {
        var observations: [KubeletPodStartupObservation] = []
        var unreadable = 0
        for line in try Recordings.lines("kubelet.log") {
            guard let inputs = KubeletLogInputs.inputs(line: line) else { unreadable += 1; continue }
            for case .kubeletStartup(let o) in inputs { observations.append(o) }
            #expect(inputs.count <= 1)
        }
        #expect(unreadable == 0)
        // `grep -c 'Observed pod startup duration' kubelet.log` is 14
        #expect(observations.count == 14)
        let a = try #require(observations.first)
        #expect(a.namespace == "default" && a.name == "pod-a-reader")
        #expect(a.sloSecondsText == "28.062170183")
        // watchObservedRunningTime − podCreationTimestamp: 03:01:36.193177683 − 03:01:08
        #expect(a.e2eNanoseconds == 28_193_177_683)
        #expect(a.firstStartedPulling?.nanosecondsSinceEpoch == Recordings.unixNs("2026-12-06T03:01:08.975994255"))
        #expect(a.lastFinishedPulling?.nanosecondsSinceEpoch == Recordings.unixNs("2026-12-06T03:01:09.107001741"))
        #expect(a.observedRunning?.nanosecondsSinceEpoch == Recordings.unixNs("2026-12-06T03:01:09.830537711"))
        #expect(observations[1].name == "pod-b-slowready" && observations[1].sloSecondsText == "2.147885575")
    }

    @Test func aStartupLineWithoutItsDurationIsAnError() {
        let line = #"I1206 03:01:36.193298   18669 pod_startup_latency_tracker.go:102] "Observed pod startup duration" pod="default/pod-a-reader""#
        #expect(KubeletLogInputs.inputs(line: Array(line.utf8)) == nil)
        #expect(KubeletLogInputs.inputs(line: Array("I1206 03:01:36.193298   18669 kubelet.go:2430] \"SyncLoop ADD\"".utf8)) == [])
    }
}
