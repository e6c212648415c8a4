import Hummingbird
import NIOCore
import Logging
import PodstartCore
import TraceViews
import Synchronization

/// Whether the agent is ready to serve: `/readyz` answers 503 with the reason until the agent
/// calls `markReady()` once its sources have started, and again while any failing condition
/// (the state store refusing saves) is set; the reason then names that condition.
public final class Readiness: Sendable {
    private struct State {
        var lifecycle: String?
        /// Failing conditions by name, with what is wrong (sorted by name when reported).
        var failing: [String: String] = [:]
    }
    private let state: Mutex<State>

    public init(notReadyReason: String = "sources have not started yet") {
        state = Mutex(State(lifecycle: notReadyReason))
    }

    public func markReady() { state.withLock { $0.lifecycle = nil } }
    public func markNotReady(reason text: String) { state.withLock { $0.lifecycle = text } }
    /// Sets (`failing` non-nil) or clears a condition the agent cannot serve truthfully under.
    public func setCondition(_ name: String, failing reason: String?) {
        state.withLock { $0.failing[name] = reason }
    }
    /// nil when ready.
    public var notReadyReason: String? {
        state.withLock { s in
            if let lifecycle = s.lifecycle { return lifecycle }
            guard !s.failing.isEmpty else { return nil }
            return s.failing.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        }
    }
}

/// An access profile rendered for `/v1/images/{digest}/profile?format=…`.
public struct ProfileDocument: Sendable {
    public var contentType: String
    public var body: String
    public init(contentType: String, body: String) {
        self.contentType = contentType
        self.body = body
    }
}

/// Renders an image's access profile (the AccessProfiles module plugs in here).
public protocol ProfileProvider: Sendable {
    /// nil when no profile exists for the image. Throw `APIError.badRequest` for a format it
    /// does not know. `digest` has been validated as `sha256:<64 lowercase hex>`.
    func profile(digest: String, format: String) async throws -> ProfileDocument?
}

/// An error the API reports as JSON: `{"error": message, "status": code}`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public init(status: HTTPResponse.Status, message: String) {
        self.status = status
        self.message = message
    }
    public static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
    public static func notFound(_ message: String) -> APIError { APIError(status: .notFound, message: message) }
    public var description: String { "\(status.code) \(message)" }
}

/// The agent's HTTP API: health, readiness, metrics and the recorded timelines. Everything
/// else is a JSON 404; only GET is served. No request value reaches the file system: the uid
/// and digest path segments are checked against strict patterns before any lookup, and lookups
/// go through `TimelineProvider` / `ProfileProvider` only.
/// A request's context with the peer's address (for the loopback-only rule of `/v1`).
public struct APIRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

public struct APIResponder: HTTPResponder {
    public typealias Context = APIRequestContext

    public struct Configuration: Sendable {
        /// Who may read `/v1/…` (a shared token, the API server's TokenReview and
        /// SubjectAccessReview, or anyone). `/metrics`, `/healthz` and `/readyz` stay open for
        /// scrapers and kubelet probes. nil: anyone.
        public var authorizer: (any APIAuthorizer)?
        /// `/v1` answers only peers on a loopback address (403 to others): what the agent does
        /// when no authentication is configured and it listens beyond loopback.
        public var v1LoopbackOnly: Bool
        public var defaultLimit: Int
        public var maxLimit: Int
        /// A list response stops adding items past this many bytes and says where to go on.
        public var maxResponseBytes: Int
        /// `/v1` requests served at once (their bodies included, until written); more get 429.
        public var maxConcurrentRequests: Int
        /// Traces decoded at a time while a list is rendered.
        public var pageSize: Int

        public init(authorizer: (any APIAuthorizer)? = nil, v1LoopbackOnly: Bool = false, defaultLimit: Int = 50, maxLimit: Int = 1000,
                    maxResponseBytes: Int = 8 << 20, maxConcurrentRequests: Int = 4, pageSize: Int = 32) {
            self.authorizer = authorizer
            self.v1LoopbackOnly = v1LoopbackOnly
            self.defaultLimit = defaultLimit
            self.maxLimit = maxLimit
            self.maxResponseBytes = maxResponseBytes
            self.maxConcurrentRequests = max(1, maxConcurrentRequests)
            self.pageSize = max(1, pageSize)
        }

        /// `/v1` requires `Authorization: Bearer <token>` (a fixed token; tests).
        public init(bearerToken: String?, maxResponseBytes: Int = 8 << 20, maxConcurrentRequests: Int = 4) {
            self.init(authorizer: bearerToken.map { try! StaticTokenAuthorizer(token: $0) }, maxResponseBytes: maxResponseBytes,
                      maxConcurrentRequests: maxConcurrentRequests)
        }
    }

    public let configuration: Configuration
    public let metrics: MetricsRegistry
    public let timelines: any TimelineProvider
    public let profiles: (any ProfileProvider)?
    public let readiness: Readiness
    public let logger: Logger
    let limiter: ConcurrencyLimiter

    public init(configuration: Configuration = Configuration(), metrics: MetricsRegistry, timelines: any TimelineProvider,
                profiles: (any ProfileProvider)? = nil, readiness: Readiness, logger: Logger = Logger(label: "podstart.api")) {
        self.configuration = configuration
        self.metrics = metrics
        self.timelines = timelines
        self.profiles = profiles
        self.readiness = readiness
        self.logger = logger
        limiter = ConcurrencyLimiter(limit: configuration.maxConcurrentRequests)
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request, peer: context.remoteAddress)
        } catch let error as APIError {
            return Self.error(error)
        } catch {
            logger.error("API request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Self.error(APIError(status: .internalServerError, message: "internal error; see the agent's log"))
        }
    }

    private func route(_ request: Request, peer: SocketAddress?) async throws -> Response {
        let path = request.uri.path
        let isAPI = path == "/v1" || path.hasPrefix("/v1/")
        var permit: ConcurrencyLimiter.Permit?
        if isAPI {
            if configuration.v1LoopbackOnly, !Self.isLoopback(peer) {
                metrics.recordAPIRefusal(.forbidden)
                return Self.error(APIError(status: .forbidden, message:
                    "/v1 is served to loopback clients only: the agent runs without API authentication (start it with --api-auth delegated or --api-auth token)"))
            }
            if let authorizer = configuration.authorizer {
                switch await authorizer.access(bearerToken: Self.bearerToken(request.headers[.authorization]), path: path) {
                case .allowed:
                    break
                case .unauthenticated(let reason):
                    metrics.recordAPIRefusal(.unauthenticated)
                    return Self.error(APIError(status: .unauthorized, message: reason), extra: [.wwwAuthenticate: "Bearer realm=\"podstart\""])
                case .forbidden(let reason):
                    metrics.recordAPIRefusal(.forbidden)
                    return Self.error(APIError(status: .forbidden, message: reason))
                case .unavailable(let reason):
                    metrics.recordAPIRefusal(.unavailable)
                    logger.warning("cannot authorize an API request", metadata: ["reason": "\(reason)"])
                    return Self.error(APIError(status: .serviceUnavailable, message: "the request cannot be authorized now: \(reason)"),
                                      extra: [.retryAfter: "5"])
                }
            }
            // After authentication, so an anonymous flood cannot take the permits of real clients.
            guard let granted = limiter.tryAcquire() else {
                metrics.recordAPIRefusal(.overloaded)
                return Self.error(APIError(status: .tooManyRequests,
                                           message: "\(limiter.limit) /v1 requests are being served already; retry shortly"),
                                  extra: [.retryAfter: "1"])
            }
            permit = granted
        }
        var response = try await routeAuthorized(request, path: path)
        if let permit { response.body = Self.holding(permit, response.body) }
        return response
    }

    /// The body, carrying the permit until it has been written (or dropped): the bytes of a
    /// response count against the limit until they left.
    private static func holding(_ permit: ConcurrencyLimiter.Permit, _ body: ResponseBody) -> ResponseBody {
        ResponseBody(contentLength: body.contentLength) { writer in
            withExtendedLifetime(permit) {}
            try await body.write(writer)
            withExtendedLifetime(permit) {}
        }
    }

    private func routeAuthorized(_ request: Request, path: String) async throws -> Response {
        let known = ["/healthz", "/readyz", "/metrics", "/v1/pods", "/v1/images"].contains(path)
            || path.hasPrefix("/v1/pods/") || path.hasPrefix("/v1/images/")
        guard known else { throw APIError.notFound("no such path: \(Self.truncated(path))") }
        guard request.method == .get else {
            return Self.error(APIError(status: .methodNotAllowed, message: "only GET is served"), extra: [.allow: "GET"])
        }
        let query = request.uri.queryParameters

        switch path {
        case "/healthz":
            return Self.json(.object([("status", .string("ok"))]))
        case "/readyz":
            if let reason = readiness.notReadyReason {
                return Self.json(.object([("status", .string("not ready")), ("reason", .string(reason))]), status: .serviceUnavailable)
            }
            return Self.json(.object([("status", .string("ready"))]))
        case "/metrics":
            let format = ExpositionFormat.negotiate(accept: request.headers[.accept])
            return Response(status: .ok, headers: [.contentType: format.contentType],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render(format: format))))
        case "/v1/pods":
            let (limit, offset) = try paging(limit: query["limit"], offset: query["offset"])
            return try await pagedList(limit: limit, offset: offset) { try await timelines.recent(limit: $0, offset: $1).map { $0.json() } }
        case "/v1/images":
            let (limit, offset) = try paging(limit: query["limit"], offset: query["offset"])
            return try await pagedList(limit: limit, offset: offset) { try await timelines.images(limit: $0, offset: $1).map { $0.json() } }
        default:
            break
        }

        if path.hasPrefix("/v1/pods/") {
            let uid = try Self.decodedSegment(path.dropFirst("/v1/pods/".count))
            guard Self.isValidKey(uid) else {
                throw APIError.badRequest("a pod UID is 1 to 128 characters from A-Z a-z 0-9 . _ : -")
            }
            let format = query["format"].map(String.init) ?? "json"
            guard format == "json" || format == "html" else { throw APIError.badRequest("format is json or html") }
            guard let trace = try await timelines.pod(uid: uid) else {
                throw APIError.notFound("no recorded start for pod \(uid)")
            }
            if format == "html" {
                // the page fetches nothing; say so to the browser too
                return Response(status: .ok, headers: [.contentType: TracePage.contentType,
                                                       .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'"],
                                body: ResponseBody(byteBuffer: ByteBuffer(string: TracePage.render(trace))))
            }
            return Self.json(trace.json())
        }

        // /v1/images/{digest}/profile
        let rest = path.dropFirst("/v1/images/".count).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 2, rest[1] == "profile" else { throw APIError.notFound("no such path: \(Self.truncated(path))") }
        let digest = try Self.decodedSegment(rest[0])
        guard Self.isValidDigest(digest) else {
            throw APIError.badRequest("an image digest is sha256: followed by 64 lowercase hex digits")
        }
        let format = String(query["format"] ?? "json")
        guard !format.isEmpty, format.utf8.count <= 32,
              format.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
        else { throw APIError.badRequest("format is a name such as json, estargz, nydus or overlaybd") }
        guard let profiles else {
            throw APIError(status: .notImplemented, message: "access profiles are not available in this agent")
        }
        guard let document = try await profiles.profile(digest: digest, format: format) else {
            throw APIError.notFound("no access profile for image \(digest)")
        }
        return Response(status: .ok, headers: [.contentType: document.contentType],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: document.body)))
    }

    private func paging(limit limitText: Substring?, offset offsetText: Substring?) throws -> (Int, Int) {
        var limit = configuration.defaultLimit
        if let text = limitText {
            guard let v = Int(text), v >= 1, v <= configuration.maxLimit else {
                throw APIError.badRequest("limit must be an integer from 1 to \(configuration.maxLimit)")
            }
            limit = v
        }
        var offset = 0
        if let text = offsetText {
            guard let v = Int(text), v >= 0, v <= 10_000_000 else {
                throw APIError.badRequest("offset must be an integer from 0 to 10000000")
            }
            offset = v
        }
        return (limit, offset)
    }

    /// `{"items": […], "limit": n, "offset": m, "nextOffset": k|null}`, fetched `pageSize` items at
    /// a time so that at most one page is decoded at once. Items stop early when the body would
    /// pass `maxResponseBytes`; `nextOffset` then points at the first one left out.
    private func pagedList(limit: Int, offset: Int, fetch: (_ limit: Int, _ offset: Int) async throws -> [JSON]) async throws -> Response {
        var body = ByteBuffer()
        body.writeString("{\"items\":[")
        var count = 0
        var more = false
        pages: while count < limit {
            // one more than needed on the last page tells whether anything follows
            let want = min(configuration.pageSize, limit - count)
            let page = try await fetch(want + (count + want == limit ? 1 : 0), offset + count)
            for (i, item) in page.enumerated() {
                if count == limit || i == want {
                    more = true
                    break pages
                }
                let rendered = item.rendered()
                if count > 0, body.readableBytes + rendered.utf8.count + 1 > configuration.maxResponseBytes {
                    more = true
                    break pages
                }
                if count > 0 { body.writeString(",") }
                body.writeString(rendered)
                count += 1
            }
            if page.count < want { break }
        }
        let next: JSON = more ? .int(Int64(offset + count)) : .null
        body.writeString("],\"limit\":\(limit),\"offset\":\(offset),\"nextOffset\":\(next.rendered())}")
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body))
    }

    // MARK: helpers

    static func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: value.rendered())))
    }

    static func error(_ error: APIError, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        let body = JSON.object([("error", .string(error.message)), ("status", .int(Int64(error.status.code)))])
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body.rendered())))
    }

    /// `^sha256:[a-f0-9]{64}$`, checked byte by byte.
    public static func isValidDigest(_ s: String) -> Bool { ImageDigest.isValid(s) }

    /// Pod UIDs are UUIDs; container IDs are hex. Allow a little more, never a slash.
    static func isValidKey(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 128 else { return false }
        return b.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x3A || c == 0x2D
        }
    }

    /// Percent-decodes one path segment (clients may send `sha256%3A…`); a bad escape is a 400.
    static func decodedSegment(_ segment: Substring) throws -> String {
        guard segment.utf8.contains(0x25) else { return String(segment) }
        var out: [UInt8] = []
        var it = Array(segment.utf8)[...]
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        while let c = it.popFirst() {
            if c == 0x25 {
                guard let h = it.popFirst().flatMap(hex), let l = it.popFirst().flatMap(hex) else {
                    throw APIError.badRequest("invalid percent-encoding in the path")
                }
                out.append(h << 4 | l)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The token of an `Authorization: Bearer <token>` header; nil for none or another scheme.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingSpaces()
        return token.isEmpty ? nil : token
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        switch address {
        case .v4(let a)?: return a.address.sin_addr.s_addr.bigEndian >> 24 == 127
        case .v6?:
            guard let text = address?.ipAddress?.lowercased() else { return false }
            return text == "::1" || text.hasPrefix("::ffff:127.")
        case .unixDomainSocket?: return true
        default: return false
        }
    }

    static func truncated(_ s: String) -> String {
        s.utf8.count <= 128 ? s : String(s.prefix(128)) + "…"
    }
}
