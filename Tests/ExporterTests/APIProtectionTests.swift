@testable import Exporter
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOSSL
import PodstartCore
import PodstartTestSupport
import Synchronization
import Testing

/// A decision fixed by the test, to check how each one is answered.
struct FixedAuthorizer: APIAuthorizer {
    let decision: APIAccess
    func access(bearerToken: String?, path: String) async -> APIAccess { decision }
}

/// Timelines that hold every `recent` call until the test opens the gate.
actor GatedTimelines: TimelineProvider {
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var open = false
    private(set) var entered = 0

    func recent(limit: Int, offset: Int) async throws -> [PodStartTrace] {
        entered += 1
        if !open { await withCheckedContinuation { waiting.append($0) } }
        return [Fixtures.readyStart()]
    }
    func pod(uid: String) async throws -> PodStartTrace? { nil }
    func images(limit: Int, offset: Int) async throws -> [ImageSummary] { [] }
    func release() {
        open = true
        waiting.forEach { $0.resume() }
        waiting.removeAll()
    }
}

@Suite("Protecting /v1")
struct APIProtectionTests {
    static func app(_ configuration: APIResponder.Configuration, metrics: MetricsRegistry = Fixtures.registry(),
                    timelines: any TimelineProvider = InMemoryTimelines()) throws -> Application<APIResponder> {
        let responder = APIResponder(configuration: configuration, metrics: metrics, timelines: timelines, readiness: Readiness())
        return try APIServer.application(responder: responder, listen: ListenAddress(host: "127.0.0.1", port: 0))
    }

    @Test func eachDecisionHasItsStatusAndIsCountedWhileMetricsAndHealthStayOpen() async throws {
        let cases: [(APIAccess, HTTPResponse.Status, String?)] = [
            (.allowed, .ok, nil),
            (.unauthenticated(reason: "who?"), .unauthorized, "unauthenticated"),
            (.forbidden(reason: "no"), .forbidden, "forbidden"),
            (.unavailable(reason: "API server down"), .serviceUnavailable, "unavailable"),
        ]
        for (decision, status, reason) in cases {
            let metrics = Fixtures.registry()
            try await Self.app(.init(authorizer: FixedAuthorizer(decision: decision)), metrics: metrics).test(.router) { client in
                try await client.execute(uri: "/v1/pods", method: .get, headers: [.authorization: "Bearer t"]) { r in
                    #expect(r.status == status, "\(decision)")
                    if status == .unauthorized { #expect(r.headers[.wwwAuthenticate] == "Bearer realm=\"podstart\"") }
                    if status == .serviceUnavailable { #expect(r.headers[.retryAfter] == "5") }
                }
                try await client.execute(uri: "/metrics", method: .get) { r in
                    #expect(r.status == .ok)
                    let text = String(buffer: r.body)
                    for other in ["forbidden", "overloaded", "unauthenticated", "unavailable"] {
                        #expect(text.contains("podstart_api_requests_refused_total{reason=\"\(other)\"} \(other == reason ? 1 : 0)\n"), "\(other)")
                    }
                }
                try await client.execute(uri: "/healthz", method: .get) { r in #expect(r.status == .ok) }
            }
        }
    }

    @Test func withoutAuthenticationV1AnswersLoopbackPeersOnly() async throws {
        #expect(APIResponder.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(APIResponder.isLoopback(try SocketAddress(ipAddress: "127.3.4.5", port: 1)))
        #expect(APIResponder.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(APIResponder.isLoopback(try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 1)))
        #expect(!APIResponder.isLoopback(try SocketAddress(ipAddress: "10.244.1.7", port: 1)))
        #expect(!APIResponder.isLoopback(try SocketAddress(ipAddress: "fd00::7", port: 1)))
        #expect(!APIResponder.isLoopback(try SocketAddress(ipAddress: "::ffff:10.0.0.1", port: 1)))
        #expect(!APIResponder.isLoopback(nil))
        // a real client on 127.0.0.1 is served
        try await Self.app(.init(v1LoopbackOnly: true)).test(.live) { client in
            try await client.execute(uri: "/v1/pods", method: .get) { r in #expect(r.status == .ok) }
        }
        // a peer whose address is not loopback (the router test's channel has none) is refused, /metrics is not
        try await Self.app(.init(v1LoopbackOnly: true)).test(.router) { client in
            try await client.execute(uri: "/v1/pods", method: .get) { r in
                #expect(r.status == .forbidden)
                #expect(String(buffer: r.body).contains("--api-auth"))
            }
            try await client.execute(uri: "/metrics", method: .get) { r in #expect(r.status == .ok) }
        }
        #expect(ListenAddress(host: "127.0.0.1", port: 1).isLoopback && ListenAddress(host: "::1", port: 1).isLoopback)
        #expect(!ListenAddress(host: "0.0.0.0", port: 1).isLoopback && !ListenAddress(host: "::", port: 1).isLoopback)
    }

    @Test func requestsPastTheConcurrencyLimitAreRefusedWith429UntilPermitsComeBack() async throws {
        let timelines = GatedTimelines()
        let metrics = Fixtures.registry()
        try await Self.app(.init(maxConcurrentRequests: 2), metrics: metrics, timelines: timelines).test(.router) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<2 {
                    group.addTask { try await client.execute(uri: "/v1/pods?limit=1", method: .get) { $0.status } }
                }
                while await timelines.entered < 2 { try await Task.sleep(for: .milliseconds(10)) }
                // both permits are held by requests waiting on the store
                try await client.execute(uri: "/v1/pods?limit=1", method: .get) { r in
                    #expect(r.status == .tooManyRequests)
                    #expect(r.headers[.retryAfter] == "1")
                }
                try await client.execute(uri: "/healthz", method: .get) { r in #expect(r.status == .ok) }
                await timelines.release()
                for try await status in group { #expect(status == .ok) }
            }
            // the permits came back with the written bodies
            for _ in 0..<5 {
                try await client.execute(uri: "/v1/pods?limit=1", method: .get) { r in #expect(r.status == .ok) }
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(String(buffer: r.body).contains("podstart_api_requests_refused_total{reason=\"overloaded\"} 1\n"))
            }
        }
    }

    @Test func aPermitIsReleasedWhenItsResponseIsDroppedUnwritten() {
        let limiter = ConcurrencyLimiter(limit: 1)
        do {
            let permit = limiter.tryAcquire()
            #expect(permit != nil)
            #expect(limiter.tryAcquire() == nil)
            withExtendedLifetime(permit) {}
        }
        #expect(limiter.current == 0)
        #expect(limiter.tryAcquire() != nil)
    }

    @Test func listsAreFetchedPageByPageAndStillGiveEveryItemOnce() async throws {
        let timelines = InMemoryTimelines()
        for i in 0..<60 { await timelines.add(Fixtures.readyStart(uid: "uid-\(i)", created: Fixtures.t0 + Int64(i) * Fixtures.s)) }
        try await Self.app(.init(pageSize: 7), timelines: timelines).test(.router) { client in
            var seen: [String] = []
            var offset = 0
            while true {
                let next = try await client.execute(uri: "/v1/pods?limit=25&offset=\(offset)", method: .get) { r -> Int64? in
                    let body = try JSON.parse(String(buffer: r.body))
                    let items = body["items"]?.arrayValue ?? []
                    seen += items.compactMap { $0["pod"]?["uid"]?.stringValue }
                    return body["nextOffset"]?.int64Value
                }
                guard let next else { break }
                offset = Int(next)
            }
            #expect(seen == (0..<60).reversed().map { "uid-\($0)" })
            // exactly a page's worth: no nextOffset when nothing follows
            try await client.execute(uri: "/v1/pods?limit=7&offset=53", method: .get) { r in
                let body = try JSON.parse(String(buffer: r.body))
                #expect(body["items"]?.arrayValue?.count == 7)
                #expect(body["nextOffset"] == .null)
            }
        }
    }
}

@Suite("Credential files reloaded")
struct CredentialReloadTests {
    @Test func aChangedTokenFileIsUsedAtTheNextRequestAndABrokenOneKeepsTheOld() async throws {
        let dir = try Command.temporaryDirectory("podstart-token")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/token"
        try "first-token\n".write(toFile: path, atomically: true, encoding: .utf8)
        let metrics = Fixtures.registry()
        let authorizer = try StaticTokenAuthorizer(tokenFile: path, onReloadError: { _ in metrics.recordAPIReloadError(file: "token") })
        try await APIProtectionTests.app(.init(authorizer: authorizer), metrics: metrics).test(.router) { client in
            func status(_ token: String) async throws -> HTTPResponse.Status {
                try await client.execute(uri: "/v1/pods", method: .get, headers: [.authorization: "Bearer \(token)"]) { $0.status }
            }
            #expect(try await status("first-token") == .ok)
            // rotated the Kubernetes way: a new file renamed over the old one
            try "second-token\n".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try await status("second-token") == .ok)
            #expect(try await status("first-token") == .unauthorized)
            // a broken new version (empty, two words) keeps the last good token in service
            try "".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try await status("second-token") == .ok)
            #expect(try await status("second-token") == .ok)
            try "two words\n".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try await status("second-token") == .ok)
            try await client.execute(uri: "/metrics", method: .get) { r in
                // once per broken version, not once per request
                #expect(String(buffer: r.body).contains("podstart_api_reload_errors_total{file=\"token\"} 2\n"))
            }
            try "third-token".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try await status("third-token") == .ok)
        }
    }

    /// The subject of the certificate a fresh TLS 1.2+ connection is served.
    static func servedCommonName(port: Int, caFile: String) throws -> String {
        let (status, output) = try Command.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-servername", "localhost",
                                                                    "-CAfile", caFile], stdin: "")
        // s_client may exit 1 on the server's close after stdin ends; the handshake's verdict is in its output
        guard output.contains("Verify return code: 0 (ok)") else { throw TestFailure("openssl s_client did not verify (\(status)): \(output)") }
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("subject=") }) else {
            throw TestFailure("no subject in: \(output)")
        }
        return String(line)
    }

    @Test func aRotatedCertificateIsServedToTheNextConnectionAndABrokenOneKeepsTheOld() async throws {
        let dir = try Command.temporaryDirectory("podstart-tls-reload")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sub in ["live", "a", "b"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        let a = try TLSTests.makeCertificates(in: dir + "/a")
        let b = try TLSTests.makeCertificates(in: dir + "/b")
        let cert = dir + "/live/tls.crt", key = dir + "/live/tls.key"
        func install(_ pair: (ca: String, cert: String, key: String)) throws {
            for (from, to) in [(pair.cert, cert), (pair.key, key)] {
                try? FileManager.default.removeItem(atPath: to + ".new")
                try FileManager.default.copyItem(atPath: from, toPath: to + ".new")
                _ = rename(to + ".new", to)
            }
        }
        try install(a)
        let metrics = Fixtures.registry()
        let responder = APIResponder(metrics: metrics, timelines: InMemoryTimelines(), readiness: Readiness())
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = try APIServer.application(responder: responder, listen: ListenAddress(host: "127.0.0.1", port: 0),
                                            tls: TLSFiles(certificateChainPath: cert, privateKeyPath: key),
                                            onServerRunning: { portContinuation.yield($0) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var it = ports.makeAsyncIterator()
            guard let port = await it.next() else { throw TestFailure("the server never reported its port") }
            let first = try Self.servedCommonName(port: port, caFile: a.ca)
            // rotated: certificate B, signed by another CA, is served to the next connection
            try install(b)
            #expect(throws: (any Error).self) { try Self.servedCommonName(port: port, caFile: a.ca) }
            let second = try Self.servedCommonName(port: port, caFile: b.ca)
            #expect(first.contains("localhost") && second.contains("localhost"))
            // garbage: B stays in service
            try "not a certificate".write(toFile: cert, atomically: true, encoding: .utf8)
            _ = try Self.servedCommonName(port: port, caFile: b.ca)
            #expect(metrics.render(format: .text).contains("podstart_api_reload_errors_total{file=\"tls\"} 1\n"))
            // and a good pair after that is taken again
            try install(a)
            _ = try Self.servedCommonName(port: port, caFile: a.ca)
            group.cancelAll()
        }
    }
}
