import Foundation
import HTTPTransport
import PodstartCore
import Synchronization

/// What a registry client knows about authenticating to one registry: the credentials
/// (`docker login`), the bearer tokens it got per scope, and whether the registry asked for
/// basic auth. It answers a 401's `WWW-Authenticate` challenge (distribution "Token
/// Authentication"): `Bearer realm=…` by asking the realm for a token, `Basic` with the
/// credentials.
///
/// The registry's credentials go to the realm only when the realm is on the registry's own
/// origin or on a host trusted for it (`trustedTokenRealmHosts`; Docker Hub's `auth.docker.io`
/// for `registry-1.docker.io`). A realm elsewhere is asked anonymously, which gives a token for
/// public repositories: a challenge must not be a way to collect the node's registry password.
final class RegistryAuthenticator: Sendable {
    let registry: HTTPOrigin
    let credentials: RegistryCredentials?
    let trustedTokenRealmHosts: Set<String>
    private let state = Mutex(State())

    private struct State {
        var tokens: [String: String] = [:]
        var useBasic = false
    }

    /// Token services known to belong to a registry on another host.
    static let knownTokenRealmHosts: [String: Set<String>] = ["registry-1.docker.io": ["auth.docker.io"]]

    init(registry: HTTPOrigin, credentials: RegistryCredentials?, trustedTokenRealmHosts: Set<String>) {
        self.registry = registry
        self.credentials = credentials
        self.trustedTokenRealmHosts = trustedTokenRealmHosts.union(Self.knownTokenRealmHosts[registry.host] ?? [])
    }

    /// The `Authorization` value for a request needing `scope` (`repository:<name>:pull[,push]`),
    /// from what earlier challenges taught; nil before any.
    func authorization(scope: String) -> String? {
        state.withLock { state in
            let repository = scope.split(separator: ":").dropFirst().first ?? ""
            if let token = state.tokens[scope] ?? state.tokens["repository:\(repository):pull,push"] { return "Bearer \(token)" }
            if state.useBasic, let credentials { return credentials.basicAuthorization }
            return nil
        }
    }

    /// Learns from a 401's challenge; true when a retry with `authorization(scope:)` may succeed.
    func answer(_ challenge: AuthChallenge, scope: String, repository: String, transport: HTTPTransport) async throws -> Bool {
        switch challenge.scheme.lowercased() {
        case "bearer":
            let token = try await fetchToken(challenge, scope: challenge.parameters["scope"] ?? scope, repository: repository,
                                             transport: transport)
            state.withLock { $0.tokens[scope] = token }
            return true
        case "basic":
            guard credentials != nil else { return false }
            state.withLock { $0.useBasic = true }
            return true
        default:
            return false
        }
    }

    /// Whether the registry's credentials may be shown to the token service at `realm`.
    func mayReceiveCredentials(realm: HTTPOrigin) -> Bool {
        realm == registry || (realm.scheme == "https" && trustedTokenRealmHosts.contains(realm.host))
    }

    private func fetchToken(_ challenge: AuthChallenge, scope: String, repository: String, transport: HTTPTransport) async throws -> String {
        let host = registry.authority
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
              let realmOrigin = HTTPOrigin(url: realm) else {
            throw OCIRegistryError.malformed(what: "auth challenge from \(host)", reason: "Bearer without an http(s) realm")
        }
        var query = components.queryItems ?? []
        if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = query
        let withheld = credentials != nil && !mayReceiveCredentials(realm: realmOrigin)
        let authorization = withheld ? nil : credentials?.basicAuthorization
        let r: HTTPTransportResponse
        do {
            r = try await transport.send(.GET, components.string ?? realm, authorization: authorization, maxBodyBytes: 1 << 20)
        } catch let error as HTTPTransportError {
            throw OCIRegistryClient.registryError(error, what: "token from \(realm)", host: realmOrigin.authority)
        }
        guard r.status == 200 else {
            let note = withheld
                ? " (the registry's credentials were not sent: the token service is on another host, \(realmOrigin.host); trust it with trustedTokenRealmHosts if it belongs to the registry)"
                : ""
            throw r.status == 403
                ? OCIRegistryError.forbidden(host: host, repository: repository,
                                             detail: "token service \(realm): \(OCIRegistryClient.errorDetail(r.body))\(note)")
                : OCIRegistryError.unauthorized(host: host, repository: repository,
                                                detail: "token service \(realm) answered \(r.status): \(OCIRegistryClient.errorDetail(r.body))\(note)")
        }
        guard let json = try? JSON.parse(r.body), let token = json["token"]?.stringValue ?? json["access_token"]?.stringValue else {
            throw OCIRegistryError.malformed(what: "token from \(realm)", reason: "no token or access_token field")
        }
        return token
    }
}
