import Synchronization

/// What an `APIAuthorizer` decided about one /v1 request.
public enum APIAccess: Sendable, Equatable {
    case allowed
    /// No token, or one the authenticator does not accept: 401.
    case unauthenticated(reason: String)
    /// A known user without permission: 403.
    case forbidden(reason: String)
    /// The decision could not be made (the API server unreachable or answering an error): 503,
    /// never allowed.
    case unavailable(reason: String)
}

/// Decides whether a /v1 request may be answered. `/metrics`, `/healthz` and `/readyz` are
/// never asked about (scrapers and the kubelet's probes).
public protocol APIAuthorizer: Sendable {
    /// `bearerToken` is the token of an `Authorization: Bearer …` header (nil without one);
    /// `path` the request's path, already known to start with `/v1`.
    func access(bearerToken: String?, path: String) async -> APIAccess
}

/// One shared token (`--api-auth token --api-token-file FILE`), read again when the file
/// changes (a projected or rotated Secret); an unusable new file keeps the old token.
public struct StaticTokenAuthorizer: APIAuthorizer {
    private let token: ReloadingFile<[UInt8]>

    /// Reads the file now (an error stops the agent before it serves).
    public init(tokenFile path: String, onReloadError: @escaping @Sendable (any Error) -> Void = { _ in }) throws {
        token = try ReloadingFile(paths: [path], load: { Array(try Self.readToken(path: path).utf8) }, onReloadError: onReloadError)
    }

    /// A fixed token (tests, and `APIResponder.Configuration(bearerToken:)`).
    public init(token value: String) throws {
        token = try ReloadingFile(paths: [], load: { Array(value.utf8) })
    }

    public struct TokenFileError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "API token file \(path): \(reason) (it must hold one token, without spaces)" }
    }

    /// The one token the file holds, without surrounding white space.
    public static func readToken(path: String) throws -> String {
        let bytes: [UInt8]
        do { bytes = try readSmallFile(path: path, limitBytes: 64 << 10) } catch {
            throw TokenFileError(path: path, reason: "\(error)")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let token = text.split(whereSeparator: { $0.isWhitespace })
        guard token.count == 1 else {
            throw TokenFileError(path: path, reason: token.isEmpty ? "the file is empty" : "the file holds more than one word")
        }
        return String(token[0])
    }

    public func access(bearerToken: String?, path: String) async -> APIAccess {
        guard let bearerToken else { return .unauthenticated(reason: "a bearer token is required") }
        return Self.constantTimeEqual(Array(bearerToken.utf8), token.current()) ? .allowed : .unauthenticated(reason: "the bearer token is not accepted")
    }

    /// Compares every byte whatever the first mismatch, so the time taken does not reveal how
    /// much of a guessed token was right.
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var diff = UInt8(given.count == expected.count ? 0 : 1)
        for i in 0..<expected.count {
            diff |= expected[i] ^ (i < given.count ? given[i] : ~expected[i])
        }
        return diff == 0
    }
}

/// No authentication: every /v1 request is answered (`--api-auth none`; the agent only allows it
/// on a loopback listener unless asked explicitly, see docs/agent.md).
public struct OpenAccess: APIAuthorizer {
    public init() {}
    public func access(bearerToken: String?, path: String) async -> APIAccess { .allowed }
}

/// At most `limit` requests at once: `tryAcquire()` never waits, so a burst past the limit is
/// refused at once (429 with Retry-After) instead of queueing memory.
public final class ConcurrencyLimiter: Sendable {
    public let limit: Int
    private let inUse = Mutex(0)

    public init(limit: Int) { self.limit = max(1, limit) }

    /// A permit, released when the last reference to it goes (the response body that carries
    /// it has been written or dropped), or nil when all are taken.
    public func tryAcquire() -> Permit? {
        let granted = inUse.withLock { n in
            guard n < limit else { return false }
            n += 1
            return true
        }
        return granted ? Permit(limiter: self) : nil
    }

    public var current: Int { inUse.withLock { $0 } }

    fileprivate func release() { inUse.withLock { $0 -= 1 } }

    public final class Permit: Sendable {
        private let limiter: ConcurrencyLimiter
        fileprivate init(limiter: ConcurrencyLimiter) { self.limiter = limiter }
        deinit { limiter.release() }
    }
}
