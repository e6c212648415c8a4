import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Network readiness checks run inside a pod's network namespace, on its loopback: a dedicated
/// thread enters the namespace with setns(2) (which affects only the calling thread), connects to
/// 127.0.0.1 and exits, so no other thread ever runs in the pod's namespace and nothing is ever
/// sent to a pod address.
enum NetnsProbe {
    /// Outcome of one check: success, or why it failed (for the error shown at timeout).
    enum Outcome: Sendable, Equatable {
        case success
        case failure(String)
    }

    static func tcp(netnsPath: String, port: UInt16, timeoutSeconds: Double) async -> Outcome {
        await onNetnsThread(netnsPath) {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            close(fd)
            return .success
        }
    }

    /// The kubelet's HTTP probe rule: a status in 200..<400 is success.
    static func http(netnsPath: String, port: UInt16, path: String, timeoutSeconds: Double) async -> Outcome {
        await onNetnsThread(netnsPath) {
            let fd = try connectLoopback(port: port, timeoutSeconds: timeoutSeconds)
            defer { close(fd) }
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: kube-probe/podstart\r\n"
                + "Accept: */*\r\nConnection: close\r\n\r\n"
            let bytes = Array(request.utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ProbeError("send: \(String(cString: strerror(errno)))")
                }
                sent += n
            }
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1024)
            while !response.contains(UInt8(ascii: "\n")), response.count < 8192 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ProbeError("recv: \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                response += buffer[..<n]
            }
            let statusLine = String(decoding: response.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") },
                                    as: UTF8.self)
            let fields = statusLine.split(separator: " ")
            guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let code = Int(fields[1]) else {
                return .failure("not an HTTP response: \(statusLine.prefix(80))")
            }
            return (200..<400).contains(code) ? .success : .failure("HTTP status \(code)")
        }
    }

    /// setns(2) is a _GNU_SOURCE declaration the Glibc module does not export; look it up once.
    private static let setns: (@convention(c) (Int32, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "setns") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()
    private static let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET, <linux/sched.h>

    struct ProbeError: Error { var message: String; init(_ m: String) { message = m } }

    private static func connectLoopback(port: UInt16, timeoutSeconds: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ProbeError("socket: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - timeoutSeconds.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let err = errno
            close(fd)
            throw ProbeError("connect 127.0.0.1:\(port): \(String(cString: strerror(err)))")
        }
        return fd
    }

    /// Runs `body` on a new thread that first joins the network namespace at `netnsPath`.
    private static func onNetnsThread(_ netnsPath: String,
                                      _ body: @escaping @Sendable () throws -> Outcome) async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let thread = Thread {
                let nsfd = open(netnsPath, O_RDONLY | O_CLOEXEC)
                guard nsfd >= 0 else {
                    continuation.resume(returning: .failure("open \(netnsPath): \(String(cString: strerror(errno)))"))
                    return
                }
                let joined = Self.setns?(nsfd, Self.cloneNewNet) ?? -1
                let err = errno
                close(nsfd)
                guard joined == 0 else {
                    continuation.resume(returning: .failure("setns \(netnsPath): \(String(cString: strerror(err)))"))
                    return
                }
                do {
                    continuation.resume(returning: try body())
                } catch let error as ProbeError {
                    continuation.resume(returning: .failure(error.message))
                } catch {
                    continuation.resume(returning: .failure("\(error)"))
                }
                // The thread ends here, taking its namespace membership with it.
            }
            thread.name = "podstart-netns-probe"
            thread.start()
        }
    }
}
