import Exporter
import Foundation
import PodstartAgent
import PodstartCore
import Testing

/// Issue #21: with no readiness source (no API server, no kubelet /pods) the agent must not take
/// "running" for "ready" silently. The real node's starts from containerd's log alone (as an agent
/// with only the runtime sees them) say readiness `unknown`, with no `probe` or `ready_report`,
/// and are counted; the same pods with their records (PodRecordReplayTests) get the Ready instant.
@Suite struct ReadinessUnknownTests {
    @Test func fromTheRuntimeAloneEveryStartSaysReadinessUnknownAndIsCounted() throws {
        let (traces, _, _) = try BurstPullTests.replay(kubelet: false)
        let ready = traces.values.filter { $0.outcome == .ready }
        #expect(ready.count >= 13, "the recorded pods that reached running: \(traces.values.map { "\($0.pod.name) \($0.outcome)" })")
        for trace in ready {
            #expect(trace.readiness == .unknown, "\(trace.pod)")
            #expect(!trace.phases.contains { $0.name == .probe || $0.name == .readyReport }, "\(trace.pod): \(trace.phases.map(\.name))")
            let text = trace.json().rendered()
            #expect(text.contains(#""outcome":"ready","readiness":"unknown""#))
            #expect(try PodStartTrace(json: JSON.parse(text)) == trace, "the trace JSON keeps it")
        }
        // pod-b has an exec readiness probe: its Ready (a whole second in the API) came after
        // running on the real node, which the runtime alone cannot know
        let b = try #require(traces["pod-b-slowready"])
        let apiReady = Recordings.unixNs(try PodRecordReplayTests.readyCondition("pod-b-slowready"))
        #expect(try #require(b.ready) < apiReady, "running, before the Ready (its probe waits 1.5 s) it does not claim to know")

        let metrics = MetricsRegistry.forTests()
        for trace in traces.values { metrics.observe(trace: trace) }
        let text = metrics.render(format: .text)
        #expect(text.contains("podstart_pod_starts_readiness_unknown_total \(ready.count)\n"))
        #expect(text.contains("podstart_pod_starts_total{outcome=\"ready\"} \(ready.count)\n"))
        #expect(metrics.render(format: .openMetrics).contains("# TYPE podstart_pod_starts_readiness_unknown counter\npodstart_pod_starts_readiness_unknown_total \(ready.count)\n"))
    }

    @Test func aKnownReadinessIsNotWrittenAndOlderTracesReadAsKnown() throws {
        var trace = PodStartTrace(pod: .init(namespace: "ns", name: "p", uid: "u"), created: 1_000_000_000, ready: 2_000_000_000,
                                  outcome: .ready, phases: [], containers: [])
        let text = trace.json().rendered()
        #expect(!text.contains("readiness"), "absent when known: the JSON of a known start is what it was")
        #expect(try PodStartTrace(json: JSON.parse(text)).readiness == .known)
        trace.readiness = .unknown
        #expect(try PodStartTrace(json: JSON.parse(trace.json().rendered())).readiness == .unknown)
    }
}
