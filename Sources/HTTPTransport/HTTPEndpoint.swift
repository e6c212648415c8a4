/// How to trust a server and prove who we are to it.
public struct TLSFiles: Sendable, Equatable {
    /// PEM bundle of the CAs that sign the server's certificate (a service account's `ca.crt`);
    /// nil: the system's trust store.
    public var caFile: String?
    /// PEM client certificate (chain) and its key, for servers that require one (a kubelet with
    /// `--client-ca-file`, a registry behind mutual TLS).
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    /// Accept any server certificate, for kubelets with self-signed serving certificates (what
    /// metrics-server calls `--kubelet-insecure-tls`). The connection is still encrypted, but
    /// anyone on the path can read the token: only for a server on the same node.
    public var insecureSkipTLSVerify: Bool

    public init(caFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
                insecureSkipTLSVerify: Bool = false) {
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
    }
}

/// One server and how to talk to it: where it is, TLS, the credential sent to it (and only to
/// it), and the limits of one exchange.
public struct HTTPEndpoint: Sendable {
    /// `scheme://host:port` (a path in the URL given is dropped).
    public var origin: HTTPOrigin
    public var tls: TLSFiles
    /// Sent as `Authorization: Bearer …` to `origin` only.
    public var bearerToken: BearerToken.Source?
    /// Connect + response head; for buffered requests also the whole body. Streams (watches)
    /// have no deadline once the head arrived.
    public var timeout: Duration
    /// Largest body read into memory (and longest line of a stream); more is an error.
    public var maxBodyBytes: Int
    /// Redirects followed in a row; credentials go along only to the same origin.
    public var maxRedirects: Int

    public static let defaultMaxBodyBytes = 64 << 20

    public init(url: String, bearerToken: String? = nil, tokenFile: String? = nil, caFile: String? = nil,
                clientCertificateFile: String? = nil, clientKeyFile: String? = nil, insecureSkipTLSVerify: Bool = false,
                timeout: Duration = .seconds(10), maxBodyBytes: Int = defaultMaxBodyBytes, maxRedirects: Int = 5) throws {
        guard let origin = HTTPOrigin(url: url) else { throw HTTPTransportError.badURL(url) }
        self.origin = origin
        self.tls = TLSFiles(caFile: caFile, clientCertificateFile: clientCertificateFile, clientKeyFile: clientKeyFile,
                            insecureSkipTLSVerify: insecureSkipTLSVerify)
        self.bearerToken = tokenFile.map { .file($0) } ?? bearerToken.map { .value($0) }
        self.timeout = timeout
        self.maxBodyBytes = maxBodyBytes
        self.maxRedirects = maxRedirects
    }

    /// `path` (with its query) on this endpoint's origin.
    public func url(_ path: String) -> String { origin.description + (path.hasPrefix("/") ? path : "/" + path) }
}
