#if canImport(Glibc)
import Glibc
#endif

/// Where a CRI runtime listens: a unix socket (`unix:///run/containerd/containerd.sock`).
public struct CRIEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Absolute path of the runtime's unix socket.
    public var socketPath: String

    public init(socketPath: String) { self.socketPath = socketPath }

    /// Parses `unix:///path/to.sock` or a bare absolute path, as `--cri-endpoint` and crictl's
    /// `--runtime-endpoint` accept them.
    public init(parsing text: String) throws(CRIError) {
        var path = text
        if path.hasPrefix("unix://") {
            path.removeFirst("unix://".count)
        } else if path.contains("://") {
            throw .invalidEndpoint(text, reason: "only unix:// endpoints are supported")
        }
        guard path.hasPrefix("/") else {
            throw .invalidEndpoint(text, reason: "the socket path must be absolute (unix:///run/containerd/containerd.sock)")
        }
        socketPath = path
    }

    /// containerd's default socket; it serves its own API and CRI on the same socket.
    public static let containerdDefault = CRIEndpoint(socketPath: "/run/containerd/containerd.sock")

    /// `$PODSTART_CRI_ENDPOINT` if set (scripts/localenv.sh exports it), else containerd's default.
    public static func fromEnvironment() throws(CRIError) -> CRIEndpoint {
        if let value = getenv("PODSTART_CRI_ENDPOINT"), let text = Optional(String(cString: value)), !text.isEmpty {
            return try CRIEndpoint(parsing: text)
        }
        return .containerdDefault
    }

    public var description: String { "unix://\(socketPath)" }

    /// Checks that a socket exists at the path, so a missing runtime is reported by name instead of
    /// as a gRPC connection error after retries.
    public func checkSocket() throws(CRIError) {
        var st = stat()
        guard stat(socketPath, &st) == 0 else {
            throw .socketMissing(path: socketPath, errno: errno)
        }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            throw .notASocket(path: socketPath)
        }
    }
}
