import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A unix-socket relay in front of containerd's socket that can drop a connection the way a
/// runtime-side close looks to the client: armed with ``cutNextRequest()``, the next bytes a
/// client sends (the next call's HEADERS) are not forwarded and both sides are shut down.
/// containerd keeps running and the relay keeps accepting new connections.
public final class CuttingProxy: @unchecked Sendable {
    public let path: String
    private let upstreamPath: String
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var armed = 0
    private var passing = 0
    public private(set) var connections = 0
    public private(set) var cuts = 0
    /// HTTP/2 connection-level frames seen (PING, GOAWAY, RST_STREAM, SETTINGS) and closes, in
    /// order, when `recordFrames` is set: what each side said before a connection ended.
    public var recordFrames = false
    public private(set) var frames: [String] = []

    public init(upstreamPath: String) throws {
        self.upstreamPath = upstreamPath
        path = "/tmp/podstart-cut-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var address = Self.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            throw LocalEnvironment.StartFailure(description: "proxy: bind/listen on \(path): \(String(cString: strerror(errno)))")
        }
        Thread { [self] in acceptLoop() }.start()
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        return address
    }

    public func cutNextRequest() { cutNextRequests(1) }

    /// The next `count` requests, each on the connection it arrives on: a call and its repeat on
    /// a new connection both fail when `count` is 2.
    /// `after`: let that many client writes through first (a listing's first calls), so that the
    /// cut lands in the middle of a series of calls.
    public func cutNextRequests(_ count: Int, after: Int = 0) { lock.withLock { armed = count; passing = after } }

    public var counts: (connections: Int, cuts: Int) { lock.withLock { (connections, cuts) } }

    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(path)
    }

    private func acceptLoop() {
        while !lock.withLock({ stopped }) {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let upstream = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = Self.address(upstreamPath)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else { close(client); close(upstream); continue }
            lock.withLock { connections += 1 }
            let done = DispatchGroup()
            for (from, to, cuttable) in [(client, upstream, true), (upstream, client, false)] {
                done.enter()
                Thread { [self] in relay(from: from, to: to, cuttable: cuttable, peer: (client, upstream)); done.leave() }.start()
            }
            Thread { done.wait(); close(client); close(upstream) }.start()
        }
    }

    private func note(_ text: String) {
        let t = String(format: "%.3f", Date().timeIntervalSince1970)
        lock.withLock { frames.append("\(t) \(text)") }
    }

    private func relay(from: Int32, to: Int32, cuttable: Bool, peer: (Int32, Int32)) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        let direction = cuttable ? "client→runtime" : "runtime→client"
        var pending: [UInt8] = []
        var skip = cuttable ? 24 : 0 // the client's connection preface
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if recordFrames { note("\(direction) fd \(from) closed (recv \(n), errno \(n < 0 ? errno : 0))") }
                break
            }
            if recordFrames {
                pending += buffer[0..<n]
                if skip > 0 { let k = min(skip, pending.count); pending.removeFirst(k); skip -= k }
                while pending.count >= 9 {
                    let length = Int(pending[0]) << 16 | Int(pending[1]) << 8 | Int(pending[2])
                    guard pending.count >= 9 + length else { break }
                    let type = pending[3], flags = pending[4]
                    let stream = (UInt32(pending[5]) << 24 | UInt32(pending[6]) << 16 | UInt32(pending[7]) << 8 | UInt32(pending[8])) & 0x7fff_ffff
                    let payload = Array(pending[9..<(9 + length)])
                    switch type {
                    case 3: note("\(direction) fd \(from) RST_STREAM stream \(stream) code \(payload.prefix(4).reduce(0) { $0 << 8 | UInt32($1) })")
                    case 4: note("\(direction) fd \(from) SETTINGS flags \(flags) \(payload.count / 6) settings")
                    case 6: note("\(direction) fd \(from) PING ack=\(flags & 1) data \(payload.map { String($0) }.joined(separator: ","))")
                    case 7:
                        let code = payload.count >= 8 ? payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) } : 0
                        note("\(direction) fd \(from) GOAWAY code \(code) debug \"\(String(decoding: payload.dropFirst(8), as: UTF8.self))\"")
                    default: break
                    }
                    pending.removeFirst(9 + length)
                }
            }
            if cuttable, lock.withLock({ () -> Bool in
                guard armed > 0 else { return false }
                if passing > 0 { passing -= 1; return false }
                armed -= 1
                cuts += 1
                return true
            }) {
                shutdown(peer.0, Int32(SHUT_RDWR))
                shutdown(peer.1, Int32(SHUT_RDWR))
                return
            }
            guard Self.sendAll(to, buffer[0..<n]) else { return }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Writes all of `bytes` to `fd`; false when the peer is gone.
    public static func sendAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var sent = bytes.startIndex
        while sent < bytes.endIndex {
            let m = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if m < 0 && errno == EINTR { continue }
            if m <= 0 { return false }
            sent += m
        }
        return true
    }
}
