import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A self-signed CA with a server certificate for 127.0.0.1/127.0.0.2 and a client certificate
/// signed by it, made with the openssl CLI at test time; or (`selfSigned`) a lone self-signed
/// server certificate, as a kubelet makes for itself when no CA signs its serving certificate.
public struct TestPKI: Sendable {
    public let directory: String
    public var caFile: String { directory + "/ca.crt" }
    public var certFile: String { directory + "/server.crt" }
    public var keyFile: String { directory + "/server.key" }
    public var clientCertFile: String { directory + "/client.crt" }
    public var clientKeyFile: String { directory + "/client.key" }

    public static func make(selfSigned: Bool = false) throws -> TestPKI {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = selfSigned ? """
            set -e
            cd "\(dir)"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout server.key -out server.crt -days 2 -subj "/CN=test-node@1733400000" \\
              -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
            """ : """
            set -e
            cd "\(dir)"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=podstart-test-ca" 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
            printf "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n" > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=system:serviceaccount:podstart:agent" 2>/dev/null
            printf "basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n" > client.cnf
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.cnf 2>/dev/null
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestServerError("openssl failed (status \(p.terminationStatus)); the openssl CLI is needed to make the test CA") }
        return TestPKI(directory: dir)
    }
}

public struct TestServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// What the fake kubelet / API server answers: a status and body chunks (written with a short
/// pause between them, like a watch stream), or no answer at all.
public struct TestRoute: Sendable {
    public var status: HTTPResponseStatus = .ok
    public var contentType = "application/json"
    public var chunks: [String]
    public var hang = false
    /// Extra response headers (a redirect's `Location`).
    public var headers: [(String, String)] = []
    /// Chunks written after `chunks` as they come (a watch that stays open while the test makes
    /// changes); the response ends when the stream finishes.
    public var more: AsyncStream<String>?
    /// After `chunks`, close the connection without ending the response (a server or proxy that
    /// went away mid-body).
    public var cut = false
    public init(status: HTTPResponseStatus = .ok, contentType: String = "application/json", chunks: [String], hang: Bool = false,
                headers: [(String, String)] = [], more: AsyncStream<String>? = nil, cut: Bool = false) {
        self.cut = cut
        self.status = status
        self.contentType = contentType
        self.chunks = chunks
        self.hang = hang
        self.headers = headers
        self.more = more
    }
}

/// One request as the test server got it.
public struct TestRequest: Sendable {
    public var method: String
    public var uri: String
    public var authorization: String?
    public var body: [UInt8]
}

/// A local HTTPS (or HTTP) server on 127.0.0.1 serving recorded samples, for the scrape and
/// list/watch tests. It records every request it got.
public final class TestHTTPSServer: @unchecked Sendable {
    let channel: Channel
    public let host: String
    public let port: Int

    /// `route` gets the request URI and Authorization header. `host` is any loopback address
    /// (127.0.0.2 is "another host" to a client of 127.0.0.1); `requireClientCertificate` refuses
    /// clients without a certificate signed by the PKI's CA.
    public convenience init(pki: TestPKI?, host: String = "127.0.0.1", requireClientCertificate: Bool = false,
                            route: @escaping @Sendable (String, String?) -> TestRoute) async throws {
        try await self.init(pki: pki, host: host, requireClientCertificate: requireClientCertificate,
                            handle: { request in route(request.uri, request.authorization) })
    }

    /// `handle` gets the whole request, its body included (an API server answering reviews).
    public init(pki: TestPKI?, host: String = "127.0.0.1", requireClientCertificate: Bool = false,
                handle route: @escaping @Sendable (TestRequest) -> TestRoute) async throws {
        var ssl: NIOSSLContext?
        if let pki {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(pki.certFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: pki.keyFile, format: .pem)))
            if requireClientCertificate {
                tls.certificateVerification = .noHostnameVerification
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(pki.caFile))
            }
            ssl = try NIOSSLContext(configuration: tls)
        }
        self.host = host
        let box = RequestLog()
        let sslContext = ssl
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    if let sslContext { try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                    try ch.pipeline.syncOperations.configureHTTPServerPipeline()
                    try ch.pipeline.syncOperations.addHandler(Handler(route: route, log: box))
                }
            }
            .bind(host: host, port: 0).get()
        port = channel.localAddress!.port!
        logBox = box
    }

    private let logBox: RequestLog

    public var log: [(uri: String, authorization: String?)] { logBox.all }

    public func shutdown() async throws { try await channel.close() }

    final class RequestLog: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [(uri: String, authorization: String?)] = []
        func add(_ uri: String, _ auth: String?) { lock.withLock { entries.append((uri, auth)) } }
        var all: [(uri: String, authorization: String?)] { lock.withLock { entries } }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let route: @Sendable (TestRequest) -> TestRoute
        let log: RequestLog
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(route: @escaping @Sendable (TestRequest) -> TestRoute, log: RequestLog) {
            self.route = route
            self.log = log
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(let chunk): body.append(contentsOf: chunk.readableBytesView)
            case .end:
                guard let h = head else { return }
                let auth = h.headers["Authorization"].first
                log.add(h.uri, auth)
                let r = route(TestRequest(method: h.method.rawValue, uri: h.uri, authorization: auth, body: body))
                if r.hang { return }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: r.contentType)
                headers.add(name: "Transfer-Encoding", value: "chunked")
                headers.add(name: "Connection", value: "close")
                for (name, value) in r.headers { headers.add(name: name, value: value) }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: r.status, headers: headers))), promise: nil)
                context.flush()
                writeChunks(context: context, r.chunks[...], then: r.more, cut: r.cut)
            }
        }

        private func writeChunks(context: ChannelHandlerContext, _ rest: ArraySlice<String>, then more: AsyncStream<String>? = nil,
                                 cut: Bool = false) {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            guard let first = rest.first else {
                if cut { context.close(promise: nil); return }
                guard let more else {
                    context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.1.close(promise: nil) }
                    return
                }
                // each later chunk written on the channel's loop as the test yields it; the end when it finishes
                let loop = context.eventLoop
                Task {
                    for await chunk in more {
                        loop.execute { bound.value.0.writeBody(context: bound.value.1, chunk) }
                    }
                    loop.execute { bound.value.0.writeChunks(context: bound.value.1, [][...]) }
                }
                return
            }
            writeBody(context: context, first)
            let next = rest.dropFirst()
            context.eventLoop.scheduleTask(in: .milliseconds(5)) { bound.value.0.writeChunks(context: bound.value.1, next, then: more, cut: cut) }
        }

        private func writeBody(context: ChannelHandlerContext, _ chunk: String) {
            var buf = context.channel.allocator.buffer(capacity: chunk.utf8.count)
            buf.writeString(chunk)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        }
    }
}
