import Foundation

/// Why an HTTP exchange failed before a response could be used: each case names the server or
/// file, what happened, and what to check.
public enum HTTPTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not an absolute http(s) URL.
    case badURL(String)
    /// A CA bundle, client certificate or key that cannot be read or parsed.
    case tlsFile(path: String, reason: String)
    /// A bearer-token file that cannot be read.
    case credentialFile(path: String, reason: String)
    /// The TLS handshake failed (unknown CA, name mismatch, client certificate refused, …).
    case tls(origin: String, reason: String)
    /// No connection, or the connection broke (refused, no such host, reset).
    case connection(origin: String, reason: String)
    /// No complete answer within the endpoint's timeout.
    case timeout(url: String, seconds: Double)
    /// The body is larger than the cap for this request; nothing more was read.
    case bodyTooLarge(url: String, limitBytes: Int)
    /// More redirects than allowed in a row.
    case tooManyRedirects(url: String, limit: Int)
    /// A non-2xx answer where only success is usable (`HTTPTransport.get`); `body` is its start.
    case status(code: Int, url: String, body: String)

    public var description: String {
        switch self {
        case .badURL(let url): "bad URL \(url): use http(s)://host:port"
        case .tlsFile(let path, let reason): "cannot use the TLS file \(path): \(reason) (a PEM certificate bundle or key is expected)"
        case .credentialFile(let path, let reason): "cannot read the bearer token file \(path): \(reason)"
        case .tls(let origin, let reason):
            "TLS handshake with \(origin) failed: \(reason) (check the CA bundle, the client certificate, or use insecureSkipTLSVerify for a self-signed server)"
        case .connection(let origin, let reason): "connection to \(origin) failed: \(reason)"
        case .timeout(let url, let seconds): "\(url) did not answer within \(seconds) s"
        case .bodyTooLarge(let url, let limit): "the response of \(url) is larger than the \(limit)-byte limit; it was not read"
        case .tooManyRedirects(let url, let limit): "\(url) redirected more than \(limit) times"
        case .status(let code, let url, let body): "GET \(url) returned HTTP \(code): \(body.prefix(200))"
        }
    }
}
