import Exporter
import Foundation
import HTTPTransport
import KubeletSources
import Logging
import PodstartAgent
import PodstartCore
import PodstartTestSupport
import StateStore
import Synchronization
import Testing

/// The pods' events (issue #15 item 1): one list per recorded start,
/// `GET /api/v1/namespaces/NS/events?fieldSelector=involvedObject.uid=UID`, paged and capped,
/// attached to the start after it was saved. Read from the real node's events
/// (reference/real-cluster-1.28/api-events-final.json, kubelet v1.28.7), served by a test API
/// server over TLS with a bearer token.
@Suite(.serialized) struct PodEventsTests {
    static let token = "events-token-9a2e"
    static let uidPodB = "0c9a3d15-1c85-4fcb-98cc-41ee276798c9"  // pod-b-slowready: exec readiness probe
    static let uidBurst01 = "41f3262d-7a17-4d7a-9c81-9e1915521959"

    static func recordedEventList() throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: "\(Recordings.directory)/api-events-final.json")))
    }

    /// The recorded events, read independently of podstart's reader (Foundation's).
    static func recordedEvents() throws -> [[String: Any]] {
        let list = try JSONSerialization.jsonObject(with: Data(recordedEventList())) as! [String: Any]
        return list["items"] as! [[String: Any]]
    }

    static func uid(of event: [String: Any]) -> String? { (event["involvedObject"] as? [String: Any])?["uid"] as? String }

    // MARK: the recorded list

    @Test func theRecordedEventListReadsEveryEventWithItsPodCountsAndPullTimes() throws {
        let list = try PodEventList(bytes: try Self.recordedEventList())
        #expect(list.items.count == 68)
        #expect(list.continueToken == nil)

        let b = list.items.filter { $0.uid == Self.uidPodB }.map(\.event)
        #expect(b.map(\.reason) == ["Pulling", "Pulled", "Created", "Started", "Unhealthy"])
        let unhealthy = try #require(b.last)
        #expect(unhealthy.type == "Warning" && unhealthy.isWarning)
        #expect(unhealthy.count == 3)
        #expect(unhealthy.message == "Readiness probe failed: ")
        #expect(unhealthy.component == "kubelet")
        #expect(unhealthy.container == "slow")
        #expect(unhealthy.firstTimestamp == Recordings.unixNs("2026-12-06T03:01:36Z"))
        #expect(unhealthy.lastTimestamp == Recordings.unixNs("2026-12-06T03:01:37Z"))

        // the kubelet's own pull time, as its Pulled message says it
        let pulledB = try #require(b.first { $0.reason == "Pulled" })
        #expect(pulledB.pullSeconds == 0.093 && pulledB.pullIncludingWaitingSeconds == 0.093)
        let burst = list.items.filter { $0.uid == Self.uidBurst01 }.map(\.event)
        let pulledBurst = try #require(burst.first { $0.reason == "Pulled" })
        #expect(pulledBurst.pullSeconds == 0.093 && pulledBurst.pullIncludingWaitingSeconds == 0.19, "waited behind the burst's other pulls")
        #expect(burst.allSatisfy { $0.reason == "Pulled" || $0.pullSeconds == nil })

        // each recorded event, as Foundation reads it
        let recorded = try Self.recordedEvents()
        for (item, raw) in zip(list.items, recorded) {
            #expect(item.uid == Self.uid(of: raw))
            #expect(item.event.reason == raw["reason"] as? String)
            #expect(item.event.message == raw["message"] as? String)
            #expect(item.event.count == Int64(raw["count"] as! Int))
            #expect(item.event.type == raw["type"] as? String)
        }
        #expect(list.items.filter(\.event.isWarning).map(\.event.reason) == ["Unhealthy", "InvalidDiskCapacity"])
    }

    @Test func eventsRoundTripThroughTheTraceJSONAndATraceWithoutThemHasNoEventsField() throws {
        let list = try PodEventList(bytes: try Self.recordedEventList())
        var trace = PodStartTrace(pod: .init(namespace: "default", name: "pod-b-slowready", uid: Self.uidPodB),
                                  created: Recordings.unixNs("2026-12-06T03:01:36Z"), ready: Recordings.unixNs("2026-12-06T03:01:38Z"),
                                  outcome: .ready, phases: [], containers: [])
        let plain = trace.json().rendered()
        #expect(!plain.contains("\"events\""), "fields are only added, and only when listed")
        trace.events = PodEvents(items: list.items.filter { $0.uid == Self.uidPodB }.map(\.event))
        let text = trace.json().rendered()
        #expect(text.contains(#""events":[{"type":"Normal","reason":"Pulling","#))
        #expect(text.contains(#"{"type":"Warning","reason":"Unhealthy","message":"Readiness probe failed: ","count":3,"firstTimestamp":"2026-12-06T03:01:36.000000000Z","lastTimestamp":"2026-12-06T03:01:37.000000000Z","component":"kubelet","container":"slow"}"#))
        #expect(text.contains(#""pull":{"seconds":0.093,"includingWaitingSeconds":0.093}"#))
        let back = try PodStartTrace(json: try JSON.parse(text))
        #expect(back.events == trace.events)
        #expect(back == trace)

        trace.events = .failed("GET … returned HTTP 403")
        let failed = try PodStartTrace(json: try JSON.parse(trace.json().rendered()))
        #expect(failed.events?.error == "GET … returned HTTP 403")
        #expect(!trace.json().rendered().contains("\"events\":"), "no list, only why")
    }

    @Test func boundedKeepsEveryWarningBeforeNormalEventsAndSaysItCut() {
        func e(_ type: String, _ reason: String, _ second: Int64) -> PodEvent {
            PodEvent(type: type, reason: reason, message: reason, firstTimestamp: second * 1_000_000_000, lastTimestamp: second * 1_000_000_000)
        }
        let events = (0..<6).map { e("Normal", "N\($0)", $0) } + [e("Warning", "BackOff", 9), e("Warning", "Failed", 7)]
        let kept = PodEvents.bounded(events, limit: 4)
        #expect(kept.truncated)
        #expect(kept.items.map(\.reason) == ["N0", "N1", "Failed", "BackOff"], "both Warnings, then the oldest Normal, oldest first")
        let all = PodEvents.bounded(events, limit: 8)
        #expect(!all.truncated && all.items.count == 8)
        #expect(PodEvents.bounded(events, limit: 8, moreOnServer: true).truncated)
        #expect(kept.warningCounts.map(\.reason) == ["BackOff", "Failed"])
    }

    // MARK: the test API server

    /// The recorded events as the API server answers a namespace's event list: the field selector
    /// `involvedObject.uid=…` applied, `limit` honoured with an opaque `continue` token.
    final class EventsAPI: Sendable {
        let list: TestEventList
        /// Answers instead of the recording, by the request's number (1-based): a refusal, a hang…
        let override: @Sendable (Int, String) -> TestRoute?
        let requests = Mutex(0)
        let token: String

        init(token: String = PodEventsTests.token, override: @escaping @Sendable (Int, String) -> TestRoute? = { _, _ in nil }) throws {
            self.token = token
            list = try TestEventList(PodEventsTests.recordedEvents())
            self.override = override
        }

        func route(_ uri: String, _ auth: String?) -> TestRoute {
            let n = requests.withLock { $0 += 1; return $0 }
            guard auth == "Bearer \(token)" else { return TestRoute(status: .unauthorized, chunks: ["Unauthorized"]) }
            if let answer = override(n, uri) { return answer }
            return list.answer(uri) ?? TestRoute(status: .notFound, chunks: ["not found"])
        }
    }

    static func serve(_ api: EventsAPI) async throws -> (TestHTTPSServer, HTTPEndpoint) {
        let pki = try TestPKI.make()
        let server = try await TestHTTPSServer(pki: pki, route: { api.route($0, $1) })
        let endpoint = try HTTPEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: token, caFile: pki.caFile, timeout: .seconds(2))
        return (server, endpoint)
    }

    // MARK: the list request

    @Test func oneListPagedWithContinueReadsThePodsEventsOnly() async throws {
        let api = try EventsAPI()
        let (server, endpoint) = try await Self.serve(api)
        defer { Task { try? await server.shutdown() } }
        var lister = try PodEventLister(endpoint)
        lister.pageSize = 2
        let events = try await lister.list(namespace: "default", uid: Self.uidPodB)
        #expect(events.items.map(\.reason) == ["Pulling", "Pulled", "Created", "Started", "Unhealthy"])
        #expect(!events.truncated && events.error == nil)
        let uris = server.log.map(\.uri)
        #expect(uris == [
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3D\(Self.uidPodB)&limit=2",
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3D\(Self.uidPodB)&limit=2&continue=page-2",
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3D\(Self.uidPodB)&limit=2&continue=page-4",
        ])

        // more pages than it reads: what it read, marked truncated
        lister.maxPages = 2
        let cut = try await lister.list(namespace: "default", uid: Self.uidPodB)
        #expect(cut.items.count == 4 && cut.truncated)
        // a limit below what the pod has: the Warning is kept first
        lister.maxPages = 3
        lister.limit = 2
        let few = try await lister.list(namespace: "default", uid: Self.uidPodB)
        #expect(few.items.map(\.reason) == ["Pulling", "Unhealthy"] && few.truncated)
    }

    @Test func refusedTimedOutClosedAndOversizedListsAreErrorsNamingWhatHappened() async throws {
        let forbidden = #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"events is forbidden: User \"system:serviceaccount:podstart:podstart-agent\" cannot list resource \"events\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"events"},"code":403}"#
        let big = "{\"kind\":\"EventList\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[" + String(repeating: " ", count: 200_000) + "]}"
        let api = try EventsAPI { n, _ in
            switch n {
            case 1: TestRoute(status: .forbidden, chunks: [forbidden])
            case 2: TestRoute(chunks: [], hang: true)
            case 3: TestRoute(chunks: ["{\"kind\":\"EventList\",\"items\":["], cut: true)
            case 4: TestRoute(chunks: [big])
            default: nil
            }
        }
        let (server, endpoint) = try await Self.serve(api)
        defer { Task { try? await server.shutdown() } }
        var lister = try PodEventLister(endpoint)
        lister.maxPageBytes = 64 << 10

        await #expect { try await lister.list(namespace: "default", uid: Self.uidPodB) } throws: { error in
            guard case HTTPTransportError.status(403, _, let body) = error else { return false }
            return body.contains("cannot list resource \\\"events\\\"")
        }
        await #expect { try await lister.list(namespace: "default", uid: Self.uidPodB) } throws: { error in
            if case HTTPTransportError.timeout = error { return true } else { return false }
        }
        await #expect { try await lister.list(namespace: "default", uid: Self.uidPodB) } throws: { error in
            // closed mid-body: the transport's error, or (if the close came as a clean end) an
            // unfinished list — never a list of events
            if case HTTPTransportError.connection = error { return true }
            if case KubeHTTPError.decode = error { return true }
            return false
        }
        await #expect { try await lister.list(namespace: "default", uid: Self.uidPodB) } throws: { error in
            if case HTTPTransportError.bodyTooLarge(_, 65_536) = error { return true } else { return false }
        }
        // and the next list is the recording again
        #expect(try await lister.list(namespace: "default", uid: Self.uidPodB).items.count == 5)
    }

    // MARK: attached to recorded starts

    struct Store {
        let store: TimelineStore
        let metrics: MetricsRegistry
    }

    static func store() throws -> Store {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-events-\(UUID().uuidString)").path
        let metrics = MetricsRegistry.forTests()
        metrics.register(sources: ["apiserver", PodEventsAttacher.sourceName])
        metrics.registerPodStartWarningEvents()
        return Store(store: try TimelineStore(directory: dir, logger: Logger(label: "test")), metrics: metrics)
    }

    static func start(_ name: String, uid: String) -> PodStartTrace {
        let created = Recordings.unixNs("2026-12-06T03:01:36Z")
        return PodStartTrace(pod: .init(namespace: "default", name: name, uid: uid), created: created, ready: created + 2_000_000_000,
                             outcome: .ready,
                             phases: [PhaseSpan(name: .pull, start: created, end: created + 93_000_000, parent: nil, source: .cri),
                                      PhaseSpan(name: .probe, start: created + 93_000_000, end: created + 2_000_000_000, parent: nil, source: .podStatus)],
                             containers: [])
    }

    /// Waits (a hung test's guard, not a speed check) until `done` holds.
    static func until(_ done: @Sendable () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while await !done() {
            guard ContinuousClock.now < deadline else { throw TestServerError("never got there") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func aRecordedStartIsSavedAgainWithItsEventsAndItsWarningsAreCounted() async throws {
        let api = try EventsAPI()
        let (server, endpoint) = try await Self.serve(api)
        defer { Task { try? await server.shutdown() } }
        let s = try Self.store()
        let attacher = PodEventsAttacher(lister: try PodEventLister(endpoint), store: s.store, metrics: s.metrics, logger: Logger(label: "test"))
        let trace = Self.start("pod-b-slowready", uid: Self.uidPodB)
        try await s.store.save(trace)
        attacher.enqueue(trace)
        try await Self.until { await attacher.counts.listed == 1 }
        await attacher.idle()

        let stored = try #require(try await s.store.pod(uid: Self.uidPodB))
        #expect(stored.phases == trace.phases, "the start as recorded, events added")
        let events = try #require(stored.events)
        #expect(events.items.map(\.reason) == ["Pulling", "Pulled", "Created", "Started", "Unhealthy"])
        #expect(s.metrics.sample("podstart_pod_start_warning_events_total{reason=\"Unhealthy\"}") == 3)
        #expect(s.metrics.sample("podstart_pod_start_warning_events_total{reason=\"FailedScheduling\"}") == 0)
        #expect(s.metrics.sample("podstart_pod_start_warning_events_total{reason=\"other\"}") == 0)
        #expect(s.metrics.sourceErrors(PodEventsAttacher.sourceName) == 0)
        #expect(server.log.count == 1, "one list per start")

        // a start of no pod (a container started through containerd) is never listed
        var bare = Self.start("", uid: "")
        bare.runtime = .init(containerdNamespace: "default", containerID: "c1")
        attacher.enqueue(bare)
        #expect(!PodEventsAttacher.wantsEvents(bare))
    }

    @Test func aFailedListingIsCountedAndTheStartStaysRecorded() async throws {
        let api = try EventsAPI { n, _ in
            switch n {
            case 1: TestRoute(status: .forbidden, chunks: [#"{"kind":"Status","code":403,"reason":"Forbidden"}"#])
            case 2: TestRoute(chunks: [], hang: true)
            case 3: TestRoute(chunks: ["{\"items\":["], cut: true)
            default: nil
            }
        }
        let (server, endpoint) = try await Self.serve(api)
        defer { Task { try? await server.shutdown() } }
        let s = try Self.store()
        // one at a time, so the answers go to the starts in order
        let attacher = PodEventsAttacher(lister: try PodEventLister(endpoint), store: s.store, metrics: s.metrics, logger: Logger(label: "test"),
                                         maxConcurrent: 1)
        let uids = (1...3).map { "00000000-0000-0000-0000-00000000000\($0)" }
        for (i, uid) in uids.enumerated() {
            let trace = Self.start("pod-\(i)", uid: uid)
            try await s.store.save(trace)
            attacher.enqueue(trace)
            try await Self.until { await attacher.counts.failed == i + 1 }
        }
        await attacher.idle()
        for uid in uids {
            let stored = try #require(try await s.store.pod(uid: uid), "still recorded")
            #expect(stored.outcome == .ready && stored.phases.count == 2)
            #expect(stored.events?.items.isEmpty == true)
            #expect(stored.events?.error != nil)
        }
        let first = try #require(try await s.store.pod(uid: uids[0]))
        #expect(first.events?.error?.contains("HTTP 403") == true)
        let second = try #require(try await s.store.pod(uid: uids[1]))
        #expect(second.events?.error?.contains("did not answer within") == true)
        #expect(s.metrics.sourceErrors(PodEventsAttacher.sourceName) == 3)
        let counts = await attacher.counts
        #expect(counts.listed == 0 && counts.failed == 3 && counts.dropped == 0 && counts.notStored == 0 && counts.peakRunning == 1)
    }

    @Test func listingsRunAtMostMaxConcurrentAtOnceAndEveryStartGetsOne() async throws {
        let api = try EventsAPI()
        let (server, endpoint) = try await Self.serve(api)
        defer { Task { try? await server.shutdown() } }
        let s = try Self.store()
        var lister = try PodEventLister(endpoint)
        lister.pageSize = 1  // several requests each, so listings overlap
        lister.maxPages = 10
        let attacher = PodEventsAttacher(lister: lister, store: s.store, metrics: s.metrics, logger: Logger(label: "test"),
                                         maxConcurrent: 2, maxQueued: 100)
        let recorded = try Self.recordedEvents()
        let burst = (1...10).map { String(format: "pod-e-burst-%02d", $0) }
        let uids = burst.map { name in Self.uid(of: recorded.first { ($0["involvedObject"] as! [String: Any])["name"] as? String == name }!)! }
        for (name, uid) in zip(burst, uids) {
            let trace = Self.start(name, uid: uid)
            try await s.store.save(trace)
            attacher.enqueue(trace)
        }
        try await Self.until { await attacher.counts.listed == 10 }
        await attacher.idle()
        let counts = await attacher.counts
        #expect(counts.peakRunning <= 2)
        #expect(counts.failed == 0 && counts.dropped == 0)
        for uid in uids {
            let events = try #require(try await s.store.pod(uid: uid)?.events)
            #expect(events.items.map(\.reason) == ["Pulling", "Pulled", "Created", "Started"])
            #expect(events.items[1].pullSeconds != nil, "its own Pulled, not another burst pod's")
        }
        // 4 events each, one per page (the last without a continue token): 4 requests per start, all for its own UID
        #expect(server.log.count == 40)
        for uid in uids { #expect(server.log.filter { $0.uri.contains("involvedObject.uid%3D\(uid)&") }.count == 4) }
    }

    @Test func stoppingDropsWaitingListingsAndSavesNothingAfterwards() async throws {
        let api = try EventsAPI { _, _ in TestRoute(chunks: [], hang: true) }
        let (server, endpoint) = try await Self.serve(api)
        defer { Task { try? await server.shutdown() } }
        let s = try Self.store()
        let attacher = PodEventsAttacher(lister: try PodEventLister(endpoint), store: s.store, metrics: s.metrics, logger: Logger(label: "test"),
                                         maxConcurrent: 1)
        for i in 0..<3 {
            let trace = Self.start("pod-\(i)", uid: "uid-\(i)")
            try await s.store.save(trace)
            attacher.enqueue(trace)
        }
        try await Self.until { server.log.count == 1 }
        try await Self.until { await attacher.counts.peakRunning == 1 }
        await attacher.finish()
        try s.store.close()
        let counts = await attacher.counts
        #expect(counts.dropped >= 2, "the waiting ones: \(counts)")
        #expect(counts.listed == 0)
        attacher.enqueue(Self.start("late", uid: "uid-late"))  // after the stop: dropped, never saved
        try await Self.until { await attacher.counts.dropped == 3 }
    }

    @Test func aFailedTracePodNamesItsWarningEvents() throws {
        let list = try PodEventList(bytes: try Self.recordedEventList())
        let b = PodEvents(items: list.items.filter { $0.uid == Self.uidPodB }.map(\.event))
        #expect(PodTraceRun.warningSummary(b) == "; Warning events: Unhealthy ×3 \"Readiness probe failed: \"")
        let a = PodEvents(items: list.items.filter { $0.uid == PodRecordReplayTests.uidPodA }.map(\.event))
        #expect(PodTraceRun.warningSummary(a) == "", "pod-a had Normal events only")
    }

    // MARK: configuration

    @Test func eventsAreListedWithAnAPIServerUnlessTurnedOffAndTheirErrorsHaveASeries() throws {
        var c = try AgentConfigurationTests.configuration()
        #expect(c.podEvents && c.podEventsLimit == 50)
        #expect(!c.listsPodEvents && !c.sourceNames.contains("events"), "no API server")
        c.kubeletURL = "https://10.1.2.3:10250"
        #expect(!c.listsPodEvents, "the kubelet's /pods has no events")
        c.environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        #expect(c.listsPodEvents && c.sourceNames.contains("events"))
        c.podEvents = false
        #expect(!c.listsPodEvents && !c.sourceNames.contains("events"))
        c.podEvents = true
        c.environment = [:]
        c.kubeconfig = "/etc/kubeconfig"
        #expect(c.listsPodEvents)
    }

    // MARK: the recorded node, end to end

    /// The real node's pods through the agent's pod-record source (PodRecordReplayTests' API
    /// server), each recorded start's events listed at the same server: every one of the 14 pods
    /// gets exactly its recorded events, from one list each.
    @Test func everyRecordedPodGetsItsOwnRecordedEventsFromOneList() async throws {
        let pods = try PodRecordReplayTests.APIServer(pods: try PodRecordReplayTests.recordedPods())
        let events = try EventsAPI(token: PodRecordReplayTests.token)
        let pki = try TestPKI.make()
        let server = try await TestHTTPSServer(pki: pki, route: { uri, auth in
            uri.hasPrefix("/api/v1/namespaces/") ? events.route(uri, auth) : pods.route(uri, auth)
        })
        defer { Task { try? await server.shutdown() } }
        let agent = try PodRecordReplayTests.agent()
        agent.metrics.registerPodStartWarningEvents()
        let endpoint = try HTTPEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: PodRecordReplayTests.token, caFile: pki.caFile)
        let attacher = PodEventsAttacher(lister: try PodEventLister(endpoint), store: agent.store, metrics: agent.metrics, logger: Logger(label: "test"))
        await agent.hub.onRecorded { attacher.enqueue($0) }
        let source = PodRecordSource(api: endpoint, kubelet: nil, nodeName: PodRecordReplayTests.node, hub: agent.hub)
        try await PodRecordReplayTests.run(source, metrics: agent.metrics) { server.log.contains { $0.uri.contains("resourceVersion=304") } }
        try await PodRecordReplayTests.kubeletLines(into: agent.hub)
        await agent.hub.flush()
        try await Self.until { await attacher.counts.listed + attacher.counts.failed == 14 }
        await attacher.idle()
        #expect(await attacher.counts.failed == 0)

        let recorded = try Self.recordedEvents()
        let traces = try await agent.store.recent(limit: 100, offset: 0)
        #expect(traces.count == 14)
        for trace in traces {
            let mine = recorded.filter { Self.uid(of: $0) == trace.pod.uid }
            let events = try #require(trace.events, "\(trace.pod)")
            #expect(events.items.map(\.reason) == mine.map { $0["reason"] as! String }, "\(trace.pod)")
            #expect(events.items.map(\.message) == mine.map { $0["message"] as! String }, "\(trace.pod)")
        }
        let lists = server.log.map(\.uri).filter { $0.hasPrefix("/api/v1/namespaces/") }
        #expect(lists.count == 14, "one list per start, never one per poll")
        #expect(Set(lists).count == 14)
        #expect(agent.metrics.sample("podstart_pod_start_warning_events_total{reason=\"Unhealthy\"}") == 3, "pod-b's three failed readiness probes")
    }
}
