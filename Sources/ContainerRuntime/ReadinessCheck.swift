/// How `podstart trace` decides the pod is ready, like a kubelet readiness probe.
public enum ReadinessCheck: Sendable, Hashable, CustomStringConvertible {
    /// No probe: ready as soon as the runtime reports the container running.
    case running
    /// A file exists inside the container (checked through the container's root, without exec).
    case file(path: String)
    /// A command run in the container with CRI ExecSync exits 0 (the kubelet's exec probe).
    case exec(command: [String])
    /// `GET http://127.0.0.1:PORT/PATH` inside the pod's network namespace answers 200–399.
    case http(port: UInt16, path: String)
    /// A TCP connection to 127.0.0.1:PORT inside the pod's network namespace succeeds.
    case tcp(port: UInt16)

    public var description: String {
        switch self {
        case .running: "running"
        case .file(let path): "file \(path)"
        case .exec(let command): "exec \(command.joined(separator: " "))"
        case .http(let port, let path): "http 127.0.0.1:\(port)\(path) in the pod network namespace"
        case .tcp(let port): "tcp 127.0.0.1:\(port) in the pod network namespace"
        }
    }

    /// Parses `--ready-http PORT/PATH` (`8080/healthz`, `8080` = path `/`).
    public static func parseHTTP(_ text: String) -> ReadinessCheck? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let port = UInt16(first), port > 0 else { return nil }
        let path = parts.count > 1 ? "/" + parts[1] : "/"
        return .http(port: port, path: path)
    }
}
