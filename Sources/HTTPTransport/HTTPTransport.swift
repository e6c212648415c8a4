import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response read whole (up to the size cap).
public struct HTTPTransportResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The URL that answered, after redirects.
    public var url: String

    public func header(_ name: String) -> String? { headers.first(name: name) }
}

/// The HTTP(S) client of everything podstart asks of a server — the kubelet, the API server, OCI
/// registries — on async-http-client (no libcurl, no FoundationNetworking).
///
/// Credentials stay with their origin: the endpoint's bearer token, and an `authorization`
/// passed to `send`, go only to the origin of the request's first URL; a redirect to another
/// origin is followed without them (and without the endpoint's client certificate and CA, with
/// the system's trust store instead). Bodies are read up to a cap, and a larger one fails
/// before it is read.
public final class HTTPTransport: Sendable {
    public let endpoint: HTTPEndpoint
    private let tlsConfiguration: TLSConfiguration
    private let token: BearerToken?

    /// One connection pool for the process (per-request TLS settings key the pool): it is never
    /// shut down, like async-http-client's own `HTTPClient.shared`, but follows no redirect
    /// itself (`exchange` does, knowing whose credentials go where), does not retry failed
    /// connects (the callers' loops do, and an error must surface at once), and speaks HTTP/1.1.
    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(30)),
                                                     decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// What a redirected request to another origin uses: the system's trust store, no client
    /// certificate.
    private static let otherOriginTLS = TLSConfiguration.makeClientConfiguration()

    /// Reads the CA bundle, client certificate and key now, so a bad file is an error here.
    public init(_ endpoint: HTTPEndpoint) throws {
        self.endpoint = endpoint
        tlsConfiguration = try Self.tlsConfiguration(endpoint.tls)
        token = endpoint.bearerToken.map(BearerToken.init)
    }

    static func tlsConfiguration(_ files: TLSFiles) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        func certificates(_ path: String) throws -> [NIOSSLCertificate] {
            let list: [NIOSSLCertificate]
            do { list = try NIOSSLCertificate.fromPEMFile(path) } catch {
                throw HTTPTransportError.tlsFile(path: path, reason: "\(error)")
            }
            guard !list.isEmpty else { throw HTTPTransportError.tlsFile(path: path, reason: "no PEM certificate in it") }
            return list
        }
        if let ca = files.caFile { tls.trustRoots = .certificates(try certificates(ca)) }
        switch (files.clientCertificateFile, files.clientKeyFile) {
        case (let certificate?, let key?):
            tls.certificateChain = try certificates(certificate).map { .certificate($0) }
            do { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) } catch {
                throw HTTPTransportError.tlsFile(path: key, reason: "\(error)")
            }
        case (let only?, nil), (nil, let only?):
            throw HTTPTransportError.tlsFile(path: only, reason: "a client certificate needs its key file, and a key its certificate file")
        case (nil, nil):
            break
        }
        if files.insecureSkipTLSVerify { tls.certificateVerification = .none }
        return tls
    }

    /// `target` is a path on the endpoint or an absolute URL.
    private func absolute(_ target: String) -> String { target.hasPrefix("/") ? endpoint.url(target) : target }

    /// One request, its body read whole (at most `maxBodyBytes`, default the endpoint's), any
    /// status returned. `authorization` (a whole header value) replaces the endpoint's bearer
    /// token; either goes only to the origin of `target`.
    public func send(_ method: HTTPMethod, _ target: String, headers: HTTPHeaders = [:], body: [UInt8]? = nil,
                     authorization: String? = nil, maxBodyBytes: Int? = nil) async throws -> HTTPTransportResponse {
        let deadline = NIODeadline.now() + TimeAmount(endpoint.timeout)
        let (response, url) = try await exchange(method, absolute(target), headers: headers, body: body,
                                                 authorization: authorization, deadline: deadline)
        let cap = maxBodyBytes ?? endpoint.maxBodyBytes
        // A HEAD's Content-Length is the size of what a GET would send.
        if method != .HEAD, let declared = response.headers.first(name: "content-length").flatMap(Int.init), declared > cap {
            throw HTTPTransportError.bodyTooLarge(url: url, limitBytes: cap)
        }
        let bytes = try await Self.within(deadline, url: url, timeout: endpoint.timeout) {
            var bytes: [UInt8] = []
            do {
                for try await chunk in response.body {
                    guard bytes.count + chunk.readableBytes <= cap else { throw HTTPTransportError.bodyTooLarge(url: url, limitBytes: cap) }
                    bytes.append(contentsOf: chunk.readableBytesView)
                }
            } catch {
                throw Self.transportError(error, url: url, timeout: self.endpoint.timeout)
            }
            return bytes
        }
        return HTTPTransportResponse(status: Int(response.status.code), headers: response.headers, body: bytes, url: url)
    }

    /// GETs `target` and returns its body; a non-2xx answer is `HTTPTransportError.status`.
    public func get(_ target: String, accept: String = "application/json") async throws -> [UInt8] {
        let r = try await send(.GET, target, headers: ["Accept": accept])
        guard (200..<300).contains(r.status) else {
            throw HTTPTransportError.status(code: r.status, url: r.url, body: String(decoding: r.body.prefix(1024), as: UTF8.self))
        }
        return r.body
    }

    /// GETs `target` and hands each non-empty line of a 2xx body to `onLine` until it returns
    /// false or the server ends the response (a watch). The deadline covers the response head
    /// only; a line longer than the body cap is an error. Non-2xx is `HTTPTransportError.status`.
    public func streamLines(_ target: String, accept: String = "application/json", onLine: ([UInt8]) async throws -> Bool) async throws {
        let deadline = NIODeadline.now() + TimeAmount(endpoint.timeout)
        let (response, url) = try await exchange(.GET, absolute(target), headers: ["Accept": accept], body: nil,
                                                 authorization: nil, deadline: deadline)
        let cap = endpoint.maxBodyBytes
        var pending: [UInt8] = []
        var chunks = response.body.makeAsyncIterator()
        // Only the reads are transport errors; what `onLine` throws is the caller's.
        func nextChunk() async throws -> ByteBuffer? {
            do { return try await chunks.next() } catch { throw Self.transportError(error, url: url, timeout: endpoint.timeout) }
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            while pending.count < 1024, let chunk = try? await nextChunk() { pending.append(contentsOf: chunk.readableBytesView) }
            throw HTTPTransportError.status(code: Int(response.status.code), url: url, body: String(decoding: pending.prefix(1024), as: UTF8.self))
        }
        while let chunk = try await nextChunk() {
            pending.append(contentsOf: chunk.readableBytesView)
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[start..<newline])
                start = newline + 1
                if !line.isEmpty, try await !onLine(line) { return }
            }
            pending.removeFirst(start)
            if pending.count > cap { throw HTTPTransportError.bodyTooLarge(url: url, limitBytes: cap) }
        }
        if !pending.isEmpty { _ = try await onLine(pending) }
    }

    // MARK: one exchange, redirects included

    private static let redirectStatuses: Set<UInt> = [301, 302, 303, 307, 308]

    /// Sends the request and follows redirects up to the endpoint's limit; returns the final
    /// response with its body unread, and its URL.
    private func exchange(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders, body: [UInt8]?, authorization: String?,
                          deadline: NIODeadline) async throws -> (HTTPClientResponse, String) {
        guard let first = HTTPOrigin(url: url) else { throw HTTPTransportError.badURL(url) }
        let credential = try authorization ?? (first == endpoint.origin ? token.map { "Bearer " + (try $0.current()) } : nil)
        var method = method
        var url = url
        var headers = headers
        var body = body
        if !headers.contains(name: "User-Agent") { headers.add(name: "User-Agent", value: "podstart") }
        for _ in 0...endpoint.maxRedirects {
            guard let origin = HTTPOrigin(url: url) else { throw HTTPTransportError.badURL(url) }
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers = headers
            request.headers.remove(name: "Authorization")
            if origin == first, let credential { request.headers.add(name: "Authorization", value: credential) }
            if origin.scheme == "https" { request.tlsConfiguration = origin == endpoint.origin ? tlsConfiguration : Self.otherOriginTLS }
            if let body { request.body = .bytes(body) }
            let response: HTTPClientResponse
            do {
                response = try await Self.client.execute(request, deadline: deadline)
            } catch {
                throw Self.transportError(error, url: url, timeout: endpoint.timeout)
            }
            guard Self.redirectStatuses.contains(response.status.code), let location = response.headers.first(name: "Location") else {
                return (response, url)
            }
            guard let next = HTTPOrigin.resolve(location, against: url) else {
                throw HTTPTransportError.badURL("\(location) (the Location of a \(response.status.code) from \(url))")
            }
            // 303, and 301/302 after a POST, turn into a GET without the body (RFC 9110 15.4).
            if (response.status.code == 303 && method != .HEAD) || ([301, 302].contains(response.status.code) && method == .POST) {
                method = .GET
                body = nil
                headers.remove(name: "Content-Type")
                headers.remove(name: "Content-Length")
            }
            url = next
        }
        throw HTTPTransportError.tooManyRedirects(url: url, limit: endpoint.maxRedirects)
    }

    /// Runs `operation`, failing with `.timeout` when `deadline` passes first.
    private static func within<T: Sendable>(_ deadline: NIODeadline, url: String, timeout: Duration,
                                            _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                let left = deadline - .now()
                if left.nanoseconds > 0 { try await Task.sleep(nanoseconds: UInt64(left.nanoseconds)) }
                return nil
            }
            defer { group.cancelAll() }
            guard let value = try await group.next() ?? nil else {
                throw HTTPTransportError.timeout(url: url, seconds: timeout.seconds)
            }
            return value
        }
    }

    // MARK: errors

    private static func isTLS(_ error: Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
    }

    /// What went wrong, in the words of `HTTPTransportError`.
    static func transportError(_ error: Error, url: String, timeout: Duration) -> Error {
        if error is HTTPTransportError || error is CancellationError { return error }
        let origin = HTTPOrigin(url: url)?.description ?? url
        if isTLS(error) { return HTTPTransportError.tls(origin: origin, reason: "\(error)") }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                return HTTPTransportError.timeout(url: url, seconds: timeout.seconds)
            case .cancelled:
                return CancellationError()
            default:
                return HTTPTransportError.connection(origin: origin, reason: "\(e)")
            }
        }
        if let e = error as? NIOConnectionError {
            if let tls = e.connectionErrors.first(where: { isTLS($0.error) }) {
                return HTTPTransportError.tls(origin: origin, reason: "\(tls.error)")
            }
            if e.connectionErrors.isEmpty, e.dnsAError != nil || e.dnsAAAAError != nil {
                return HTTPTransportError.connection(origin: origin, reason: "no such host")
            }
            return HTTPTransportError.connection(origin: origin, reason: e.connectionErrors.map { reason($0.error) }.joined(separator: "; "))
        }
        return HTTPTransportError.connection(origin: origin, reason: reason(error))
    }

    private static func reason(_ error: Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        switch io.errnoCode {
        case ECONNREFUSED: return "connection refused"
        case ECONNRESET: return "connection reset"
        case EHOSTUNREACH, ENETUNREACH: return "no route to host"
        case ETIMEDOUT: return "timed out"
        default: return "\(io)"
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
