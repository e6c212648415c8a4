import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong talking to the container runtime, with what to do about it.
public enum CRIError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalidEndpoint(String, reason: String)
    /// Nothing at the socket path (errno from stat).
    case socketMissing(path: String, errno: Int32)
    case notASocket(path: String)
    /// The socket exists but nobody answers on it (connection refused, runtime shutting down).
    case unavailable(socket: String, method: String, detail: String)
    /// The runtime answered with a gRPC error status.
    case call(method: String, socket: String, code: String, message: String)
    /// The call did not finish within its deadline.
    case deadlineExceeded(method: String, socket: String, seconds: Double)
    /// The runtime has no such object (ContainerStatus/PodSandboxStatus of an unknown id).
    case notFound(method: String, id: String, message: String)
    /// The runtime answered something podstart cannot use.
    case badResponse(method: String, detail: String)
    /// The connection closed under the call while the runtime still accepts connections (it is
    /// running); `retried`: the call was made again on a new connection and that closed too.
    case connectionClosed(socket: String, method: String, detail: String, retried: Bool)

    public var description: String {
        switch self {
        case let .invalidEndpoint(text, reason):
            return "invalid CRI endpoint '\(text)': \(reason)"
        case let .socketMissing(path, err):
            return "no container runtime socket at \(path) (\(String(cString: strerror(err)))): "
                + "containerd not running? start it or pass --cri-endpoint unix:///path/to/containerd.sock"
                + " (scripts/localenv.sh up starts a private one and prints its endpoint)"
        case let .notASocket(path):
            return "\(path) exists but is not a unix socket: pass the runtime's socket with --cri-endpoint"
        case let .unavailable(socket, method, detail):
            return "container runtime at unix://\(socket) did not answer \(method) (\(detail)): "
                + "containerd not running? start it or pass --cri-endpoint"
        case let .call(method, socket, code, message):
            return "\(method) failed on unix://\(socket): \(code): \(message)"
        case let .deadlineExceeded(method, socket, seconds):
            return "\(method) on unix://\(socket) did not finish within \(seconds) s"
        case let .notFound(method, id, message):
            return "\(method): \(id) not found (\(message))"
        case let .badResponse(method, detail):
            return "\(method): unexpected answer from the runtime: \(detail)"
        case let .connectionClosed(socket, method, detail, retried):
            return "the connection to the container runtime at unix://\(socket) closed during \(method) (\(detail))"
                + (retried ? ", and again when the call was repeated" : "; the call was not repeated (it may have taken effect)")
                + "; the runtime is running (its socket accepts connections)"
        }
    }
}

extension CRIError {
    /// A gRPC failure of `method` on the runtime at `socket` as a CRIError (cancellation stays
    /// CancellationError). Shared by CRIClient and ContainerdClient.
    static func mapping(_ error: any Error, socket: String, method: String, id: String? = nil,
                        timeout: Duration? = nil) -> any Error {
        if error is CRIError || error is CancellationError { return error }
        if let rpc = error as? RPCError {
            switch rpc.code {
            case .unavailable:
                return CRIError.unavailable(socket: socket, method: method, detail: rpc.message)
            case .deadlineExceeded:
                let seconds = timeout.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? 0
                return CRIError.deadlineExceeded(method: method, socket: socket, seconds: seconds)
            case .notFound:
                return CRIError.notFound(method: method, id: id ?? "", message: rpc.message)
            case .cancelled:
                return CancellationError()
            default:
                return CRIError.call(method: method, socket: socket, code: "\(rpc.code)", message: rpc.message)
            }
        }
        if let runtimeError = error as? RuntimeError {
            return CRIError.unavailable(socket: socket, method: method, detail: "\(runtimeError)")
        }
        return CRIError.call(method: method, socket: socket, code: "unknown", message: "\(error)")
    }
}
