import PodstartCore
import Testing
@testable import TraceViews

/// The pod's events under the terminal waterfall (`trace --pod`, `trace --from`): the real node's
/// pod-b-slowready (reference/real-cluster-1.28/api-events-final.json: its exec readiness probe
/// failed three times before Ready) and a listing the API server refused.
@Suite struct TraceTableEventsTests {
    static func s(_ text: String) -> Int64 { Timestamp.parseRFC3339(text)! }

    /// pod-b-slowready's five recorded events, as the agent keeps them.
    static let podBEvents = [
        PodEvent(type: "Normal", reason: "Pulling", message: "Pulling image \"127.0.0.1:35000/podstart-test/slow-ready:latest\"",
                 firstTimestamp: s("2026-12-06T03:01:36Z"), lastTimestamp: s("2026-12-06T03:01:36Z"), component: "kubelet", container: "slow"),
        PodEvent(type: "Normal", reason: "Pulled",
                 message: "Successfully pulled image \"127.0.0.1:35000/podstart-test/slow-ready:latest\" in 93ms (93ms including waiting)",
                 firstTimestamp: s("2026-12-06T03:01:36Z"), lastTimestamp: s("2026-12-06T03:01:36Z"), component: "kubelet", container: "slow",
                 pullSeconds: 0.093, pullIncludingWaitingSeconds: 0.093),
        PodEvent(type: "Normal", reason: "Created", message: "Created container slow",
                 firstTimestamp: s("2026-12-06T03:01:36Z"), lastTimestamp: s("2026-12-06T03:01:36Z"), component: "kubelet", container: "slow"),
        PodEvent(type: "Normal", reason: "Started", message: "Started container slow",
                 firstTimestamp: s("2026-12-06T03:01:36Z"), lastTimestamp: s("2026-12-06T03:01:36Z"), component: "kubelet", container: "slow"),
        PodEvent(type: "Warning", reason: "Unhealthy", message: "Readiness probe failed: ", count: 3,
                 firstTimestamp: s("2026-12-06T03:01:36Z"), lastTimestamp: s("2026-12-06T03:01:37Z"), component: "kubelet", container: "slow"),
    ]

    static func trace(events: PodEvents?) -> PodStartTrace {
        let created = s("2026-12-06T03:01:36.000000000Z")
        var trace = PodStartTrace(pod: .init(namespace: "default", name: "pod-b-slowready", uid: "0c9a3d15-1c85-4fcb-98cc-41ee276798c9"),
                                  created: created, ready: created + 2_100_000_000, outcome: .ready,
                                  phases: [PhaseSpan(name: .pull, start: created + 300_000_000, end: created + 410_000_000, parent: nil, source: .cri),
                                           PhaseSpan(name: .probe, start: created + 500_000_000, end: created + 2_100_000_000, parent: nil, source: .podStatus)],
                                  containers: [.init(name: "slow", image: "127.0.0.1:35000/podstart-test/slow-ready:latest", imageDigest: nil)])
        trace.events = events
        return trace
    }

    @Test func theWaterfallListsThePodsEventsWithWarningCountsAndTheKubeletsPullTime() {
        let text = TraceTable.render(Self.trace(events: PodEvents(items: Self.podBEvents)), run: nil)
        #expect(text.contains("events (5, 1 warning; seconds after created"))
        #expect(text.contains("  +0…+1    Warning Unhealthy ×3 [slow]  Readiness probe failed: \n"), "\(text)")
        #expect(text.contains("  +0       Normal  Pulled    [slow]  Successfully pulled image"))
        #expect(text.contains("  kubelet's Pulled events: 0.093 s pulling (0.093 s including waiting) · podstart's pull phase: 0.110 s\n"))
        // the waterfall itself is unchanged by them
        let without = TraceTable.render(Self.trace(events: nil), run: nil)
        #expect(text.hasPrefix(String(without.dropLast())))
        #expect(!without.contains("events"))
    }

    @Test func aRefusedListingAndACutListSayWhy() {
        let refused = TraceTable.render(Self.trace(events: .failed("GET https://10.96.0.1/api/v1/namespaces/default/events returned HTTP 403")), run: nil)
        #expect(refused.contains("\nevents: not listed (GET https://10.96.0.1/api/v1/namespaces/default/events returned HTTP 403)\n"))
        let cut = TraceTable.render(Self.trace(events: PodEvents.bounded(Self.podBEvents, limit: 2)), run: nil)
        #expect(cut.contains("Warning Unhealthy ×3"))
        #expect(cut.contains("… more events on the API server than the limit kept (--pod-events-limit; Warnings first)"))
    }
}

@Suite struct TracePageEventsTests {
    @Test func thePageHasAnEventsTableWithWarningsMarkedAndValuesEscaped() {
        var events = TraceTableEventsTests.podBEvents
        events.append(PodEvent(type: "Warning", reason: "Failed", message: "Failed to pull image \"x<y>\": not found", count: 2,
                               firstTimestamp: TraceTableEventsTests.s("2026-12-06T03:01:37Z"), component: "kubelet", container: "slow"))
        let page = TracePage.render(TraceTableEventsTests.trace(events: PodEvents(items: events)))
        #expect(page.contains("<h2>Events</h2><table class=\"events\">"))
        #expect(page.contains("<tr class=\"warning\"><td class=\"n\">0</td><td>Warning</td><td>Unhealthy</td><td class=\"n\">3</td><td>slow</td><td>kubelet</td><td>Readiness probe failed: </td></tr>"))
        #expect(page.contains("<td>Failed to pull image &quot;x&lt;y&gt;&quot;: not found</td>"))
        #expect(!TracePage.render(TraceTableEventsTests.trace(events: nil)).contains("<h2>Events</h2>"))
    }
}
