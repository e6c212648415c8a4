@testable import AccessProfiles
import Foundation
import PodstartCore
import Testing

/// Where a registry's credentials may go: to the registry, to a token service on its own
/// origin, along a redirect on its own origin — and nowhere else. A second test server on
/// 127.0.0.2 plays the other host (object storage, a foreign token service).
@Suite("Registry credential boundaries", .serialized)
struct RegistryCredentialBoundaryTests {
    let credentials = RegistryCredentials(username: "node", password: "pw")

    @Test func blobRedirectedToAnotherHostIsFetchedWithoutCredentials() async throws {
        let registry = try RegistryTestServer(bearerCredentials: credentials)
        let storage = try RegistryTestServer(host: "127.0.0.2")
        defer { registry.stop(); storage.stop() }
        let client = try OCIRegistryClient(host: registry.address, credentials: credentials)
        let subject = try await pushTestImage(client, repository: "app")
        let (_, manifestBytes) = try #require(try await client.manifest(repository: "app", reference: subject.digest))
        let configDigest = try #require(JSON.parse(manifestBytes)["config"]?["digest"]?.stringValue)
        let config = try await client.blob(repository: "app", digest: configDigest)
        // The same bytes in "object storage" on another host, where the registry sends blob GETs.
        _ = try await OCIRegistryClient(host: storage.address).pushBlob(repository: "app", bytes: config, mediaType: "application/octet-stream")
        let storageAddress = storage.address
        registry.redirect { r in
            r.method == "GET" && r.path.contains("/blobs/sha256:") ? "http://\(storageAddress)\(r.path)?signature=test" : nil
        }
        #expect(try await client.blob(repository: "app", digest: configDigest) == config)
        let fetched = storage.requests.filter { $0.method == "GET" && $0.query == "signature=test" }
        #expect(fetched.count == 1)
        #expect(fetched.allSatisfy { $0.headers["authorization"] == nil }, "\(fetched.map(\.headers))")
        // The registry itself got its token on the request it redirected.
        let redirected = registry.requests.filter { $0.method == "GET" && $0.path.contains("/blobs/") }.last
        #expect(redirected?.headers["authorization"] == "Bearer podstart-test-token")
    }

    @Test func redirectOnTheRegistryItselfKeepsTheToken() async throws {
        let registry = try RegistryTestServer(bearerCredentials: credentials)
        defer { registry.stop() }
        let client = try OCIRegistryClient(host: registry.address, credentials: credentials)
        let subject = try await pushTestImage(client, repository: "app")
        registry.redirect { r in
            r.method == "GET" && r.path.contains("/manifests/latest") ? "/v2/app/manifests/\(subject.digest)" : nil
        }
        let (descriptor, _) = try #require(try await client.manifest(repository: "app", reference: "latest"))
        #expect(descriptor.digest == subject.digest)
        let followed = registry.requests.filter { $0.path == "/v2/app/manifests/\(subject.digest)" }
        #expect(!followed.isEmpty && followed.allSatisfy { $0.headers["authorization"] == "Bearer podstart-test-token" })
    }

    @Test func tokenRealmOnAnotherHostGetsNoRegistryCredentials() async throws {
        // The token service on 127.0.0.2 would hand out a token for the same basic credentials.
        let tokenService = try RegistryTestServer(bearerCredentials: credentials, host: "127.0.0.2")
        let registry = try RegistryTestServer(bearerCredentials: credentials, realm: "http://\(tokenService.address)/token")
        defer { registry.stop(); tokenService.stop() }
        let client = try OCIRegistryClient(host: registry.address, credentials: credentials)
        let error = await #expect(throws: OCIRegistryError.self) {
            _ = try await client.manifest(repository: "app", reference: "latest")
        }
        let asked = tokenService.requests.filter { $0.path == "/token" }
        #expect(asked.count == 1)
        #expect(asked.allSatisfy { $0.headers["authorization"] == nil }, "\(asked.map(\.headers))")
        #expect("\(error!)".contains("401") && "\(error!)".contains("were not sent") && "\(error!)".contains("127.0.0.2"), "\(error!)")
        // Nor do the registry's own requests carry them anywhere but to the registry.
        #expect(registry.requests.allSatisfy { $0.headers["authorization"] == nil })
    }

    @Test func manifestOverTheCapIsRefusedUnread() async throws {
        let registry = try RegistryTestServer()
        defer { registry.stop() }
        let client = try OCIRegistryClient(host: registry.address)
        _ = try await pushTestImage(client, repository: "app")
        let huge = Array(repeating: UInt8(ascii: " "), count: OCIRegistryClient.maxManifestBytes + 1)
        let blob = try await client.pushBlob(repository: "app", bytes: huge, mediaType: "application/octet-stream")
        // Served as a manifest: the registry answers with the blob's bytes.
        registry.redirect { r in r.path == "/v2/app/manifests/huge" ? "/v2/app/blobs/\(blob.digest)" : nil }
        let error = await #expect(throws: OCIRegistryError.self) {
            _ = try await client.manifest(repository: "app", reference: "huge")
        }
        #expect(error == .tooLarge(what: "the answer to GET /v2/app/manifests/huge", host: registry.address,
                                   limitBytes: OCIRegistryClient.maxManifestBytes), "\(error!)")
    }
}
