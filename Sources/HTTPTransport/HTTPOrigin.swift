import Foundation

/// Scheme, host and port of a URL (RFC 6454): the unit that credentials are bound to. A
/// redirect or a token realm on another origin — another host, another port, or http instead
/// of https — is another party and never gets them.
public struct HTTPOrigin: Hashable, Sendable, CustomStringConvertible {
    /// `http` or `https`.
    public var scheme: String
    /// Lowercased; an IPv6 address without brackets.
    public var host: String
    public var port: Int

    /// nil unless `url` is an absolute http(s) URL with a host.
    public init?(url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { return nil }
        self.scheme = scheme
        self.host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = components.port ?? (scheme == "https" ? 443 : 80)
    }

    /// `host:port` as a URL writes it (brackets around an IPv6 address).
    public var authority: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }

    public var description: String { "\(scheme)://\(authority)" }

    /// `reference` (a `Location` header: absolute, scheme-relative, or a path) resolved against
    /// `base`; nil when it does not make an http(s) URL.
    public static func resolve(_ reference: String, against base: String) -> String? {
        guard let baseURL = URL(string: base), let resolved = URL(string: reference, relativeTo: baseURL)?.absoluteString,
              HTTPOrigin(url: resolved) != nil
        else { return nil }
        return resolved
    }
}
