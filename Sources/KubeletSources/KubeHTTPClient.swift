import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where and how to reach a kubelet or API server over HTTP(S).
public struct KubeEndpoint: Sendable {
    public var scheme: String
    public var host: String
    public var port: Int
    /// Sent as `Authorization: Bearer …` (the service account token).
    public var bearerToken: String?
    /// PEM bundle that signs the server's certificate (the service account's `ca.crt`).
    public var caFile: String?
    /// For kubelets with self-signed serving certificates (`--kubelet-insecure-tls`).
    public var insecureSkipVerify: Bool
    /// Connect + response-head deadline; streams (watch) have no overall deadline.
    public var timeout: TimeAmount

    public init(url: String, bearerToken: String? = nil, caFile: String? = nil,
                insecureSkipVerify: Bool = false, timeout: TimeAmount = .seconds(10)) throws {
        guard let u = URLComponents(string: url), let scheme = u.scheme, scheme == "http" || scheme == "https",
              let host = u.host, !host.isEmpty
        else { throw KubeHTTPError.badURL(url) }
        self.scheme = scheme
        self.host = host
        self.port = u.port ?? (scheme == "https" ? 443 : 80)
        self.bearerToken = bearerToken
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.timeout = timeout
    }

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The API server as seen from a pod: `KUBERNETES_SERVICE_HOST`/`_PORT`, with the service
    /// account's token and CA.
    public static func inCluster(directory: String = serviceAccountDirectory) throws -> KubeEndpoint {
        let env = ProcessInfo.processInfo.environment
        guard let host = env["KUBERNETES_SERVICE_HOST"], let port = env["KUBERNETES_SERVICE_PORT"] else {
            throw KubeHTTPError.notInCluster
        }
        let h = host.contains(":") ? "[\(host)]" : host
        return try serviceAccount(url: "https://\(h):\(port)", directory: directory)
    }

    /// Any HTTPS endpoint (e.g. the node's kubelet, `https://<node-ip>:10250`) with the service
    /// account's token and CA. Kubelets whose serving certificate the cluster CA did not sign
    /// need `insecureSkipVerify` (as `--kubelet-insecure-tls` does for metrics-server).
    public static func serviceAccount(url: String, directory: String = serviceAccountDirectory,
                                      insecureSkipVerify: Bool = false, timeout: TimeAmount = .seconds(10)) throws -> KubeEndpoint {
        let token: String
        do {
            token = try String(contentsOfFile: directory + "/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw KubeHTTPError.connection("cannot read the service account token in \(directory): \(error); mount the service account or pass a token")
        }
        return try KubeEndpoint(url: url, bearerToken: token, caFile: directory + "/ca.crt",
                                insecureSkipVerify: insecureSkipVerify, timeout: timeout)
    }
}

public enum KubeHTTPError: Error, Sendable, CustomStringConvertible {
    case badURL(String)
    case notInCluster
    case status(code: Int, path: String, body: String)
    case timeout(path: String)
    case connection(String)
    case tls(String)
    case decode(path: String, reason: String)

    public var description: String {
        switch self {
        case .badURL(let u): "bad URL \(u): use http(s)://host:port"
        case .notInCluster: "KUBERNETES_SERVICE_HOST/PORT are not set: not running in a pod; pass the API server URL, token and CA explicitly"
        case .status(let code, let path, let body): "GET \(path) returned HTTP \(code): \(body.prefix(200))"
        case .timeout(let path): "GET \(path) timed out"
        case .connection(let why): "connection failed: \(why)"
        case .tls(let why): "TLS setup failed: \(why) (check the CA file)"
        case .decode(let path, let why): "cannot decode the response of \(path): \(why)"
        }
    }
}

/// A minimal HTTP/1.1 client on swift-nio (no extra dependency beyond NIO and NIOSSL): GET a
/// document, or stream a watch response line by line.
public struct KubeHTTPClient: Sendable {
    public let endpoint: KubeEndpoint
    let sslContext: NIOSSLContext?

    public init(_ endpoint: KubeEndpoint) throws {
        self.endpoint = endpoint
        if endpoint.scheme == "https" {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let ca = endpoint.caFile {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                } catch {
                    throw KubeHTTPError.tls("cannot read CA \(ca): \(error)")
                }
            }
            if endpoint.insecureSkipVerify { tls.certificateVerification = .none }
            do { sslContext = try NIOSSLContext(configuration: tls) } catch { throw KubeHTTPError.tls("\(error)") }
        } else {
            sslContext = nil
        }
    }

    /// GETs `path` and returns the body; non-2xx is an error carrying the body.
    public func get(_ path: String, accept: String = "application/json") async throws -> [UInt8] {
        var body: [UInt8] = []
        let status = try await request(path, accept: accept, deadlineWholeResponse: true, onBody: { chunk in
            body.append(contentsOf: chunk)
            return true
        })
        guard (200..<300).contains(status) else {
            throw KubeHTTPError.status(code: status, path: path, body: String(decoding: body, as: UTF8.self))
        }
        return body
    }

    /// GETs `path` and hands each newline-terminated line of the body to `onLine` until it
    /// returns false or the server ends the response (a watch stream).
    public func streamLines(_ path: String, onLine: ([UInt8]) throws -> Bool) async throws {
        var pending: [UInt8] = []
        var errorBody: [UInt8] = []
        var stop = false
        let code = try await request(path, accept: "application/json", deadlineWholeResponse: false, onBody: { chunk in
            if stop { return false }
            pending.append(contentsOf: chunk)
            var start = 0
            while let nl = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[start..<nl])
                start = nl + 1
                if !line.isEmpty, try !onLine(line) { stop = true; break }
            }
            pending.removeFirst(start)
            if pending.count > 64 << 20 { throw KubeHTTPError.decode(path: path, reason: "line longer than 64 MiB") }
            return !stop
        }, onErrorBody: { chunk in
            errorBody.append(contentsOf: chunk)
        })
        guard (200..<300).contains(code) else {
            throw KubeHTTPError.status(code: code, path: path, body: String(decoding: errorBody, as: UTF8.self))
        }
        if !stop, !pending.isEmpty { _ = try onLine(pending) }
    }

    /// Sends one GET on a new connection and feeds body chunks to `onBody` (return false to
    /// stop). Returns the status code.
    @discardableResult
    func request(_ path: String, accept: String, deadlineWholeResponse: Bool,
                 onBody: ([UInt8]) throws -> Bool,
                 onErrorBody: (([UInt8]) -> Void)? = nil) async throws -> Int {
        let endpoint = self.endpoint
        let ssl = sslContext
        let group = MultiThreadedEventLoopGroup.singleton
        let serverName: String? = {
            // SNI must not carry an IP address; NIOSSL then checks the IP SAN instead.
            if endpoint.host.contains(":") || endpoint.host.allSatisfy({ $0.isNumber || $0 == "." }) { return nil }
            return endpoint.host
        }()
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        let firstError = ErrorBox()
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(endpoint.timeout)
                .connect(host: endpoint.host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: endpoint.port) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        if let ssl {
                            try ch.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: ssl, serverHostname: serverName))
                            try ch.pipeline.syncOperations.addHandler(ErrorRecorder(box: firstError))
                        }
                        try ch.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: ch)
                    }
                }
        } catch {
            throw KubeHTTPError.connection("\(endpoint.host):\(endpoint.port): \(error)")
        }
        // The deadline closes the channel, which ends the inbound stream with an error.
        let underlying = channel.channel
        let timeout = endpoint.timeout
        let deadline = DeadlineFlag()
        let timer = underlying.eventLoop.scheduleTask(in: timeout) {
            deadline.fire()
            underlying.close(promise: nil)
        }
        var finished = false
        defer { timer.cancel() }
        var status = 0
        do {
            try await channel.executeThenClose { inbound, outbound in
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
                head.headers.add(name: "Host", value: endpoint.host)
                head.headers.add(name: "Accept", value: accept)
                head.headers.add(name: "User-Agent", value: "podstart")
                head.headers.add(name: "Connection", value: "close")
                if let token = endpoint.bearerToken { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
                try await outbound.write(.head(head))
                try await outbound.write(.end(nil))
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        status = Int(h.status.code)
                        if !deadlineWholeResponse { timer.cancel() }
                    case .body(let buf):
                        let bytes = Array(buf.readableBytesView)
                        if (200..<300).contains(status) || onErrorBody == nil {
                            if try !onBody(bytes) { finished = true; return }
                        } else {
                            onErrorBody?(bytes)
                        }
                    case .end:
                        finished = true
                        return
                    }
                }
            }
        } catch let e as KubeHTTPError {
            throw e
        } catch {
            if deadline.fired { throw KubeHTTPError.timeout(path: path) }
            // A failed handshake closes the channel; the write or read then only sees "closed".
            if let e = firstError.error, e is NIOSSLError || e is BoringSSLError || e is NIOSSLExtraError {
                throw KubeHTTPError.tls("\(e)")
            }
            if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError { throw KubeHTTPError.tls("\(error)") }
            throw KubeHTTPError.connection("\(error)")
        }
        if !finished {
            if deadline.fired { throw KubeHTTPError.timeout(path: path) }
            if status == 0 { throw KubeHTTPError.connection("\(endpoint.host):\(endpoint.port) closed the connection without a response") }
        }
        return status
    }
}

/// Set on the event loop when a request's deadline passes; read after the request ends.
final class DeadlineFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func fire() { lock.withLock { value = true } }
    var fired: Bool { lock.withLock { value } }
}

/// Keeps the first error the TLS layer raised, which otherwise surfaces only as a closed channel.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?
    func record(_ e: Error) { lock.withLock { if first == nil { first = e } } }
    var error: Error? { lock.withLock { first } }
}

final class ErrorRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let box: ErrorBox
    init(box: ErrorBox) { self.box = box }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        box.record(error)
        context.fireErrorCaught(error)
    }
}
