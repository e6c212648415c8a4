import Crypto
import Foundation
import HTTPTransport
import NIOHTTP1
import PodstartCore

/// A client of the OCI distribution API (distribution-spec v1.1) for one registry: manifests,
/// blobs, monolithic uploads and the referrers API, with the bearer-token and basic auth
/// challenges registries send (RegistryAuthenticator). HTTP for loopback registries and with
/// `plainHTTP`, HTTPS otherwise; requests go through `HTTPTransport`, so a redirect (a blob
/// served from object storage) to another host never carries the registry's credentials.
public final class OCIRegistryClient: Sendable {
    public let host: String
    public let scheme: String
    private let transport: HTTPTransport
    private let auth: RegistryAuthenticator

    /// Largest manifest, index or referrers list read (distribution-spec asks registries to
    /// accept at least 4 MiB manifests).
    public static let maxManifestBytes = 4 << 20
    /// Largest blob read into memory (a profile, a config).
    public static let maxBlobBytes = 256 << 20

    public struct Response: Sendable {
        public var status: Int
        /// Lowercased names.
        public var headers: [String: String]
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    /// `tls` is for registries whose certificate a private CA signed, or that require a client
    /// certificate; `trustedTokenRealmHosts` are token services on other hosts that may see the
    /// credentials (see RegistryAuthenticator).
    public init(host: String, plainHTTP: Bool = false, credentials: RegistryCredentials? = nil, timeoutSeconds: Double = 30,
                tls: TLSFiles = TLSFiles(), trustedTokenRealmHosts: Set<String> = []) throws {
        self.host = host
        let bare = host.split(separator: ":").first.map(String.init) ?? host
        let loopback = bare.hasPrefix("127.") || bare == "localhost" || host.hasPrefix("[::1]")
        scheme = plainHTTP || loopback ? "http" : "https"
        let endpoint: HTTPEndpoint
        do {
            endpoint = try HTTPEndpoint(url: "\(scheme)://\(host)", caFile: tls.caFile, clientCertificateFile: tls.clientCertificateFile,
                                        clientKeyFile: tls.clientKeyFile, insecureSkipTLSVerify: tls.insecureSkipTLSVerify,
                                        timeout: .milliseconds(Int64((timeoutSeconds * 1000).rounded())),
                                        maxBodyBytes: Self.maxBlobBytes)
        } catch {
            throw OCIRegistryError.malformed(what: "registry address \(host)", reason: "\(error)")
        }
        transport = try HTTPTransport(endpoint)
        auth = RegistryAuthenticator(registry: endpoint.origin, credentials: credentials, trustedTokenRealmHosts: trustedTokenRealmHosts)
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
                               headers: ["Accept": accept.joined(separator: ", ")], maxBodyBytes: Self.maxManifestBytes)
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
        let r = try await send("GET", path: path, repository: repository, headers: ["Accept": OCIMediaType.imageIndex],
                               maxBodyBytes: Self.maxManifestBytes)
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

    /// A transport failure in the registry's terms.
    static func registryError(_ error: HTTPTransportError, what: String, host: String) -> OCIRegistryError {
        switch error {
        case .bodyTooLarge(_, let limit): .tooLarge(what: what, host: host, limitBytes: limit)
        case .connection(_, let reason): .unreachable(host: host, reason: reason)
        case .tls(_, let reason): .unreachable(host: host, reason: "TLS handshake failed (\(reason))")
        case .timeout(_, let seconds): .unreachable(host: host, reason: "no answer within \(seconds) s")
        default: .malformed(what: what, reason: "\(error)")
        }
    }

    func send(_ method: String, path: String, repository: String, push: Bool = false,
              headers: [String: String] = [:], body: [UInt8]? = nil, maxBodyBytes: Int? = nil) async throws -> Response {
        try await send(method, url: "\(scheme)://\(host)\(path)", repository: repository, push: push, headers: headers, body: body,
                       maxBodyBytes: maxBodyBytes)
    }

    /// One request, answering a 401 challenge once (RegistryAuthenticator).
    func send(_ method: String, url: String, repository: String, push: Bool = false,
              headers: [String: String] = [:], body: [UInt8]? = nil, maxBodyBytes: Int? = nil) async throws -> Response {
        let scope = "repository:\(repository):\(push ? "pull,push" : "pull")"
        // An upload Location may name another host: only the registry itself gets its credentials.
        let toRegistry = HTTPOrigin(url: url) == auth.registry
        let response = try await perform(method, url: url, headers: headers, authorization: toRegistry ? auth.authorization(scope: scope) : nil,
                                         body: body, maxBodyBytes: maxBodyBytes)
        guard toRegistry, response.status == 401, let header = response.header("WWW-Authenticate"), let challenge = AuthChallenge(parsing: header),
              try await auth.answer(challenge, scope: scope, repository: repository, transport: transport)
        else { return response }
        return try await perform(method, url: url, headers: headers, authorization: auth.authorization(scope: scope),
                                 body: body, maxBodyBytes: maxBodyBytes)
    }

    private func perform(_ method: String, url: String, headers: [String: String], authorization: String?, body: [UInt8]?,
                         maxBodyBytes: Int?) async throws -> Response {
        // async-http-client sets Content-Length (or chunked framing) from the body itself.
        let fields = HTTPHeaders(headers.filter { $0.key.lowercased() != "content-length" }.map { ($0.key, $0.value) })
        let r: HTTPTransportResponse
        do {
            r = try await transport.send(HTTPMethod(rawValue: method), url, headers: fields, body: body,
                                         authorization: authorization, maxBodyBytes: maxBodyBytes)
        } catch let error as HTTPTransportError {
            let what = "the answer to \(method) \(url.hasPrefix("\(scheme)://\(host)") ? String(url.dropFirst("\(scheme)://\(host)".count)) : url)"
            throw Self.registryError(error, what: what, host: host)
        }
        var lowered: [String: String] = [:]
        for field in r.headers { lowered[field.name.lowercased()] = field.value }
        return Response(status: r.status, headers: lowered, body: r.body)
    }
}
