/// What went wrong talking to a registry: each case names the registry, what was asked and
/// what to do.
public enum OCIRegistryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No TCP/TLS connection (refused, no such host, timeout).
    case unreachable(host: String, reason: String)
    /// 401 after offering what credentials there were (or with none to offer).
    case unauthorized(host: String, repository: String, detail: String)
    /// 403: the credentials are known but may not do this.
    case forbidden(host: String, repository: String, detail: String)
    /// 404 for something that must exist (the image's manifest, a blob a manifest lists).
    case notFound(what: String, host: String)
    /// Any other unexpected status.
    case status(code: Int, method: String, url: String, detail: String)
    /// The registry answered with content podstart cannot use.
    case malformed(what: String, reason: String)
    /// A response larger than podstart reads into memory for this kind of content.
    case tooLarge(what: String, host: String, limitBytes: Int)

    public var description: String {
        switch self {
        case .unreachable(let host, let reason):
            "registry \(host) unreachable: \(reason) (is it running and is the address right? an HTTP-only registry needs --plain-http)"
        case .unauthorized(let host, let repository, let detail):
            "registry \(host) refused access to \(repository) (401 unauthorized\(detail.isEmpty ? "" : ": \(detail)")): log in with `docker login \(host)` (podstart reads the docker config.json) or check the credentials there"
        case .forbidden(let host, let repository, let detail):
            "registry \(host) forbids this on \(repository) (403 forbidden\(detail.isEmpty ? "" : ": \(detail)")): the credentials lack pull/push rights for it"
        case .notFound(let what, let host):
            "\(what) not found in registry \(host)"
        case .status(let code, let method, let url, let detail):
            "\(method) \(url) failed with HTTP \(code)\(detail.isEmpty ? "" : ": \(detail)")"
        case .malformed(let what, let reason):
            "\(what) is malformed: \(reason)"
        case .tooLarge(let what, let host, let limit):
            "\(what) from registry \(host) is larger than the \(limit)-byte limit; it was not read"
        }
    }
}
