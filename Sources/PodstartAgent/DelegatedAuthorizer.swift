import Exporter
import HTTPTransport
import Logging
import NIOHTTP1
import PodstartCore

/// Who the API server says a token belongs to (a TokenReview's `status.user`).
public struct ReviewedUser: Sendable, Hashable {
    public var username: String
    public var uid: String
    public var groups: [String]
    /// `status.user.extra`, keys sorted.
    public var extra: [String: [String]]
}

/// The request and response bodies of the two reviews, as the Kubernetes API reference gives
/// them (`authentication.k8s.io/v1` TokenReview, `authorization.k8s.io/v1` SubjectAccessReview),
/// and as kube-rbac-proxy and the apiserver's delegating authenticator/authorizer send them.
public enum KubernetesReview {
    public static let tokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews"
    public static let subjectAccessReviewPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

    /// `{"apiVersion":…,"kind":"TokenReview","spec":{"token":…}}`. No audiences: the token is
    /// checked for the API server's own audience, as `kubectl` and service accounts send it.
    public static func tokenReviewBody(token: String) -> [UInt8] {
        Array(JSON.object([("apiVersion", .string("authentication.k8s.io/v1")), ("kind", .string("TokenReview")),
                           ("spec", .object([("token", .string(token))]))]).rendered().utf8)
    }

    public enum TokenReviewResult: Sendable, Equatable {
        case authenticated(ReviewedUser)
        case rejected(reason: String)
    }

    public struct MalformedReview: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `status.authenticated` and `status.user`; `status.error` is the reason of a rejection.
    public static func tokenReviewResult(_ body: [UInt8]) throws -> TokenReviewResult {
        let json = try JSON.parse(body)
        guard let status = json["status"] else { throw MalformedReview(description: "a TokenReview without status") }
        guard status["authenticated"]?.boolValue == true else {
            let error = status["error"]?.stringValue ?? ""
            return .rejected(reason: error.isEmpty ? "the API server did not accept the bearer token" : "the API server did not accept the bearer token: \(error)")
        }
        guard let user = status["user"], let name = user["username"]?.stringValue, !name.isEmpty else {
            throw MalformedReview(description: "an authenticated TokenReview without status.user.username")
        }
        var extra: [String: [String]] = [:]
        for (key, values) in user["extra"]?.objectValue ?? [] {
            extra[key] = (values.arrayValue ?? []).compactMap(\.stringValue)
        }
        return .authenticated(ReviewedUser(username: name, uid: user["uid"]?.stringValue ?? "",
                                           groups: (user["groups"]?.arrayValue ?? []).compactMap(\.stringValue), extra: extra))
    }

    /// `spec.nonResourceAttributes {path, verb}` for `user`: RBAC grants it with a ClusterRole
    /// rule `nonResourceURLs: ["/v1", "/v1/*"], verbs: [get]` (as metrics-server's /metrics).
    public static func subjectAccessReviewBody(user: ReviewedUser, verb: String, path: String) -> [UInt8] {
        var spec: [(String, JSON)] = [("user", .string(user.username))]
        if !user.uid.isEmpty { spec.append(("uid", .string(user.uid))) }
        spec.append(("groups", .array(user.groups.map { .string($0) })))
        if !user.extra.isEmpty {
            spec.append(("extra", .object(user.extra.sorted { $0.key < $1.key }.map { ($0.key, .array($0.value.map { .string($0) })) })))
        }
        spec.append(("nonResourceAttributes", .object([("path", .string(path)), ("verb", .string(verb))])))
        return Array(JSON.object([("apiVersion", .string("authorization.k8s.io/v1")), ("kind", .string("SubjectAccessReview")),
                                  ("spec", .object(spec))]).rendered().utf8)
    }

    /// `status.allowed`; when not allowed, `status.reason` (and `evaluationError`) say why.
    public static func subjectAccessReviewResult(_ body: [UInt8]) throws -> (allowed: Bool, reason: String) {
        let json = try JSON.parse(body)
        guard let status = json["status"], let allowed = status["allowed"]?.boolValue else {
            throw MalformedReview(description: "a SubjectAccessReview without status.allowed")
        }
        let reason = [status["reason"]?.stringValue, status["evaluationError"]?.stringValue].compactMap { $0 }.filter { !$0.isEmpty }
        return (allowed, reason.joined(separator: "; "))
    }
}

/// `/v1` authorized the Kubernetes way (`--api-auth delegated`, as kube-rbac-proxy and
/// metrics-server do): the request's bearer token goes to the API server in a TokenReview, and
/// the user it names in a SubjectAccessReview for verb `get` on the non-resource URL of the
/// request's path. Decisions are cached for a few seconds (allowed and denied alike, never a
/// failure to ask), in bounded maps; concurrent requests with the same token (and path) share
/// one review in flight, so a burst of requests is one pair of reviews. An API server that
/// cannot be asked, or answers anything but a review, gives `unavailable` (503), never allowed.
public actor DelegatedAuthorizer: APIAuthorizer {
    public struct Configuration: Sendable {
        /// How long a TokenReview's and a SubjectAccessReview's answer is reused.
        public var ttl: Duration
        /// Entries of each cache (tokens; user+path decisions).
        public var maxEntries: Int
        public init(ttl: Duration = .seconds(10), maxEntries: Int = 1024) {
            self.ttl = ttl
            self.maxEntries = max(1, maxEntries)
        }
    }

    private let transport: HTTPTransport
    private let configuration: Configuration
    private let logger: Logger
    private var tokens: BoundedTTLCache<String, KubernetesReview.TokenReviewResult>
    private var decisions: BoundedTTLCache<DecisionKey, APIAccess>
    private var tokensInFlight: [String: Task<Result<KubernetesReview.TokenReviewResult, ReviewFailure>, Never>] = [:]
    private var decisionsInFlight: [DecisionKey: Task<APIAccess, Never>] = [:]
    /// Reviews sent so far (both kinds), for tests and the log.
    public private(set) var reviewsSent = 0

    struct DecisionKey: Hashable, Sendable {
        var user: ReviewedUser
        var path: String
    }

    struct ReviewFailure: Error {
        var reason: String
    }

    /// `transport` talks to the API server with the agent's own credentials (in-cluster service
    /// account or --kubeconfig); its identity needs `create` on tokenreviews and
    /// subjectaccessreviews (the `system:auth-delegator` ClusterRole).
    public init(transport: HTTPTransport, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "podstart.api")) {
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
        tokens = BoundedTTLCache(maxEntries: configuration.maxEntries, ttl: configuration.ttl)
        decisions = BoundedTTLCache(maxEntries: configuration.maxEntries, ttl: configuration.ttl)
    }

    public func access(bearerToken: String?, path: String) async -> APIAccess {
        guard let token = bearerToken else {
            return .unauthenticated(reason: "a bearer token is required (a Kubernetes service account or user token)")
        }
        let user: ReviewedUser
        switch await authenticate(token) {
        case .failure(let failure): return .unavailable(reason: failure.reason)
        case .success(.rejected(let reason)): return .unauthenticated(reason: reason)
        case .success(.authenticated(let u)): user = u
        }
        return await authorize(DecisionKey(user: user, path: path))
    }

    private func authenticate(_ token: String) async -> Result<KubernetesReview.TokenReviewResult, ReviewFailure> {
        if let known = tokens.value(for: token) { return .success(known) }
        if let running = tokensInFlight[token] { return await running.value }
        let task = Task { await self.sendTokenReview(token) }
        tokensInFlight[token] = task
        let result = await task.value
        tokensInFlight[token] = nil
        if case .success(let answer) = result { tokens.insert(answer, for: token) }
        return result
    }

    private func authorize(_ key: DecisionKey) async -> APIAccess {
        if let known = decisions.value(for: key) { return known }
        if let running = decisionsInFlight[key] { return await running.value }
        let task = Task { await self.sendSubjectAccessReview(key) }
        decisionsInFlight[key] = task
        let access = await task.value
        decisionsInFlight[key] = nil
        if case .unavailable = access {} else { decisions.insert(access, for: key) }
        return access
    }

    private func sendTokenReview(_ token: String) async -> Result<KubernetesReview.TokenReviewResult, ReviewFailure> {
        reviewsSent += 1
        do {
            let body = try await post(KubernetesReview.tokenReviewPath, KubernetesReview.tokenReviewBody(token: token))
            return .success(try KubernetesReview.tokenReviewResult(body))
        } catch {
            logger.warning("TokenReview failed", metadata: ["error": "\(error)"])
            return .failure(ReviewFailure(reason: "TokenReview failed: \(error)"))
        }
    }

    private func sendSubjectAccessReview(_ key: DecisionKey) async -> APIAccess {
        reviewsSent += 1
        do {
            let body = try await post(KubernetesReview.subjectAccessReviewPath,
                                      KubernetesReview.subjectAccessReviewBody(user: key.user, verb: "get", path: key.path))
            let (allowed, reason) = try KubernetesReview.subjectAccessReviewResult(body)
            if allowed { return .allowed }
            return .forbidden(reason: "\(key.user.username) may not get \(key.path)" + (reason.isEmpty ? "" : ": \(reason)"))
        } catch {
            logger.warning("SubjectAccessReview failed", metadata: ["error": "\(error)"])
            return .unavailable(reason: "SubjectAccessReview failed: \(error)")
        }
    }

    private func post(_ path: String, _ body: [UInt8]) async throws -> [UInt8] {
        let response = try await transport.send(.POST, path, headers: ["Content-Type": "application/json", "Accept": "application/json"],
                                                body: body, maxBodyBytes: 1 << 20)
        guard (200..<300).contains(response.status) else {
            throw HTTPTransportError.status(code: response.status, url: response.url,
                                            body: String(decoding: response.body.prefix(512), as: UTF8.self))
        }
        return response.body
    }
}

/// A map whose entries expire after `ttl` and that never holds more than `maxEntries`: expired
/// entries go first, then the oldest.
struct BoundedTTLCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let maxEntries: Int
    let ttl: Duration
    private var entries: [Key: (value: Value, expires: ContinuousClock.Instant, sequence: UInt64)] = [:]
    private var nextSequence: UInt64 = 0

    init(maxEntries: Int, ttl: Duration) {
        self.maxEntries = max(1, maxEntries)
        self.ttl = ttl
    }

    var count: Int { entries.count }

    mutating func value(for key: Key, now: ContinuousClock.Instant = .now) -> Value? {
        guard let entry = entries[key] else { return nil }
        guard entry.expires > now else {
            entries[key] = nil
            return nil
        }
        return entry.value
    }

    mutating func insert(_ value: Value, for key: Key, now: ContinuousClock.Instant = .now) {
        if entries[key] == nil, entries.count >= maxEntries {
            entries = entries.filter { $0.value.expires > now }
            if entries.count >= maxEntries, let oldest = entries.min(by: { $0.value.sequence < $1.value.sequence })?.key {
                entries[oldest] = nil
            }
        }
        nextSequence &+= 1
        entries[key] = (value, now + ttl, nextSequence)
    }
}
