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

    public var description: String {
        switch self {
        case .certificate(let path, let reason):
            "cannot read the TLS certificate chain from \(path): \(reason) (expected PEM, leaf first)"
        case .privateKey(let path, let reason):
            "cannot read the TLS private key from \(path): \(reason) (expected an unencrypted PEM key)"
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
            return Application(responder: responder, server: try .tls(http1, tlsConfiguration: tlsConfiguration(tls)),
                               configuration: configuration, onServerRunning: running, logger: logger)
        }
        return Application(responder: responder, server: http1, configuration: configuration,
                           onServerRunning: running, logger: logger)
    }

    public static func tlsConfiguration(_ files: TLSFiles) throws -> TLSConfiguration {
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
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }
}
