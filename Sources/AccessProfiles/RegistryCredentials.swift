import Foundation
import PodstartCore

/// Registry credentials, as `docker login` stores them.
public struct RegistryCredentials: Sendable, Equatable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// The `auths` entry for `host` in the first of `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`
    /// and `~/.docker/config.json` that exists (`auth` = base64 of `user:password`, or
    /// `username`/`password`). Credential helpers (`credsStore`) are not consulted.
    public static func fromDockerConfig(host: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> RegistryCredentials? {
        var paths: [String] = []
        if let p = environment["REGISTRY_AUTH_FILE"] { paths.append(p) }
        if let d = environment["DOCKER_CONFIG"] { paths.append(d + "/config.json") }
        if let h = environment["HOME"] { paths.append(h + "/.docker/config.json") }
        guard let path = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let json: JSON
        do { json = try JSON.parse(Array(data)) } catch {
            throw OCIRegistryError.malformed(what: "docker config \(path)", reason: "\(error)")
        }
        guard case .object(let auths)? = json["auths"] else { return nil }
        let candidates = [host, "https://\(host)", "http://\(host)", "https://\(host)/v1/", "https://\(host)/v2/"]
            + (host == "registry-1.docker.io" ? ["https://index.docker.io/v1/", "docker.io"] : [])
        for key in candidates {
            guard let entry = auths.first(where: { $0.0 == key })?.1 else { continue }
            if let auth = entry["auth"]?.stringValue, let decoded = Data(base64Encoded: auth),
               let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") {
                return RegistryCredentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
            if let u = entry["username"]?.stringValue, let p = entry["password"]?.stringValue {
                return RegistryCredentials(username: u, password: p)
            }
        }
        return nil
    }

    /// `Authorization: Basic …`
    var basicAuthorization: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}
