import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// `--listen HOST:PORT` (`0.0.0.0:9464`, `[::1]:9464`, `:9464` for all addresses).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public static let defaultPort = 9464
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var text: String
        public var description: String {
            "--listen \"\(text)\" is not HOST:PORT (for example 0.0.0.0:9464, [::1]:9464 or :9464; port 0 to 65535)"
        }
    }

    public init(parsing text: String) throws {
        var hostPart: Substring
        var portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ParseError(text: text)
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { throw ParseError(text: text) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = Int(portPart), (0...65535).contains(port) else { throw ParseError(text: text) }
        if hostPart.isEmpty { hostPart = "0.0.0.0" }
        host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether only this host can connect: 127.0.0.0/8, ::1 or localhost.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.") || host == "[::1]"
    }
}

/// PEM files for serving HTTPS.
public struct TLSFiles: Sendable, Hashable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}

public enum APIServerError: Error, CustomStringConvertible, Sendable {
    case certificate(path: String, reason: String)
    case privateKey(path: String, reason: String)
    case keyMismatch(certificatePath: String, privateKeyPath: String, reason: String)

    public var description: String {
        switch self {
        case .certificate(let path, let reason):
            "cannot read the TLS certificate chain from \(path): \(reason) (expected PEM, leaf first)"
        case .privateKey(let path, let reason):
            "cannot read the TLS private key from \(path): \(reason) (expected an unencrypted PEM key)"
        case .keyMismatch(let certificatePath, let privateKeyPath, let reason):
            "the TLS private key in \(privateKeyPath) does not match the certificate in \(certificatePath) (\(reason)): "
                + "the certificate's public key must be the key's"
        }
    }
}

public enum APIServer {
    /// The server as a `Service`: run it in the agent's `ServiceGroup` (or `runService()`).
    /// TLS files are read here, so a bad path or key fails before anything listens.
    public static func application(
        responder: APIResponder,
        listen: ListenAddress,
        tls: TLSFiles? = nil,
        logger: Logger = Logger(label: "podstart.api"),
        onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) throws -> Application<APIResponder> {
        let configuration = ApplicationConfiguration(address: .hostname(listen.host, port: listen.port), serverName: nil)
        let running: @Sendable (any Channel) async -> Void = { channel in
            await onServerRunning(channel.localAddress?.port ?? listen.port)
        }
        // Idle connections are closed: an agent listening on every address of every node
        // should not keep sockets for clients that went quiet.
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(60)))
        if let tls {
            let credentials = try TLSCredentials(files: tls, onReloadError: { error in
                logger.error("the new TLS certificate or key cannot be used; serving with the previous ones",
                             metadata: ["error": "\(error)"])
                responder.metrics.recordAPIReloadError(file: "tls")
            })
            return Application(responder: responder, server: try .tls(http1, tlsConfiguration: credentials.serverConfiguration()),
                               configuration: configuration, onServerRunning: running, logger: logger)
        }
        return Application(responder: responder, server: http1, configuration: configuration,
                           onServerRunning: running, logger: logger)
    }

    /// The server configuration for `files` as they are now (no reloading; see `TLSCredentials`).
    public static func tlsConfiguration(_ files: TLSFiles) throws -> TLSConfiguration {
        try TLSCredentials.read(files).configuration
    }
}

/// The listener's certificate chain and key, read again when the files change (a kubelet- or
/// cert-manager-rotated certificate): each TLS handshake asks for the current pair through
/// swift-nio-ssl's context callback, so the next connection after a change uses the new files.
/// A pair that cannot be used (unreadable, not PEM, a key that does not match the certificate —
/// as when the certificate was replaced and the key not yet) keeps the previous pair in service.
public final class TLSCredentials: Sendable {
    public let files: TLSFiles
    private let pair: ReloadingFile<Pair>

    struct Pair: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var configuration: TLSConfiguration
    }

    public init(files: TLSFiles, onReloadError: @escaping @Sendable (any Error) -> Void = { _ in }) throws {
        self.files = files
        pair = try ReloadingFile(paths: [files.certificateChainPath, files.privateKeyPath], load: { try Self.read(files) },
                                 onReloadError: onReloadError)
    }

    /// The configuration the listener starts with; its context callback hands every handshake
    /// the current pair.
    public func serverConfiguration() -> TLSConfiguration {
        var configuration = pair.current().configuration
        let pair = self.pair
        configuration.sslContextCallback = { _, promise in
            let current = pair.current()
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = current.chain.map { .certificate($0) }
            override.privateKey = .privateKey(current.key)
            promise.succeed(override)
        }
        return configuration
    }

    /// The leaf certificate in service now.
    public var currentLeaf: NIOSSLCertificate { pair.current().chain[0] }

    static func read(_ files: TLSFiles) throws -> Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChainPath)
        } catch {
            throw APIServerError.certificate(path: files.certificateChainPath, reason: "\(error)")
        }
        guard !chain.isEmpty else {
            throw APIServerError.certificate(path: files.certificateChainPath, reason: "no certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKeyPath, format: .pem)
        } catch {
            throw APIServerError.privateKey(path: files.privateKeyPath, reason: "\(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // swift-nio-ssl's server default still accepts TLS 1.0 and 1.1 (deprecated by RFC 8996).
        configuration.minimumTLSVersion = APIServer.minimumTLSVersion
        // The key must be the leaf's: a certificate rotated before its key (or the reverse) would
        // fail every handshake. BoringSSL compares the two when a context takes them
        // (SSL_CTX_use_PrivateKey after the chain: KEY_VALUES_MISMATCH / KEY_TYPE_MISMATCH).
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw APIServerError.keyMismatch(certificatePath: files.certificateChainPath, privateKeyPath: files.privateKeyPath,
                                             reason: "\(error)")
        }
        return Pair(chain: chain, key: key, configuration: configuration)
    }
}

extension APIServer {
    /// The oldest TLS version the agent's listener accepts: 1.2, as the API server and kubelet
    /// require by default (`--tls-min-version`).
    public static let minimumTLSVersion = TLSVersion.tlsv12
}
