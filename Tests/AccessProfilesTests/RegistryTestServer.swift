import AccessProfiles
import Foundation
import PodstartCore
#if canImport(Glibc)
import Glibc
#endif

/// A small OCI registry on 127.0.0.1 written for the tests: manifests and blobs in memory,
/// monolithic uploads, the referrers API of distribution-spec v1.1 (`GET /v2/<name>/referrers/<digest>`
/// answering an image index, `OCI-Subject` on a manifest PUT with a subject), and switches that
/// make it refuse: every request answered with one status, a bearer-token challenge, failing
/// requests that match a predicate. It logs every request so tests can check what was written.
final class RegistryTestServer: @unchecked Sendable {
    enum Mode {
        case registry
        /// Answer every request with this status (and a distribution-spec error body).
        case refuse(status: Int)
    }

    struct Request: Sendable {
        var method: String
        var path: String
        var query: String
        var headers: [String: String]
        var body: [UInt8]
    }

    let port: UInt16
    /// The loopback address it listens on: 127.0.0.2 is another host to a client of 127.0.0.1.
    let host: String
    var address: String { "\(host):\(port)" }
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var mode: Mode
    private let referrersAPI: Bool
    /// When set, `/v2/` requests need `Authorization: Bearer <token>` obtained from `/token`
    /// with these basic credentials.
    private let bearerCredentials: RegistryCredentials?
    private static let token = "podstart-test-token"
    private var manifests: [String: (mediaType: String, body: [UInt8])] = [:]   // "repo@digest"
    private var tags: [String: String] = [:]                                    // "repo:tag" → digest
    private var blobs: [String: [UInt8]] = [:]                                  // digest
    private var uploads: Set<String> = []
    private var failing: (@Sendable (Request) -> Int?)?
    private var redirecting: (@Sendable (Request) -> String?)?
    /// The token service named in bearer challenges; default: this server's `/token`.
    private let realm: String?
    private(set) var log: [Request] = []

    init(mode: Mode = .registry, referrersAPI: Bool = true, bearerCredentials: RegistryCredentials? = nil,
         host: String = "127.0.0.1", realm: String? = nil) throws {
        self.host = host
        self.realm = realm
        self.mode = mode
        self.referrersAPI = referrersAPI
        self.bearerCredentials = bearerCredentials
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "bind \(host): \(String(cString: strerror(errno)))"])
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: actual.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    deinit { stop() }

    func stop() {
        let wasStopped = lock.withLock { let s = stopped; stopped = true; return s }
        guard !wasStopped else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// Requests for which `predicate` returns a status are answered with it instead.
    func fail(when predicate: @escaping @Sendable (Request) -> Int?) { lock.withLock { failing = predicate } }

    /// Requests for which `predicate` returns a URL are answered `307 Temporary Redirect` to it
    /// (after the auth check), as registries send blobs to object storage.
    func redirect(when predicate: @escaping @Sendable (Request) -> String?) { lock.withLock { redirecting = predicate } }

    var requests: [Request] { lock.withLock { log } }
    func tagged(_ repository: String, _ tag: String) -> String? { lock.withLock { tags["\(repository):\(tag)"] } }
    func manifest(_ repository: String, _ digest: String) -> [UInt8]? { lock.withLock { manifests["\(repository)@\(digest)"]?.body } }

    /// Stores an image manifest (with its config blob) directly, as if pushed before the test.
    func seedImage(repository: String, tag: String) -> String {
        let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let configDigest = OCIRegistryClient.sha256(config)
        let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":[]}"#.utf8)
        let digest = OCIRegistryClient.sha256(manifest)
        lock.withLock {
            blobs[configDigest] = config
            manifests["\(repository)@\(digest)"] = (OCIMediaType.imageManifest, manifest)
            tags["\(repository):\(tag)"] = digest
        }
        return digest
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            let client = accept(listener, nil, nil)
            if client < 0 { if errno == EINTR { continue } else { return } }
            serve(client)
            close(client)
        }
    }

    // MARK: HTTP/1.1, one request per connection

    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { return false }
            buffer += chunk[0..<n]
            return true
        }
        var headerEnd: Int?
        while headerEnd == nil {
            guard fill() else { return }
            headerEnd = find(Array("\r\n\r\n".utf8), in: buffer)
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = head[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        if headers["expect"]?.lowercased() == "100-continue" { writeAll(fd, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
        var body = Array(buffer[(headerEnd! + 4)...])
        while body.count < length {
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { return }
            body += chunk[0..<n]
        }
        let target = String(parts[1])
        let (path, query) = target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) }
            ?? (target, "")
        let request = Request(method: String(parts[0]), path: path, query: query, headers: headers, body: Array(body.prefix(length)))
        let (status, responseHeaders, responseBody) = respond(request)
        var out = "HTTP/1.1 \(status) \(status < 300 ? "OK" : "Error")\r\nConnection: close\r\nContent-Length: \(responseBody.count)\r\n"
        for (k, v) in responseHeaders { out += "\(k): \(v)\r\n" }
        out += "\r\n"
        writeAll(fd, Array(out.utf8) + (request.method == "HEAD" ? [] : responseBody))
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            offset += n
        }
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }

    // MARK: the registry

    private typealias Reply = (Int, [String: String], [UInt8])

    private func error(_ status: Int, _ code: String, _ message: String) -> Reply {
        (status, ["Content-Type": "application/json"], Array(#"{"errors":[{"code":"\#(code)","message":"\#(message)"}]}"#.utf8))
    }

    private func respond(_ request: Request) -> Reply {
        lock.withLock { log.append(request) }
        if case .refuse(let status) = lock.withLock({ mode }) {
            return status == 401
                ? (401, ["WWW-Authenticate": #"Basic realm="podstart-test""#, "Content-Type": "application/json"],
                   Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.utf8))
                : error(status, "UNKNOWN", "the test registry refuses everything")
        }
        if let failing = lock.withLock({ failing }), let status = failing(request) {
            return error(status, "UNKNOWN", "injected failure")
        }
        if let credentials = bearerCredentials {
            if request.path == "/token" {
                let expected = "Basic " + Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
                guard request.headers["authorization"] == expected else { return error(401, "UNAUTHORIZED", "bad credentials") }
                return (200, ["Content-Type": "application/json"], Array(#"{"token":"\#(Self.token)"}"#.utf8))
            }
            guard request.headers["authorization"] == "Bearer \(Self.token)" else {
                return (401, ["WWW-Authenticate": #"Bearer realm="\#(realm ?? "http://" + address + "/token")",service="podstart-test",scope="repository:x:pull""#,
                              "Content-Type": "application/json"],
                        Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#.utf8))
            }
        }
        if let redirecting = lock.withLock({ redirecting }), let location = redirecting(request) {
            return (307, ["Location": location], [])
        }
        if request.path == "/v2/" { return (200, [:], []) }
        guard request.path.hasPrefix("/v2/") else { return error(404, "NOT_FOUND", "no such route") }
        let rest = String(request.path.dropFirst(4))
        for kind in ["/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/"] {
            guard let range = rest.range(of: kind) else { continue }
            let repository = String(rest[..<range.lowerBound])
            let reference = String(rest[range.upperBound...])
            switch kind {
            case "/manifests/": return manifestRequest(request, repository, reference)
            case "/blobs/uploads/": return uploadRequest(request, repository, reference)
            case "/blobs/": return blobRequest(request, reference)
            default: return referrersRequest(request, repository, reference)
            }
        }
        return error(404, "NOT_FOUND", "no such route")
    }

    private func manifestRequest(_ request: Request, _ repository: String, _ reference: String) -> Reply {
        switch request.method {
        case "GET", "HEAD":
            let digest: String? = reference.hasPrefix("sha256:") ? reference : lock.withLock { tags["\(repository):\(reference)"] }
            guard let digest, let stored = lock.withLock({ manifests["\(repository)@\(digest)"] }) else {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            }
            return (200, ["Content-Type": stored.mediaType, "Docker-Content-Digest": digest], stored.body)
        case "PUT":
            let digest = OCIRegistryClient.sha256(request.body)
            if reference.hasPrefix("sha256:"), reference != digest { return error(400, "DIGEST_INVALID", "digest mismatch") }
            guard let json = try? JSON.parse(request.body) else { return error(400, "MANIFEST_INVALID", "not JSON") }
            for d in [json["config"]].compactMap({ $0 }) + (json["layers"]?.arrayValue ?? []) {
                guard let digest = d["digest"]?.stringValue, lock.withLock({ blobs[digest] }) != nil else {
                    return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown")
                }
            }
            let mediaType = request.headers["content-type"] ?? OCIMediaType.imageManifest
            lock.withLock {
                manifests["\(repository)@\(digest)"] = (mediaType, request.body)
                if !reference.hasPrefix("sha256:") { tags["\(repository):\(reference)"] = digest }
            }
            var headers = ["Docker-Content-Digest": digest, "Location": "/v2/\(repository)/manifests/\(digest)"]
            if referrersAPI, let subject = json["subject"]?["digest"]?.stringValue { headers["OCI-Subject"] = subject }
            return (201, headers, [])
        default:
            return error(405, "UNSUPPORTED", "method")
        }
    }

    private func uploadRequest(_ request: Request, _ repository: String, _ session: String) -> Reply {
        switch request.method {
        case "POST":
            let id = UUID().uuidString.lowercased()
            lock.withLock { _ = uploads.insert(id) }
            return (202, ["Location": "/v2/\(repository)/blobs/uploads/\(id)?state=test", "Range": "0-0"], [])
        case "PUT":
            guard lock.withLock({ uploads.remove(session) }) != nil else { return error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown") }
            let digest = request.query.split(separator: "&").first { $0.hasPrefix("digest=") }
                .map { String($0.dropFirst("digest=".count)).removingPercentEncoding ?? "" } ?? ""
            guard digest == OCIRegistryClient.sha256(request.body) else { return error(400, "DIGEST_INVALID", "digest mismatch") }
            lock.withLock { blobs[digest] = request.body }
            return (201, ["Docker-Content-Digest": digest, "Location": "/v2/\(repository)/blobs/\(digest)"], [])
        default:
            return error(405, "UNSUPPORTED", "method")
        }
    }

    private func blobRequest(_ request: Request, _ digest: String) -> Reply {
        guard let blob = lock.withLock({ blobs[digest] }) else { return error(404, "BLOB_UNKNOWN", "blob unknown") }
        return (200, ["Content-Type": "application/octet-stream", "Docker-Content-Digest": digest], blob)
    }

    private func referrersRequest(_ request: Request, _ repository: String, _ digest: String) -> Reply {
        guard referrersAPI else { return (404, ["Content-Type": "text/plain"], Array("404 page not found\n".utf8)) }
        let filter = request.query.split(separator: "&").first { $0.hasPrefix("artifactType=") }
            .map { String($0.dropFirst("artifactType=".count)).removingPercentEncoding ?? "" }
        let all = lock.withLock { manifests.filter { $0.key.hasPrefix("\(repository)@") } }
        var entries: [JSON] = []
        for (key, stored) in all.sorted(by: { $0.key < $1.key }) {
            guard let json = try? JSON.parse(stored.body), json["subject"]?["digest"]?.stringValue == digest else { continue }
            let type = json["artifactType"]?.stringValue ?? json["config"]?["mediaType"]?.stringValue ?? ""
            if let filter, type != filter { continue }
            var fields: [(String, JSON)] = [("mediaType", .string(stored.mediaType)),
                                            ("digest", .string(String(key.split(separator: "@").last!))),
                                            ("size", .int(Int64(stored.body.count))), ("artifactType", .string(type))]
            if let annotations = json["annotations"] { fields.append(("annotations", annotations)) }
            entries.append(.object(fields))
        }
        var headers = ["Content-Type": OCIMediaType.imageIndex]
        if filter != nil { headers["OCI-Filters-Applied"] = "artifactType" }
        let index = JSON.object([("schemaVersion", .int(2)), ("mediaType", .string(OCIMediaType.imageIndex)), ("manifests", .array(entries))])
        return (200, headers, Array(index.rendered().utf8))
    }
}
