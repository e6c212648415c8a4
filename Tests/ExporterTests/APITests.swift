import Exporter
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOSSL
import PodstartCore
import Testing

struct FixedProfiles: ProfileProvider {
    func profile(digest: String, format: String) async throws -> ProfileDocument? {
        guard digest == Fixtures.appDigest else { return nil }
        guard format == "estargz" else { throw APIError.badRequest("unknown format \(format)") }
        return ProfileDocument(contentType: "application/jsonl", body: "{\"path\":\"bin/app\"}\n")
    }
}

@Suite("HTTP API")
struct APITests {
    static func app(traces: Int = 60, token: String? = nil, profiles: (any ProfileProvider)? = nil,
                    readiness: Readiness = Readiness()) async throws -> Application<APIResponder> {
        let timelines = InMemoryTimelines()
        for i in 0..<traces {
            await timelines.add(Fixtures.readyStart(uid: "uid-\(i)", name: "pod-\(i)", created: Fixtures.t0 + Int64(i) * Fixtures.s))
        }
        let metrics = MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: "0.1.0")))
        metrics.observe(trace: Fixtures.readyStart())
        let responder = APIResponder(configuration: .init(bearerToken: token), metrics: metrics, timelines: timelines,
                                     profiles: profiles, readiness: readiness)
        return try APIServer.application(responder: responder, listen: ListenAddress(host: "127.0.0.1", port: 0))
    }

    static func json(_ response: TestResponse) throws -> JSON {
        try JSON.parse(String(buffer: response.body))
    }

    @Test func healthAndReadinessFollowTheInjectedFlag() async throws {
        let readiness = Readiness()
        try await Self.app(readiness: readiness).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                let body = try Self.json(r)
                #expect(body["reason"]?.stringValue == "sources have not started yet")
            }
            readiness.markReady()
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .ok)
                let body = try Self.json(r)
                #expect(body["status"]?.stringValue == "ready")
            }
        }
    }

    /// A failing condition (the state store refusing saves) makes a ready agent not ready, with
    /// the condition's reason; cleared, the agent is ready again.
    @Test func aFailingConditionMakesReadyz503WithItsReason() async throws {
        let readiness = Readiness()
        readiness.markReady()
        try await Self.app(readiness: readiness).test(.router) { client in
            readiness.setCondition("state store", failing: "cannot save pod starts: database or disk is full")
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .serviceUnavailable)
                let body = try Self.json(r)
                #expect(body["reason"]?.stringValue == "state store: cannot save pod starts: database or disk is full")
            }
            readiness.setCondition("state store", failing: nil)
            try await client.execute(uri: "/readyz", method: .get) { r in
                #expect(r.status == .ok)
            }
            // shutting down wins over any condition, and a condition outlives a restart of the sources
            readiness.setCondition("state store", failing: "gone")
            readiness.markNotReady(reason: "shutting down")
            #expect(readiness.notReadyReason == "shutting down")
        }
    }

    @Test func metricsNegotiatesOpenMetrics() async throws {
        try await Self.app().test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
                let body = String(buffer: r.body)
                #expect(body.contains("# TYPE podstart_pod_starts_total counter"))
                #expect(!body.contains("# EOF"))
            }
            let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            try await client.execute(uri: "/metrics", method: .get, headers: [.accept: accept]) { r in
                #expect(r.headers[.contentType] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
                #expect(String(buffer: r.body).hasSuffix("# EOF\n"))
            }
        }
    }

    @Test func podsAreNewestFirstWithDefaultAndMaximumLimits() async throws {
        try await Self.app(traces: 60).test(.router) { client in
            try await client.execute(uri: "/v1/pods", method: .get) { r in
                #expect(r.status == .ok)
                let body = try Self.json(r)
                let items = body["items"]?.arrayValue ?? []
                #expect(items.count == 50)
                #expect(items.first?["pod"]?["uid"]?.stringValue == "uid-59")
                #expect(items.first?["schemaVersion"]?.stringValue == PodStartTrace.schemaVersion)
                #expect(body["nextOffset"]?.int64Value == 50)
            }
            try await client.execute(uri: "/v1/pods?limit=20&offset=50", method: .get) { r in
                let body = try Self.json(r)
                #expect(body["items"]?.arrayValue?.count == 10)
                #expect(body["items"]?.arrayValue?.first?["pod"]?["uid"]?.stringValue == "uid-9")
                #expect(body["nextOffset"]?.isNull == true)
            }
            try await client.execute(uri: "/v1/pods?limit=1000", method: .get) { r in
                #expect(r.status == .ok)
            }
            for bad in ["/v1/pods?limit=1001", "/v1/pods?limit=0", "/v1/pods?limit=abc", "/v1/pods?offset=-1", "/v1/images?limit=5000"] {
                try await client.execute(uri: bad, method: .get) { r in
                    #expect(r.status == .badRequest, "\(bad)")
                    #expect(r.headers[.contentType] == "application/json")
                    let body = try Self.json(r)
                    #expect(body["status"]?.int64Value == 400)
                }
            }
        }
    }

    /// The same start as a page a browser opens (its content is TraceViewsTests' subject): HTML, a
    /// policy that forbids fetching anything, the pod named; an unknown format is a 400.
    @Test func onePodAsAnHTMLPage() async throws {
        try await Self.app(traces: 3).test(.router) { client in
            try await client.execute(uri: "/v1/pods/uid-2?format=html", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/html; charset=utf-8")
                #expect(r.headers[.contentSecurityPolicy] == "default-src 'none'; style-src 'unsafe-inline'")
                let body = String(buffer: r.body)
                #expect(body.hasPrefix("<!DOCTYPE html>"))
                #expect(body.contains("<h1>\(Fixtures.readyStart(uid: "uid-2", name: "pod-2").pod.namespace)/pod-2</h1>"))
                #expect(body.contains("class=\"phase\""))
            }
            try await client.execute(uri: "/v1/pods/uid-2?format=json", method: .get) { r in
                let trace = try PodStartTrace(json: Self.json(r))
                #expect(trace.pod.name == "pod-2")
            }
            try await client.execute(uri: "/v1/pods/uid-2?format=pdf", method: .get) { r in
                #expect(r.status == .badRequest)
                let body = try Self.json(r)
                #expect(body["error"]?.stringValue == "format is json or html")
            }
            try await client.execute(uri: "/v1/pods/uid-404?format=html", method: .get) { r in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func onePodByUIDOrAJSON404() async throws {
        try await Self.app(traces: 3).test(.router) { client in
            try await client.execute(uri: "/v1/pods/uid-1", method: .get) { r in
                #expect(r.status == .ok)
                let trace = try PodStartTrace(json: Self.json(r))
                #expect(trace.pod.name == "pod-1")
            }
            try await client.execute(uri: "/v1/pods/uid-404", method: .get) { r in
                #expect(r.status == .notFound)
                let body = try Self.json(r)
                #expect(body["error"]?.stringValue == "no recorded start for pod uid-404")
            }
            try await client.execute(uri: "/v1/pods/..%2F..%2Fetc%2Fpasswd", method: .get) { r in
                #expect(r.status == .badRequest)
            }
        }
    }

    @Test func imagesAndProfilesValidateDigestsBeforeAnyLookup() async throws {
        try await Self.app(traces: 2, profiles: FixedProfiles()).test(.router) { client in
            try await client.execute(uri: "/v1/images", method: .get) { r in
                let items = try Self.json(r)["items"]?.arrayValue ?? []
                #expect(items.count == 1)
                #expect(items.first?["digest"]?.stringValue == Fixtures.appDigest)
                #expect(items.first?["starts"]?.int64Value == 2)
            }
            for bad in ["/v1/images/sha256:ABC/profile", "/v1/images/..%2F..%2Fetc%2Fpasswd/profile",
                        "/v1/images/sha256:" + String(repeating: "g", count: 64) + "/profile",
                        "/v1/images/sha256:" + String(repeating: "a", count: 65) + "/profile",
                        "/v1/images/\(Fixtures.appDigest)/profile?format=../x"] {
                try await client.execute(uri: bad, method: .get) { r in
                    #expect(r.status == .badRequest, "\(bad)")
                }
            }
            try await client.execute(uri: "/v1/images/\(Fixtures.appDigest)/profile?format=estargz", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/jsonl")
                #expect(String(buffer: r.body) == "{\"path\":\"bin/app\"}\n")
            }
            let encoded = Fixtures.appDigest.replacingOccurrences(of: ":", with: "%3A")
            try await client.execute(uri: "/v1/images/\(encoded)/profile?format=estargz", method: .get) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/images/\(Fixtures.appDigest)/profile?format=nydus", method: .get) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/v1/images/sha256:\(String(repeating: "0", count: 64))/profile", method: .get) { r in
                #expect(r.status == .notFound)
            }
        }
        try await Self.app(traces: 1).test(.router) { client in
            try await client.execute(uri: "/v1/images/\(Fixtures.appDigest)/profile", method: .get) { r in
                #expect(r.status == .notImplemented)
                #expect(r.headers[.contentType] == "application/json")
            }
        }
    }

    @Test func nothingIsServedOutsideTheRoutes() async throws {
        try await Self.app().test(.router) { client in
            for path in ["/", "/metrics/", "/v1", "/v1/pods/", "/v1/images/\(Fixtures.appDigest)", "/etc/passwd",
                         "/v1/images/\(Fixtures.appDigest)/profile/x", "/debug/pprof"] {
                try await client.execute(uri: path, method: .get) { r in
                    #expect(r.status == .notFound || r.status == .badRequest, "\(path) → \(r.status)")
                    #expect(r.headers[.contentType] == "application/json", "\(path)")
                }
            }
            try await client.execute(uri: "/nope", method: .get) { r in
                #expect(r.status == .notFound)
                let body = try Self.json(r)
                #expect(body["status"]?.int64Value == 404)
            }
            try await client.execute(uri: "/v1/pods", method: .post) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(r.headers[.allow] == "GET")
            }
        }
    }

    @Test func bearerTokenGuardsTheAPIButNotMetricsOrHealth() async throws {
        try await Self.app(traces: 1, token: "s3cret-token").test(.router) { client in
            try await client.execute(uri: "/v1/pods", method: .get) { r in
                #expect(r.status == .unauthorized)
                #expect(r.headers[.wwwAuthenticate] == "Bearer realm=\"podstart\"")
            }
            for wrong in ["Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token", "Bearer "] {
                try await client.execute(uri: "/v1/pods", method: .get, headers: [.authorization: wrong]) { r in
                    #expect(r.status == .unauthorized, "\(wrong)")
                }
            }
            try await client.execute(uri: "/v1/pods", method: .get, headers: [.authorization: "Bearer s3cret-token"]) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/nothing-here", method: .get) { r in
                #expect(r.status == .unauthorized)  // no probing of the API's shape without the token
            }
            try await client.execute(uri: "/metrics", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/healthz", method: .get) { r in #expect(r.status == .ok) }
        }
    }

    @Test func listResponsesStopAtTheByteBudget() async throws {
        let timelines = InMemoryTimelines()
        for i in 0..<10 { await timelines.add(Fixtures.readyStart(uid: "uid-\(i)", created: Fixtures.t0 + Int64(i))) }
        let one = Fixtures.readyStart().json().rendered().utf8.count
        let responder = APIResponder(configuration: .init(maxResponseBytes: one * 3), metrics: Fixtures.registry(),
                                     timelines: timelines, readiness: Readiness())
        let app = try APIServer.application(responder: responder, listen: ListenAddress(host: "127.0.0.1", port: 0))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/pods?limit=10", method: .get) { r in
                let body = try Self.json(r)
                let n = body["items"]?.arrayValue?.count ?? 0
                #expect(n >= 1 && n < 10)
                #expect(body["nextOffset"]?.int64Value == Int64(n))
            }
        }
    }

    @Test func badPercentEscapesAreRejected() async throws {
        try await Self.app(traces: 1).test(.router) { client in
            for path in ["/v1/pods/uid%2", "/v1/pods/uid%zz", "/v1/images/sha256%3/profile"] {
                try await client.execute(uri: path, method: .get) { r in
                    #expect(r.status == .badRequest, "\(path)")
                }
            }
        }
    }

    @Test func inMemoryTimelinesKeepTheNewestUpToCapacity() async {
        let timelines = InMemoryTimelines(capacity: 3)
        for i in [4, 0, 2, 1, 3] {
            await timelines.add(Fixtures.readyStart(uid: "uid-\(i)", created: Fixtures.t0 + Int64(i)))
        }
        #expect(await timelines.recent(limit: 10, offset: 0).map(\.pod.uid) == ["uid-4", "uid-3", "uid-2"])
        await timelines.add(Fixtures.readyStart(uid: "uid-3", name: "again", created: Fixtures.t0 + 3))
        #expect(await timelines.pod(uid: "uid-3")?.pod.name == "again")
        #expect(await timelines.recent(limit: 10, offset: 0).count == 3)
    }

    @Test func listenAddressParsing() throws {
        #expect(try ListenAddress(parsing: "0.0.0.0:9464") == ListenAddress(host: "0.0.0.0", port: 9464))
        #expect(try ListenAddress(parsing: ":9464") == ListenAddress(host: "0.0.0.0", port: 9464))
        #expect(try ListenAddress(parsing: "[::1]:80") == ListenAddress(host: "::1", port: 80))
        for bad in ["9464", "host:", "host:99999", "::1:80", "[::1]80"] {
            #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: bad) }
        }
    }

    /// The one real-socket test over plain HTTP: the same app, through the kernel's TCP stack.
    @Test func servesOverARealSocket() async throws {
        try await Self.app().test(.live) { client in
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("podstart_build_info{revision=\"unknown\",version=\"0.1.0\"} 1"))
            }
        }
    }
}
