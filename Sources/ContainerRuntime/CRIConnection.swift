import Foundation
import GRPCCore
import Synchronization
import GRPCNIOTransportHTTP2
#if canImport(Glibc)
import Glibc
#endif

/// How podstart's gRPC connections to the runtime socket are kept, and what happens when one closes
/// under a call.
///
/// Why connections closed every ~20 s (found with a relay that logs the HTTP/2 frames of a
/// CRI client polling containerd 1.6.20, Tests/ContainerRuntimeTests/CuttingProxy.swift):
/// containerd's gRPC server (grpc-go) estimates bandwidth-delay product by sending a PING each time
/// it receives request data while no such PING is outstanding — in practice one PING per call. The
/// client's HTTP/2 stack (swift-nio-http2 1.46, DOSHeuristics) treats more than 200 inbound control
/// frames (PING, SETTINGS, …) in 30 s as a flood: it sends GOAWAY ENHANCE_YOUR_CALM (code 11) and
/// closes the connection, failing the calls in flight with `Stream unexpectedly closed.`. A client
/// making more than ~7 calls a second (the agent's poll, `trace`'s readiness wait beside a busy
/// kubelet) hits it every 15–30 s. grpc-swift-nio-transport does not expose that limit, and
/// keepalive or idle settings do not change it (the client sends no PINGs of its own).
///
/// So no connection is given more calls than the limit allows: ``RuntimeConnections`` moves to a
/// new connection every ``callsPerConnection`` calls (the old one finishes its calls and closes).
/// If a connection still closes under a call while the runtime accepts connections, the call is
/// retried once (only calls that are safe to repeat), the close is reported to the observers, and
/// a live runtime is never called "not running".
public enum CRIConnection {
    /// A connection that closed under a call.
    public struct Close: Sendable, Equatable {
        public var socket: String
        public var method: String
        /// The transport's words (`Stream unexpectedly closed.`).
        public var detail: String
        /// The call was made again on a new connection (and that attempt's outcome is the call's).
        public var retried: Bool
    }

    /// Calls sent on one connection before the next call opens a new one: each can draw one PING
    /// from containerd, and swift-nio-http2 closes a connection that receives more than 200 control
    /// frames in 30 s (a few SETTINGS frames are among them).
    public static let callsPerConnection = 150

    /// The transport configuration of every client.
    static func transportConfig() -> HTTP2ClientTransport.Posix.Config {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.http2.authority = "localhost"
        return config
    }

    static func makeTransport(_ endpoint: CRIEndpoint) throws -> HTTP2ClientTransport.Posix {
        do {
            return try HTTP2ClientTransport.Posix(
                target: .unixDomainSocket(path: endpoint.socketPath, authority: "localhost"),
                transportSecurity: .plaintext, config: transportConfig())
        } catch {
            throw CRIError.unavailable(socket: endpoint.socketPath, method: "connect", detail: "\(error)")
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var observers: [UInt64: @Sendable (Close) -> Void] = [:]
    nonisolated(unsafe) private static var nextToken: UInt64 = 0
    nonisolated(unsafe) private static var closes = 0

    /// Calls `handler` for every connection close from now on (from any thread); returns a token
    /// for ``removeObserver(_:)``. The agent counts them in its metrics.
    @discardableResult
    public static func addObserver(_ handler: @escaping @Sendable (Close) -> Void) -> UInt64 {
        lock.withLock {
            nextToken += 1
            observers[nextToken] = handler
            return nextToken
        }
    }

    public static func removeObserver(_ token: UInt64) {
        lock.withLock { _ = observers.removeValue(forKey: token) }
    }

    /// Closes seen by this process so far.
    public static var closeCount: Int { lock.withLock { closes } }

    static func report(_ close: Close) {
        let handlers = lock.withLock { () -> [@Sendable (Close) -> Void] in
            closes += 1
            return Array(observers.values)
        }
        for h in handlers { h(close) }
    }

    /// Whether a gRPC error is the connection going away under the call (as opposed to an answer
    /// of the runtime, a deadline, or a cancellation).
    static func isTransportClose(_ error: any Error) -> Bool {
        guard let rpc = error as? RPCError else { return false }
        return rpc.code == .unavailable
    }

    /// What the transport said of a close: gRPC's message and, when it has one, the cause under it
    /// ("subchannel is unavailable" alone does not say the connection was closed; its cause does).
    static func closeDetail(_ error: any Error) -> String {
        guard let rpc = error as? RPCError else { return "\(error)" }
        guard let cause = rpc.cause else { return rpc.message }
        return "\(rpc.message): \(cause)"
    }

    /// Calls whose repetition cannot do anything twice: reads, stops and removals (CRI makes them
    /// idempotent), pulls. Creating a sandbox or a container, starting one, or running a command
    /// in it are not repeated: the first attempt may have done it.
    static func isSafeToRepeat(_ method: String) -> Bool {
        !["RunPodSandbox", "CreateContainer", "StartContainer", "ExecSync"].contains(method)
    }

    /// Runs a unary call; a connection close under it is reported and, when the runtime still
    /// accepts connections and the call is safe to repeat, the call is made once more on a new
    /// connection (`reconnect`), waiting for it to be ready. Errors come back as ``CRIError``.
    static func call<Response: Sendable>(
        endpoint: CRIEndpoint, method: String, id: String?, options: CallOptions,
        reconnect: () throws -> Void,
        _ body: @Sendable (CallOptions) async throws -> Response
    ) async throws -> Response {
        let socket = endpoint.socketPath
        do {
            return try await body(options)
        } catch {
            guard isTransportClose(error) else {
                throw CRIError.mapping(error, socket: socket, method: method, id: id, timeout: options.timeout)
            }
            let detail = closeDetail(error)
            guard endpoint.acceptsConnections() else {
                // Nothing listens any more: the runtime is down (or restarting).
                throw CRIError.mapping(error, socket: socket, method: method, id: id, timeout: options.timeout)
            }
            let retry = isSafeToRepeat(method)
            report(Close(socket: socket, method: method, detail: detail, retried: retry))
            guard retry else {
                throw CRIError.connectionClosed(socket: socket, method: method, detail: detail, retried: false)
            }
            var again = options
            again.waitForReady = true
            do {
                try reconnect() // the repeat goes out on a new connection, not the one that closed
                return try await body(again)
            } catch {
                if isTransportClose(error), endpoint.acceptsConnections() {
                    report(Close(socket: socket, method: method, detail: closeDetail(error), retried: false))
                    throw CRIError.connectionClosed(socket: socket, method: method, detail: detail, retried: true)
                }
                throw CRIError.mapping(error, socket: socket, method: method, id: id, timeout: options.timeout)
            }
        }
    }
}

extension CRIEndpoint {
    /// Whether something accepts connections on the socket right now (a live runtime does; a
    /// stopped one leaves the socket file behind and refuses).
    public func acceptsConnections() -> Bool {
        withConnectedSocket { _ in true } ?? false
    }

    /// The pid of the process serving the socket (the runtime), from the credentials the kernel
    /// keeps for a unix socket's peer (SO_PEERCRED); nil when nothing accepts or they cannot be read.
    public func runtimePid() -> Int32? {
        withConnectedSocket { fd in
            // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc's module does not export it)
            var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
            var length = socklen_t(MemoryLayout.size(ofValue: credentials))
            guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.pid > 0 else { return nil }
            return credentials.pid
        } ?? nil
    }

    /// Runs `body` with a plain connection to the socket (closed after); nil when none is accepted.
    private func withConnectedSocket<T>(_ body: (Int32) -> T) -> T? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return ok == 0 ? body(fd) : nil
    }
}

/// The gRPC connection of one client to the runtime socket, replaced by a new one every
/// ``CRIConnection/callsPerConnection`` calls (see ``CRIConnection`` for why). Retired connections
/// finish their calls and close; ``shutdown()`` ends them all.
final class RuntimeConnections: Sendable {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    private struct State {
        var current: Client
        var calls = 0
        var opened = 1
        var tasks: [Task<Void, Never>] = []
        var retired: [Client] = []
        var closed = false
    }

    let endpoint: CRIEndpoint
    let callsPerConnection: Int
    private let state: Mutex<State>

    init(endpoint: CRIEndpoint, callsPerConnection: Int = CRIConnection.callsPerConnection) throws {
        self.endpoint = endpoint
        self.callsPerConnection = callsPerConnection
        let first = Client(transport: try CRIConnection.makeTransport(endpoint))
        var s = State(current: first)
        s.tasks.append(Task { try? await first.runConnections() })
        state = Mutex(s)
    }

    /// Connections opened so far (tests).
    var opened: Int { state.withLock { $0.opened } }

    /// The client for the next call; counts it, and moves to a new connection when the current
    /// one has had its share.
    func next() throws -> Client {
        try replace(ifCallsAtLeast: callsPerConnection)
        return state.withLock { s in
            s.calls += 1
            return s.current
        }
    }

    /// Moves to a new connection now (after the current one closed under a call).
    func reconnect() throws { try replace(ifCallsAtLeast: 0) }

    private func replace(ifCallsAtLeast limit: Int) throws {
        guard state.withLock({ $0.calls >= limit && !$0.closed }) else { return }
        let fresh = Client(transport: try CRIConnection.makeTransport(endpoint))
        let started = state.withLock { s -> Bool in
            guard s.calls >= limit, !s.closed else { return false }
            let old = s.current
            s.tasks.append(Task { try? await fresh.runConnections() })
            s.current = fresh
            s.calls = 0
            s.opened += 1
            old.beginGracefulShutdown()
            s.retired.append(old)
            if s.retired.count > 8 { s.retired.removeFirst(s.retired.count - 8) }
            // A retired connection closes once its calls are done: keep the handles of the
            // last few to wait for at shutdown, not one per connection ever opened.
            if s.tasks.count > 16 { s.tasks.removeFirst(s.tasks.count - 16) }
            return true
        }
        if !started { fresh.beginGracefulShutdown() } // another caller replaced it first; never run
    }

    /// Begins closing every connection; calls in flight finish first unless `cancel`.
    func close(cancel: Bool) {
        let (clients, tasks) = state.withLock { s -> ([Client], [Task<Void, Never>]) in
            s.closed = true
            return ([s.current] + s.retired, s.tasks)
        }
        for c in clients { c.beginGracefulShutdown() }
        if cancel { for t in tasks { t.cancel() } }
    }

    /// Closes every connection and waits until they are closed.
    func shutdown() async {
        close(cancel: false)
        for t in state.withLock({ $0.tasks }) { await t.value }
    }
}
