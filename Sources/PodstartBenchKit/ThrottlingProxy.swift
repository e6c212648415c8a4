import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on 127.0.0.1 in front of a loopback registry: it limits the registry → client
/// direction to `bytesPerSecond` per connection (a slow network, so pulls are download-bound) and
/// counts the bytes it relayed that way (what the pulls through it fetched). Used by
/// `podstart-bench prefetch` and by the tests that pull through a slow registry.
public final class ThrottlingProxy: @unchecked Sendable {
    public let port: UInt16
    private let listener: Int32
    private let upstreamPort: UInt16
    private let bytesPerSecond: Double
    private let lock = NSLock()
    private var stopped = false
    private var relayed = 0
    private var firstRelayUnixNs: Int64?
    private var lastRelayUnixNs: Int64?

    /// Bytes sent from the registry to clients so far.
    public var fetchedBytes: Int { lock.withLock { relayed } }

    /// The registry side's view of a pull: from the first byte relayed to a client to the moment
    /// the last one was sent (Unix nanoseconds), since the proxy started or `resetWindow()`.
    public var relayWindow: (firstUnixNs: Int64, lastUnixNs: Int64)? {
        lock.withLock { firstRelayUnixNs.flatMap { first in lastRelayUnixNs.map { (first, $0) } } }
    }

    public func resetWindow() { lock.withLock { firstRelayUnixNs = nil; lastRelayUnixNs = nil } }

    private static func unixNowNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(upstreamPort: UInt16, bytesPerSecond: Double) throws {
        self.upstreamPort = upstreamPort
        self.bytesPerSecond = bytesPerSecond
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw Failure(description: "proxy: socket: \(String(cString: strerror(errno)))") }
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            port = try LoopbackPort.bind(listener)
        } catch {
            close(listener)
            throw Failure(description: "proxy: \(error)")
        }
        guard listen(listener, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(listener)
            throw Failure(description: "proxy: listen on 127.0.0.1: \(reason)")
        }
        Thread { [self] in acceptLoop() }.start()
    }

    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = LoopbackPort.address(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(client); close(upstream); continue }
            let done = DispatchGroup()
            done.enter()
            Thread { [self] in relay(from: client, to: upstream, limited: false); done.leave() }.start()
            done.enter()
            Thread { [self] in relay(from: upstream, to: client, limited: true); done.leave() }.start()
            Thread { done.wait(); close(client); close(upstream) }.start()
        }
    }

    private func relay(from: Int32, to: Int32, limited: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        let begin = Date()
        var total = 0.0
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m < 0 && errno == EINTR { continue }
                if m <= 0 { break loop }
                sent += m
            }
            guard limited else { continue }
            let now = Self.unixNowNs()
            lock.withLock {
                relayed += n
                if firstRelayUnixNs == nil { firstRelayUnixNs = now }
                lastRelayUnixNs = now
            }
            total += Double(n)
            let due = total / bytesPerSecond - Date().timeIntervalSince(begin)
            if due > 0 { usleep(UInt32(due * 1e6)) }
        }
        shutdown(to, Int32(SHUT_WR))
    }
}
