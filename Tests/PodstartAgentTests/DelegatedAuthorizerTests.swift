import Exporter
import Foundation
import HTTPTransport
@testable import PodstartAgent
import PodstartCore
import PodstartTestSupport
import Synchronization
import Testing

@Suite("Delegated /v1 authorization (TokenReview + SubjectAccessReview)")
struct DelegatedAuthorizerTests {
    static func withAuthorizer(_ configuration: DelegatedAuthorizer.Configuration = .init(),
                               _ body: (DelegatedAuthorizer, ReviewingAPIServer) async throws -> Void) async throws {
        let pki = try TestPKI.make()
        defer { try? FileManager.default.removeItem(atPath: pki.directory) }
        let api = ReviewingAPIServer()
        let server = try await TestHTTPSServer(pki: pki, handle: { api.handle($0) })
        let endpoint = try HTTPEndpoint(url: "https://127.0.0.1:\(server.port)", bearerToken: ReviewingAPIServer.agentToken, caFile: pki.caFile)
        let authorizer = DelegatedAuthorizer(transport: try HTTPTransport(endpoint), configuration: configuration)
        do {
            try await body(authorizer, api)
        } catch {
            try? await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    @Test func anAuthorizedServiceAccountIsAllowedWithTheReviewsTheAPIServerExpects() async throws {
        try await Self.withAuthorizer { authorizer, api in
            #expect(await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") == .allowed)
            let reviews = api.reviews.withLock { $0 }
            #expect(reviews.map(\.kind) == ["TokenReview", "SubjectAccessReview"])
            #expect(reviews[0].spec["token"]?.stringValue == ReviewingAPIServer.readerToken)
            let sar = reviews[1].spec
            #expect(sar["user"]?.stringValue == ReviewingAPIServer.reader)
            #expect(sar["uid"]?.stringValue == "4f1c2a3b-0000-4000-8000-00000000abcd")
            #expect(sar["groups"]?.arrayValue?.compactMap(\.stringValue) == ["system:serviceaccounts", "system:authenticated"])
            #expect(sar["extra"]?["authentication.kubernetes.io/pod-name"]?.arrayValue?.first?.stringValue == "prometheus-0")
            #expect(sar["nonResourceAttributes"]?["path"]?.stringValue == "/v1/pods")
            #expect(sar["nonResourceAttributes"]?["verb"]?.stringValue == "get")
            // the reviews go with the agent's own credential, never the client's
            #expect(api.agentCredentials.withLock { $0 }.allSatisfy { $0 == "Bearer \(ReviewingAPIServer.agentToken)" })
        }
    }

    @Test func aTokenTheAPIServerRejectsIsUnauthenticatedAndAMissingTokenIsNeverSent() async throws {
        try await Self.withAuthorizer { authorizer, api in
            guard case .unauthenticated(let reason) = await authorizer.access(bearerToken: "forged", path: "/v1/pods") else {
                Issue.record("a rejected token was not unauthenticated")
                return
            }
            #expect(reason.contains("invalid bearer token"))
            guard case .unauthenticated = await authorizer.access(bearerToken: nil, path: "/v1/pods") else {
                Issue.record("no token was not unauthenticated")
                return
            }
            #expect(api.count("TokenReview") == 1)
            #expect(api.count("SubjectAccessReview") == 0)
        }
    }

    @Test func aKnownUserWithoutPermissionIsForbidden() async throws {
        try await Self.withAuthorizer { authorizer, _ in
            guard case .forbidden(let reason) = await authorizer.access(bearerToken: ReviewingAPIServer.strangerToken, path: "/v1/pods") else {
                Issue.record("a user without RBAC was not forbidden")
                return
            }
            #expect(reason.contains("system:serviceaccount:default:stranger"))
        }
    }

    @Test func anAPIServerThatCannotAnswerIsUnavailableNeverAllowedAndNotCached() async throws {
        try await Self.withAuthorizer { authorizer, api in
            api.mode.withLock { $0 = .serverError }
            guard case .unavailable = await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") else {
                Issue.record("a 500 from the API server did not make the request unavailable")
                return
            }
            api.mode.withLock { $0 = .garbage }
            guard case .unavailable = await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") else {
                Issue.record("a body that is no review did not make the request unavailable")
                return
            }
            // the failures were not remembered: once the API server answers, the token works
            api.mode.withLock { $0 = .answer }
            #expect(await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") == .allowed)
        }
    }

    @Test func anUnreachableAPIServerIsUnavailable() async throws {
        let endpoint = try HTTPEndpoint(url: "https://127.0.0.1:\(try Command.freePort())", bearerToken: "x", timeout: .seconds(5))
        let authorizer = DelegatedAuthorizer(transport: try HTTPTransport(endpoint))
        guard case .unavailable = await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") else {
            Issue.record("a closed port did not make the request unavailable")
            return
        }
    }

    @Test func aBurstOfRequestsWithOneTokenIsOnePairOfReviews() async throws {
        try await Self.withAuthorizer { authorizer, api in
            let decisions = await withTaskGroup(of: APIAccess.self) { group in
                for _ in 0..<50 { group.addTask { await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") } }
                return await group.reduce(into: [APIAccess]()) { $0.append($1) }
            }
            #expect(decisions.count == 50 && decisions.allSatisfy { $0 == .allowed })
            #expect(api.count("TokenReview") == 1)
            #expect(api.count("SubjectAccessReview") == 1)
            // another path: the token is known, its permission on that path is asked once
            #expect(await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/images") == .allowed)
            #expect(api.count("TokenReview") == 1)
            #expect(api.count("SubjectAccessReview") == 2)
        }
    }

    @Test func expiredDecisionsAreReviewedAgain() async throws {
        try await Self.withAuthorizer(.init(ttl: .zero)) { authorizer, api in
            for _ in 0..<3 { #expect(await authorizer.access(bearerToken: ReviewingAPIServer.readerToken, path: "/v1/pods") == .allowed) }
            #expect(api.count("TokenReview") == 3)
            #expect(api.count("SubjectAccessReview") == 3)
        }
    }

    @Test func theCacheNeverHoldsMoreThanItsBoundAndDropsExpiredEntriesFirst() {
        let t0 = ContinuousClock.now
        var cache = BoundedTTLCache<String, Int>(maxEntries: 3, ttl: .seconds(10))
        cache.insert(1, for: "a", now: t0)
        cache.insert(2, for: "b", now: t0 + .seconds(5))
        cache.insert(3, for: "c", now: t0 + .seconds(6))
        // full: "a" has expired at t0+11 s and goes, the others stay
        cache.insert(4, for: "d", now: t0 + .seconds(11))
        #expect(cache.count == 3)
        #expect(cache.value(for: "a", now: t0 + .seconds(11)) == nil)
        #expect(cache.value(for: "b", now: t0 + .seconds(11)) == 2)
        // full, nothing expired: the oldest ("b") goes
        cache.insert(5, for: "e", now: t0 + .seconds(12))
        #expect(cache.count == 3)
        #expect(cache.value(for: "b", now: t0 + .seconds(12)) == nil)
        #expect(cache.value(for: "e", now: t0 + .seconds(12)) == 5)
        for i in 0..<1000 { cache.insert(i, for: "k\(i)", now: t0 + .seconds(13)) }
        #expect(cache.count == 3)
        #expect(cache.value(for: "k999", now: t0 + .seconds(13)) == 999)
        #expect(cache.value(for: "k999", now: t0 + .seconds(23)) == nil)
    }

    @Test func reviewBodiesParseAsTheAPIReferenceShowsThem() throws {
        let ok = try KubernetesReview.subjectAccessReviewResult(Array(#"{"status":{"allowed":false,"denied":true,"reason":"no","evaluationError":"bad"}}"#.utf8))
        #expect(ok.allowed == false && ok.reason == "no; bad")
        #expect(throws: KubernetesReview.MalformedReview.self) { try KubernetesReview.subjectAccessReviewResult(Array(#"{"status":{}}"#.utf8)) }
        #expect(throws: KubernetesReview.MalformedReview.self) {
            try KubernetesReview.tokenReviewResult(Array(#"{"status":{"authenticated":true,"user":{}}}"#.utf8))
        }
        let request = try JSON.parse(KubernetesReview.tokenReviewBody(token: "t\"k"))
        #expect(request["apiVersion"]?.stringValue == "authentication.k8s.io/v1")
        #expect(request["kind"]?.stringValue == "TokenReview")
        #expect(request["spec"]?["token"]?.stringValue == "t\"k")
    }
}
