import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PodstartCore

/// An OCI content descriptor (image-spec `descriptor.md`): what a manifest, index or referrers
/// list says about a piece of content.
public struct OCIDescriptor: Hashable, Sendable {
    public var mediaType: String
    public var digest: String
    public var sizeBytes: Int64
    public var artifactType: String?
    public var annotations: [String: String]

    public init(mediaType: String, digest: String, sizeBytes: Int64, artifactType: String? = nil,
                annotations: [String: String] = [:]) {
        self.mediaType = mediaType
        self.digest = digest
        self.sizeBytes = sizeBytes
        self.artifactType = artifactType
        self.annotations = annotations
    }

    public func json() -> JSON {
        var fields: [(String, JSON)] = [("mediaType", .string(mediaType)), ("digest", .string(digest)),
                                        ("size", .int(sizeBytes))]
        if let artifactType { fields.append(("artifactType", .string(artifactType))) }
        if !annotations.isEmpty {
            fields.append(("annotations", .object(annotations.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        return .object(fields)
    }

    /// Reads a descriptor; nil when a required field is missing or the digest is not sha256.
    public init?(json: JSON) {
        guard let mediaType = json["mediaType"]?.stringValue, let digest = json["digest"]?.stringValue,
              ImageDigest.isValid(digest), let size = json["size"]?.int64Value, size >= 0 else { return nil }
        var annotations: [String: String] = [:]
        if case .object(let fields)? = json["annotations"] {
            for (k, v) in fields { if let s = v.stringValue { annotations[k] = s } }
        }
        self.init(mediaType: mediaType, digest: digest, sizeBytes: size,
                  artifactType: json["artifactType"]?.stringValue, annotations: annotations)
    }
}

public enum OCIMediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    /// Every manifest kind an image reference may resolve to, for `Accept`.
    public static let anyManifest = [imageManifest, imageIndex, dockerManifest, dockerManifestList]
}

/// What went wrong talking to a registry: each case names the registry, what was asked and
/// what to do.
public enum OCIRegistryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No TCP/TLS connection (refused, no such host, timeout).
    case unreachable(host: String, reason: String)
    /// 401 after offering what credentials there were (or with none to offer).
    case unauthorized(host: String, repository: String, detail: String)
    /// 403: the credentials are known but may not do this.
    case forbidden(host: String, repository: String, detail: String)
    /// 404 for something that must exist (the image's manifest, a blob a manifest lists).
    case notFound(what: String, host: String)
    /// Any other unexpected status.
    case status(code: Int, method: String, url: String, detail: String)
    /// The registry answered with content podstart cannot use.
    case malformed(what: String, reason: String)

    public var description: String {
        switch self {
        case .unreachable(let host, let reason):
            "registry \(host) unreachable: \(reason) (is it running and is the address right? an HTTP-only registry needs --plain-http)"
        case .unauthorized(let host, let repository, let detail):
            "registry \(host) refused access to \(repository) (401 unauthorized\(detail.isEmpty ? "" : ": \(detail)")): log in with `docker login \(host)` (podstart reads the docker config.json) or check the credentials there"
        case .forbidden(let host, let repository, let detail):
            "registry \(host) forbids this on \(repository) (403 forbidden\(detail.isEmpty ? "" : ": \(detail)")): the credentials lack pull/push rights for it"
        case .notFound(let what, let host):
            "\(what) not found in registry \(host)"
        case .status(let code, let method, let url, let detail):
            "\(method) \(url) failed with HTTP \(code)\(detail.isEmpty ? "" : ": \(detail)")"
        case .malformed(let what, let reason):
            "\(what) is malformed: \(reason)"
        }
    }
}

/// Registry credentials, as `docker login` stores them.
public struct RegistryCredentials: Sendable, Equatable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// The `auths` entry for `host` in the first of `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`
    /// and `~/.docker/config.json` that exists (`auth` = base64 of `user:password`, or
    /// `username`/`password`). Credential helpers (`credsStore`) are not consulted.
    public static func fromDockerConfig(host: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> RegistryCredentials? {
        var paths: [String] = []
        if let p = environment["REGISTRY_AUTH_FILE"] { paths.append(p) }
        if let d = environment["DOCKER_CONFIG"] { paths.append(d + "/config.json") }
        if let h = environment["HOME"] { paths.append(h + "/.docker/config.json") }
        guard let path = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let json: JSON
        do { json = try JSON.parse(Array(data)) } catch {
            throw OCIRegistryError.malformed(what: "docker config \(path)", reason: "\(error)")
        }
        guard case .object(let auths)? = json["auths"] else { return nil }
        let candidates = [host, "https://\(host)", "http://\(host)", "https://\(host)/v1/", "https://\(host)/v2/"]
            + (host == "registry-1.docker.io" ? ["https://index.docker.io/v1/", "docker.io"] : [])
        for key in candidates {
            guard let entry = auths.first(where: { $0.0 == key })?.1 else { continue }
            if let auth = entry["auth"]?.stringValue, let decoded = Data(base64Encoded: auth),
               let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") {
                return RegistryCredentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
            if let u = entry["username"]?.stringValue, let p = entry["password"]?.stringValue {
                return RegistryCredentials(username: u, password: p)
            }
        }
        return nil
    }
}

/// A client of the OCI distribution API (distribution-spec v1.1) for one registry: manifests,
/// blobs, monolithic uploads and the referrers API, with the bearer-token and basic auth
/// challenges registries send. HTTP for loopback registries and with `plainHTTP`, HTTPS otherwise.
public final class OCIRegistryClient: @unchecked Sendable {
    public let host: String
    public let scheme: String
    private let credentials: RegistryCredentials?
    private let lock = NSLock()
    /// Bearer tokens by scope, and whether the registry asked for basic auth.
    private var tokens: [String: String] = [:]
    private var useBasic = false

    public struct Response: Sendable {
        public var status: Int
        /// Lowercased names.
        public var headers: [String: String]
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    public init(host: String, plainHTTP: Bool = false, credentials: RegistryCredentials? = nil, timeoutSeconds: Double = 30) {
        self.host = host
        let bare = host.split(separator: ":").first.map(String.init) ?? host
        let loopback = ["127.0.0.1", "localhost", "[::1]"].contains(bare) || host.hasPrefix("[::1]")
        scheme = plainHTTP || loopback ? "http" : "https"
        self.credentials = credentials
        self.timeoutSeconds = timeoutSeconds
    }

    private let timeoutSeconds: Double

    /// One session for the process: invalidating a session per client (in deinit) can deadlock
    /// swift-corelibs-foundation when the last reference goes away on the session's own queue.
    private static let challenges = ChallengeRecorder()
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.urlCredentialStorage = nil
        return URLSession(configuration: configuration, delegate: challenges, delegateQueue: nil)
    }()

    /// swift-corelibs-foundation turns a 401 with `WWW-Authenticate: Basic` into an
    /// authentication challenge and, unless the delegate cancels it, never completes the task.
    /// Registries challenge on purpose (answered in `send`), so the recorder keeps the 401
    /// response, cancels, and `perform` hands the 401 back as a response.
    private final class ChallengeRecorder: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        static let header = "X-Podstart-Request"
        private let lock = NSLock()
        private var responses: [String: HTTPURLResponse] = [:]

        func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                        completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
            if let id = task.originalRequest?.value(forHTTPHeaderField: Self.header),
               let response = challenge.failureResponse as? HTTPURLResponse {
                lock.withLock { responses[id] = response }
            }
            completionHandler(.cancelAuthenticationChallenge, nil)
        }

        func take(_ id: String) -> HTTPURLResponse? { lock.withLock { responses.removeValue(forKey: id) } }
    }

    public static func sha256(_ bytes: [UInt8]) -> String {
        "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: manifests

    /// GET a manifest (or index); nil on 404. The digest is computed from the bytes and checked
    /// against `Docker-Content-Digest` and a digest `reference`.
    public func manifest(repository: String, reference: String, accept: [String] = OCIMediaType.anyManifest) async throws
        -> (descriptor: OCIDescriptor, body: [UInt8])? {
        let r = try await send("GET", path: "/v2/\(repository)/manifests/\(reference)", repository: repository,
                               headers: ["Accept": accept.joined(separator: ", ")])
        if r.status == 404 { return nil }
        try expect(r, [200], "GET", "/v2/\(repository)/manifests/\(reference)", repository: repository)
        let digest = Self.sha256(r.body)
        if reference.hasPrefix("sha256:"), reference != digest {
            throw OCIRegistryError.malformed(what: "manifest \(repository)@\(reference) from \(host)",
                                             reason: "its content hashes to \(digest)")
        }
        if let claimed = r.header("Docker-Content-Digest"), claimed.hasPrefix("sha256:"), claimed != digest {
            throw OCIRegistryError.malformed(what: "manifest \(repository):\(reference) from \(host)",
                                             reason: "Docker-Content-Digest \(claimed) but the content hashes to \(digest)")
        }
        var mediaType = r.header("Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if let parsed = try? JSON.parse(r.body), let declared = parsed["mediaType"]?.stringValue { mediaType = declared }
        guard !mediaType.isEmpty else {
            throw OCIRegistryError.malformed(what: "manifest \(repository):\(reference) from \(host)", reason: "no media type")
        }
        return (OCIDescriptor(mediaType: mediaType, digest: digest, sizeBytes: Int64(r.body.count)), r.body)
    }

    /// PUT a manifest under a tag or its digest. Returns its digest and the `OCI-Subject` header,
    /// which registries with the referrers API send back for a manifest with a `subject`.
    @discardableResult
    public func putManifest(repository: String, reference: String, body: [UInt8], mediaType: String) async throws
        -> (digest: String, ociSubject: String?) {
        let path = "/v2/\(repository)/manifests/\(reference)"
        let r = try await send("PUT", path: path, repository: repository, push: true,
                               headers: ["Content-Type": mediaType], body: body)
        try expect(r, [200, 201], "PUT", path, repository: repository)
        return (Self.sha256(body), r.header("OCI-Subject"))
    }

    // MARK: blobs

    /// GET a blob, following redirects, verifying its digest.
    public func blob(repository: String, digest: String) async throws -> [UInt8] {
        let path = "/v2/\(repository)/blobs/\(digest)"
        let r = try await send("GET", path: path, repository: repository)
        if r.status == 404 { throw OCIRegistryError.notFound(what: "blob \(digest) of \(repository)", host: host) }
        try expect(r, [200], "GET", path, repository: repository)
        guard Self.sha256(r.body) == digest else {
            throw OCIRegistryError.malformed(what: "blob \(repository)@\(digest) from \(host)",
                                             reason: "its content hashes to \(Self.sha256(r.body))")
        }
        return r.body
    }

    public func blobExists(repository: String, digest: String) async throws -> Bool {
        let path = "/v2/\(repository)/blobs/\(digest)"
        let r = try await send("HEAD", path: path, repository: repository, push: true)
        if r.status == 404 { return false }
        try expect(r, [200], "HEAD", path, repository: repository)
        return true
    }

    /// Uploads a blob (POST then one monolithic PUT) unless the registry has it; returns its
    /// descriptor.
    @discardableResult
    public func pushBlob(repository: String, bytes: [UInt8], mediaType: String, annotations: [String: String] = [:]) async throws
        -> OCIDescriptor {
        let digest = Self.sha256(bytes)
        let descriptor = OCIDescriptor(mediaType: mediaType, digest: digest, sizeBytes: Int64(bytes.count), annotations: annotations)
        if try await blobExists(repository: repository, digest: digest) { return descriptor }
        let start = "/v2/\(repository)/blobs/uploads/"
        let r = try await send("POST", path: start, repository: repository, push: true, headers: ["Content-Length": "0"])
        try expect(r, [202], "POST", start, repository: repository)
        guard let location = r.header("Location"), var upload = URLComponents(string: location) else {
            throw OCIRegistryError.malformed(what: "upload session from \(host)", reason: "202 without a Location header")
        }
        var query = upload.queryItems ?? []
        query.append(URLQueryItem(name: "digest", value: digest))
        upload.queryItems = query
        // The Location may be absolute or relative to the registry (distribution-spec "Location").
        let relative = upload.string ?? location
        let target = upload.host == nil ? "\(scheme)://\(host)\(relative.hasPrefix("/") ? "" : "/")\(relative)" : relative
        let put = try await send("PUT", url: target, repository: repository, push: true,
                                 headers: ["Content-Type": "application/octet-stream"], body: bytes)
        try expect(put, [201, 204], "PUT", "\(start)…?digest=\(digest)", repository: repository)
        return descriptor
    }

    // MARK: referrers

    /// The referrers API (distribution-spec v1.1 "Listing Referrers"): the manifests whose
    /// `subject` is `digest`, filtered to `artifactType` (again here, in case the registry did not
    /// apply the filter). nil when the registry does not support the API (404).
    public func referrers(repository: String, digest: String, artifactType: String?) async throws -> [OCIDescriptor]? {
        var path = "/v2/\(repository)/referrers/\(digest)"
        if let artifactType {
            path += "?artifactType=" + (artifactType.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? artifactType)
        }
        let r = try await send("GET", path: path, repository: repository, headers: ["Accept": OCIMediaType.imageIndex])
        if r.status == 404 { return nil }
        try expect(r, [200], "GET", path, repository: repository)
        let contentType = r.header("Content-Type") ?? ""
        guard contentType.hasPrefix(OCIMediaType.imageIndex) else {
            // A 200 that is not an index (a catch-all page) means the API is not there.
            return nil
        }
        let index: JSON
        do { index = try JSON.parse(r.body) } catch {
            throw OCIRegistryError.malformed(what: "referrers list of \(repository)@\(digest) from \(host)", reason: "\(error)")
        }
        guard let manifests = index["manifests"]?.arrayValue else {
            throw OCIRegistryError.malformed(what: "referrers list of \(repository)@\(digest) from \(host)", reason: "no manifests array")
        }
        return manifests.compactMap(OCIDescriptor.init(json:)).filter { artifactType == nil || $0.artifactType == artifactType }
    }

    // MARK: HTTP and auth

    private func expect(_ r: Response, _ ok: Set<Int>, _ method: String, _ path: String, repository: String) throws {
        guard !ok.contains(r.status) else { return }
        let detail = Self.errorDetail(r.body)
        switch r.status {
        case 401: throw OCIRegistryError.unauthorized(host: host, repository: repository, detail: detail)
        case 403: throw OCIRegistryError.forbidden(host: host, repository: repository, detail: detail)
        default: throw OCIRegistryError.status(code: r.status, method: method, url: "\(scheme)://\(host)\(path)", detail: detail)
        }
    }

    /// The registry's error message: the distribution-spec error body (`errors[].code/message`)
    /// or the first line of a text body.
    static func errorDetail(_ body: [UInt8]) -> String {
        if let json = try? JSON.parse(body), let errors = json["errors"]?.arrayValue, !errors.isEmpty {
            return errors.map { e in
                [e["code"]?.stringValue, e["message"]?.stringValue].compactMap { $0 }.joined(separator: ": ")
            }.joined(separator: "; ")
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        return text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    }

    func send(_ method: String, path: String, repository: String, push: Bool = false,
              headers: [String: String] = [:], body: [UInt8]? = nil) async throws -> Response {
        try await send(method, url: "\(scheme)://\(host)\(path)", repository: repository, push: push, headers: headers, body: body)
    }

    /// One request, answering a 401 challenge once: `Bearer realm=…,service=…,scope=…` by fetching
    /// a token from the realm (with basic credentials when there are some), `Basic` with the
    /// credentials.
    func send(_ method: String, url: String, repository: String, push: Bool = false,
              headers: [String: String] = [:], body: [UInt8]? = nil) async throws -> Response {
        let scope = "repository:\(repository):\(push ? "pull,push" : "pull")"
        var response = try await perform(method, url: url, headers: headers.merging(authorization(scope: scope)) { a, _ in a }, body: body)
        guard response.status == 401, let challenge = response.header("WWW-Authenticate") else { return response }
        let parsed = AuthChallenge(parsing: challenge)
        switch parsed?.scheme.lowercased() {
        case "bearer":
            let token = try await fetchToken(parsed!, scope: parsed!.parameters["scope"] ?? scope, repository: repository)
            lock.withLock { tokens[scope] = token }
        case "basic":
            guard credentials != nil else { return response }
            lock.withLock { useBasic = true }
        default:
            return response
        }
        response = try await perform(method, url: url, headers: headers.merging(authorization(scope: scope)) { a, _ in a }, body: body)
        return response
    }

    private func authorization(scope: String) -> [String: String] {
        lock.withLock {
            if let token = tokens[scope] ?? tokens["repository:\(scope.split(separator: ":").dropFirst().first ?? ""):pull,push"] {
                return ["Authorization": "Bearer \(token)"]
            }
            if useBasic, let c = credentials {
                return ["Authorization": "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString()]
            }
            return [:]
        }
    }

    private func fetchToken(_ challenge: AuthChallenge, scope: String, repository: String) async throws -> String {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm) else {
            throw OCIRegistryError.malformed(what: "auth challenge from \(host)", reason: "Bearer without a realm")
        }
        var query = components.queryItems ?? []
        if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = query
        var headers: [String: String] = [:]
        if let c = credentials {
            headers["Authorization"] = "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString()
        }
        let r = try await perform("GET", url: components.string ?? realm, headers: headers, body: nil)
        guard r.status == 200 else {
            throw r.status == 403
                ? OCIRegistryError.forbidden(host: host, repository: repository, detail: "token service \(realm): \(Self.errorDetail(r.body))")
                : OCIRegistryError.unauthorized(host: host, repository: repository,
                                                detail: "token service \(realm) answered \(r.status): \(Self.errorDetail(r.body))")
        }
        guard let json = try? JSON.parse(r.body), let token = json["token"]?.stringValue ?? json["access_token"]?.stringValue else {
            throw OCIRegistryError.malformed(what: "token from \(realm)", reason: "no token or access_token field")
        }
        return token
    }

    private func perform(_ method: String, url: String, headers: [String: String], body: [UInt8]?) async throws -> Response {
        guard let u = URL(string: url) else { throw OCIRegistryError.malformed(what: "URL", reason: url) }
        var request = URLRequest(url: u)
        request.timeoutInterval = timeoutSeconds
        request.httpMethod = method
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        if let body {
            request.httpBody = Data(body)
            request.setValue(String(body.count), forHTTPHeaderField: "Content-Length")
        }
        let id = UUID().uuidString
        request.setValue(id, forHTTPHeaderField: ChallengeRecorder.header)
        let data: Data
        let urlResponse: URLResponse
        do {
            (data, urlResponse) = try await Self.session.data(for: request)
            _ = Self.challenges.take(id)
        } catch let error as URLError {
            if let challenged = Self.challenges.take(id) { return Self.response(challenged, body: []) }
            throw OCIRegistryError.unreachable(host: u.host.map { h in u.port.map { "\(h):\($0)" } ?? h } ?? host,
                                               reason: Self.reason(error))
        } catch {
            if let challenged = Self.challenges.take(id) { return Self.response(challenged, body: []) }
            throw OCIRegistryError.unreachable(host: host, reason: "\(error)")
        }
        guard let http = urlResponse as? HTTPURLResponse else {
            throw OCIRegistryError.malformed(what: "response from \(host)", reason: "not HTTP")
        }
        return Self.response(http, body: Array(data))
    }

    private static func response(_ http: HTTPURLResponse, body: [UInt8]) -> Response {
        var lowered: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { lowered[k.lowercased()] = v }
        }
        return Response(status: http.statusCode, headers: lowered, body: body)
    }

    private static func reason(_ error: URLError) -> String {
        switch error.code {
        case .cannotConnectToHost: "connection refused"
        case .cannotFindHost, .dnsLookupFailed: "no such host"
        case .timedOut: "timed out"
        case .networkConnectionLost: "connection closed by the registry"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
             .serverCertificateHasUnknownRoot, .clientCertificateRejected:
            "TLS handshake failed (\(error.localizedDescription))"
        default: error.localizedDescription
        }
    }
}

/// A `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
struct AuthChallenge: Equatable {
    var scheme: String
    var parameters: [String: String]

    init?(parsing header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else {
            guard !trimmed.isEmpty else { return nil }
            scheme = trimmed
            parameters = [:]
            return
        }
        scheme = String(trimmed[..<space])
        parameters = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    if c == "\\", rest.count > 1 { rest = rest.dropFirst() }
                    value.append(rest.first!)
                    rest = rest.dropFirst()
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            parameters[key] = value
        }
    }
}
