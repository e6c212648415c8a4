import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The smallest API server `podstart-bench agent --churn` needs: HTTPS on 127.0.0.1 with a bearer
/// token, serving one node's pods as `GET /api/v1/pods?fieldSelector=spec.nodeName=NODE` (a
/// PodList) and `…&watch=true&resourceVersion=N` (the changes after N, then every later change as
/// it is published, on a connection that stays open; a version older than the history kept is
/// answered with the 410 "Expired" event a real API server sends). It counts every request by kind,
/// which is the figure the bench reports: an agent that lists per poll shows up as lists per minute.
/// Everything else gets 404 (counted as `other`).
public final class BenchAPIServer: @unchecked Sendable {
    public let port: Int
    public let node: String
    private let channel: Channel
    private let lock = NSLock()
    private var _state = State()

    public struct Requests: Sendable, Equatable {
        public var lists = 0
        public var watches = 0
        public var unauthorized = 0
        public var other = 0
        public var total: Int { lists + watches + unauthorized + other }
    }

    struct State {
        var version = 1000
        var history: [(version: Int, line: String)] = []
        var pods: [String: Data] = [:]
        var watchers: [ObjectIdentifier: Watcher] = [:]
        var requests = Requests()
    }

    /// A watch connection: writes happen on its channel's event loop.
    struct Watcher {
        let send: @Sendable (String) -> Void
    }

    private func withState<T>(_ body: (inout State) throws -> T) rethrows -> T {
        try lock.withLock { try body(&_state) }
    }

    /// Changes kept for watches resuming from a version (a real server keeps a window too).
    public var historyLimit = 20_000

    public var requests: Requests { withState { $0.requests } }
    public var openWatches: Int { withState { $0.watchers.count } }

    public init(certFile: String, keyFile: String, token: String, node: String) async throws {
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
        let ssl = try NIOSSLContext(configuration: tls)
        self.node = node
        let box = ServerBox()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: ssl))
                    try ch.pipeline.syncOperations.configureHTTPServerPipeline()
                    try ch.pipeline.syncOperations.addHandler(Handler(server: box, token: token))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
        box.server = self
    }

    public func shutdown() async throws {
        withState { $0.watchers = [:] }
        try await channel.close()
    }

    /// Publishes a change (`ADDED`, `MODIFIED`, `DELETED`) of a pod object: gives it the next
    /// resourceVersion, stores it (or removes it on `DELETED`) and writes it to every open watch.
    public func publish(_ type: String, _ pod: [String: Any]) throws {
        var object = pod
        var meta = object["metadata"] as? [String: Any] ?? [:]
        guard let uid = meta["uid"] as? String else { throw Failure(description: "pod without metadata.uid") }
        // versions are handed out and written under one lock, so every watch sees them in order
        try withState { s in
            s.version += 1
            meta["resourceVersion"] = "\(s.version)"
            object["metadata"] = meta
            let data = try JSONSerialization.data(withJSONObject: object)
            let line = String(decoding: try JSONSerialization.data(withJSONObject: ["type": type, "object": object]), as: UTF8.self) + "\n"
            if type == "DELETED" { s.pods[uid] = nil } else { s.pods[uid] = data }
            s.history.append((s.version, line))
            if s.history.count > historyLimit { s.history.removeFirst(s.history.count - historyLimit / 2) }
            for watcher in s.watchers.values { watcher.send(line) }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    enum Answer {
        case status(HTTPResponseStatus, String)
        case body(String)
        case watch(replay: [String])
    }

    /// What a request gets; a watch is registered by the handler once its head is written.
    fileprivate func answer(uri: String, authorization: String?, token: String) -> Answer {
        guard authorization == "Bearer \(token)" else {
            withState { $0.requests.unauthorized += 1 }
            return .status(.unauthorized, #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#)
        }
        let selector = "fieldSelector=" + ("spec.nodeName=" + node).addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))!
        guard uri.hasPrefix("/api/v1/pods?"), uri.split(separator: "?", maxSplits: 1).last!.split(separator: "&").contains(where: { $0 == selector }) else {
            withState { $0.requests.other += 1 }
            return .status(.notFound, #"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#)
        }
        let query = uri.split(separator: "?", maxSplits: 1).last!.split(separator: "&")
        let from = query.first { $0.hasPrefix("resourceVersion=") }.flatMap { Int($0.dropFirst("resourceVersion=".count)) }
        if query.contains("watch=true") || query.contains("watch=1") {
            return withState { s in
                s.requests.watches += 1
                guard let from else { return .watch(replay: []) }
                if let oldest = s.history.first?.version, from < oldest - 1 {
                    return .watch(replay: [#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version","reason":"Expired","code":410}}"# + "\n"])
                }
                return .watch(replay: s.history.filter { $0.version > from }.map(\.line))
            }
        }
        let (version, items) = withState { s in
            s.requests.lists += 1
            return (s.version, Array(s.pods.values))
        }
        var body = #"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"\#(version)"},"items":["#
        body += items.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",")
        body += "]}"
        return .body(body)
    }

    fileprivate func register(_ id: ObjectIdentifier, _ watcher: Watcher) { withState { $0.watchers[id] = watcher } }
    fileprivate func unregister(_ id: ObjectIdentifier) { _ = withState { $0.watchers.removeValue(forKey: id) } }

    final class ServerBox: @unchecked Sendable {
        weak var server: BenchAPIServer?
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let box: ServerBox
        let token: String
        var head: HTTPRequestHead?
        var watching = false

        init(server: ServerBox, token: String) {
            box = server
            self.token = token
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let h = head, let server = box.server else { context.close(promise: nil); return }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                switch server.answer(uri: h.uri, authorization: h.headers["Authorization"].first, token: token) {
                case .status(let status, let text):
                    headers.add(name: "Content-Length", value: "\(text.utf8.count)")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    write(context, text)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                case .body(let text):
                    headers.add(name: "Content-Length", value: "\(text.utf8.count)")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    write(context, text)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                case .watch(let replay):
                    headers.add(name: "Transfer-Encoding", value: "chunked")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    for line in replay { write(context, line) }
                    context.flush()
                    watching = true
                    let loop = context.eventLoop
                    let bound = NIOLoopBound((self, context), eventLoop: loop)
                    server.register(ObjectIdentifier(self), Watcher(send: { line in
                        loop.execute {
                            let (handler, ctx) = bound.value
                            guard handler.watching else { return }
                            handler.write(ctx, line)
                            ctx.flush()
                        }
                    }))
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            watching = false
            box.server?.unregister(ObjectIdentifier(self))
            context.fireChannelInactive()
        }

        func write(_ context: ChannelHandlerContext, _ text: String) {
            var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
            buffer.writeString(text)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI, for `BenchAPIServer`.
public struct BenchPKI: Sendable {
    public let directory: String
    public var caFile: String { directory + "/ca.crt" }
    public var certFile: String { directory + "/server.crt" }
    public var keyFile: String { directory + "/server.key" }

    public static func make(in directory: String) throws -> BenchPKI {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd "$0"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=podstart-bench-ca" 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
            printf "subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n" > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script, directory]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw BenchAPIServer.Failure(description: "openssl failed (status \(p.terminationStatus)); the openssl CLI makes the bench API server's CA")
        }
        return BenchPKI(directory: directory)
    }

    /// A kubeconfig reaching `server` with this CA and `token`.
    public func kubeconfig(port: Int, token: String) throws -> String {
        let path = directory + "/kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            current-context: bench
            clusters:
            - name: bench
              cluster:
                server: https://127.0.0.1:\(port)
                certificate-authority: \(caFile)
            contexts:
            - name: bench
              context: {cluster: bench, user: bench}
            users:
            - name: bench
              user: {token: \(token)}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
