import Foundation
import HTTPTransport
import Yams

/// The current context of a kubeconfig file (`--kubeconfig`, for an agent run outside a
/// cluster), as kubectl reads it: the cluster's `server`, `certificate-authority(-data)` and
/// `insecure-skip-tls-verify`; the user's `token` / `tokenFile` and `client-certificate(-data)` /
/// `client-key(-data)`. Relative file paths are relative to the kubeconfig's directory.
/// Credential plugins (`exec`, `auth-provider`) are not run: they are an error naming the user.
public struct Kubeconfig: Sendable, Equatable {
    /// A file named by path, or its content given inline (`…-data`, base64-decoded).
    public enum Material: Sendable, Equatable {
        case file(String)
        case data([UInt8])
    }

    public var context: String
    public var server: String
    public var certificateAuthority: Material?
    public var insecureSkipTLSVerify: Bool
    public var token: String?
    public var tokenFile: String?
    public var clientCertificate: Material?
    public var clientKey: Material?

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws -> Kubeconfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KubeconfigError.unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(yaml: text, baseDirectory: (path as NSString).deletingLastPathComponent, path: path)
    }

    public static func parse(yaml: String, baseDirectory: String, path: String = "kubeconfig") throws -> Kubeconfig {
        let root: Any?
        do { root = try Yams.compose(yaml: yaml).map { try plainValue($0, path: path) } } catch let error as KubeconfigError {
            throw error
        } catch {
            throw KubeconfigError.invalid(path: path, reason: "not YAML: \(error)")
        }
        guard let doc = root as? [String: Any] else { throw KubeconfigError.invalid(path: path, reason: "not a mapping") }
        func named(_ list: String, _ name: String, _ field: String) throws -> [String: Any] {
            let items = doc[list] as? [[String: Any]] ?? []
            guard let item = items.first(where: { ($0["name"] as? String) == name }) else {
                throw KubeconfigError.invalid(path: path, reason: "no \(list) entry named \"\(name)\"")
            }
            guard let body = item[field] as? [String: Any] else {
                throw KubeconfigError.invalid(path: path, reason: "\(list) entry \"\(name)\" has no \(field)")
            }
            return body
        }
        guard let current = doc["current-context"] as? String, !current.isEmpty else {
            throw KubeconfigError.invalid(path: path, reason: "no current-context")
        }
        let context = try named("contexts", current, "context")
        guard let clusterName = context["cluster"] as? String else {
            throw KubeconfigError.invalid(path: path, reason: "context \"\(current)\" names no cluster")
        }
        let cluster = try named("clusters", clusterName, "cluster")
        guard let server = cluster["server"] as? String, !server.isEmpty else {
            throw KubeconfigError.invalid(path: path, reason: "cluster \"\(clusterName)\" has no server")
        }
        func resolve(_ p: String) -> String { p.hasPrefix("/") || baseDirectory.isEmpty ? p : baseDirectory + "/" + p }
        func material(_ body: [String: Any], _ key: String) throws -> Material? {
            if let inline = body[key + "-data"] as? String {
                guard let bytes = Data(base64Encoded: inline.filter { !$0.isWhitespace }) else {
                    throw KubeconfigError.invalid(path: path, reason: "\(key)-data is not base64")
                }
                return .data(Array(bytes))
            }
            return (body[key] as? String).map { .file(resolve($0)) }
        }
        var config = Kubeconfig(context: current, server: server, certificateAuthority: try material(cluster, "certificate-authority"),
                                insecureSkipTLSVerify: (cluster["insecure-skip-tls-verify"] as? Bool) ?? false)
        if let userName = context["user"] as? String {
            let user = try named("users", userName, "user")
            if user["exec"] != nil || user["auth-provider"] != nil {
                throw KubeconfigError.unsupportedCredential(user: userName)
            }
            config.token = user["token"] as? String
            config.tokenFile = (user["tokenFile"] as? String).map(resolve)
            config.clientCertificate = try material(user, "client-certificate")
            config.clientKey = try material(user, "client-key")
        }
        return config
    }

    init(context: String, server: String, certificateAuthority: Material?, insecureSkipTLSVerify: Bool) {
        self.context = context
        self.server = server
        self.certificateAuthority = certificateAuthority
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
    }

    /// The API server endpoint. Inline certificates and keys are written to `directory` (created
    /// owner-only; the client reads PEM files), named after the context.
    public func endpoint(materializeIn directory: String, timeout: Duration = .seconds(10)) throws -> HTTPEndpoint {
        func path(_ m: Material?, _ name: String) throws -> String? {
            switch m {
            case nil: return nil
            case .file(let p): return p
            case .data(let bytes):
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
                let file = directory + "/" + context.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" } + "-" + name
                guard FileManager.default.createFile(atPath: file, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
                    throw KubeconfigError.unreadable(path: file, reason: "cannot write the inline \(name)")
                }
                return file
            }
        }
        return try HTTPEndpoint(url: server, bearerToken: token, tokenFile: tokenFile, caFile: try path(certificateAuthority, "ca.crt"),
                                clientCertificateFile: try path(clientCertificate, "client.crt"), clientKeyFile: try path(clientKey, "client.key"),
                                insecureSkipTLSVerify: insecureSkipTLSVerify, timeout: timeout)
    }
}

public enum KubeconfigError: Error, Sendable, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalid(path: String, reason: String)
    case unsupportedCredential(user: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .invalid(let path, let reason): "\(path) is not a usable kubeconfig: \(reason)"
        case .unsupportedCredential(let user):
            "kubeconfig user \"\(user)\" gets its credential from a plugin (exec/auth-provider), which podstart does not run; use a token, tokenFile or client certificate"
        }
    }
}

/// A YAML node as plain values (`String`, `Bool`, `Int`, `Double`, `NSNull`, `[Any]`,
/// `[String: Any]`), built here rather than by Yams' `load`, which traps on a mapping key that is
/// not a scalar (a fuzzed config file, "?" then "-", found it).
private func plainValue(_ node: Node, path: String) throws -> Any {
    switch node {
    case .scalar: return node.any
    case .sequence(let items): return try items.map { try plainValue($0, path: path) }
    case .mapping(let pairs):
        var mapping: [String: Any] = [:]
        for (key, value) in pairs {
            guard let name = key.scalar?.string else {
                throw KubeconfigError.invalid(path: path, reason: "a mapping key is a list or mapping, not a name")
            }
            mapping[name] = try plainValue(value, path: path)
        }
        return mapping
    }
}
