@testable import AccessProfiles
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Pushes a minimal image (config blob + manifest) to a fresh repository, so each test starts
/// from a registry with no profile of it.
func pushTestImage(_ client: OCIRegistryClient, repository: String, tag: String = "latest") async throws -> OCIDescriptor {
    let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"test":"\#(repository)"}}}"#.utf8)
    let configDescriptor = try await client.pushBlob(repository: repository, bytes: config, mediaType: "application/vnd.oci.image.config.v1+json")
    let manifest = Array(JSON.object([("schemaVersion", .int(2)), ("mediaType", .string(OCIMediaType.imageManifest)),
                                      ("config", configDescriptor.json()), ("layers", .array([]))]).rendered().utf8)
    let put = try await client.putManifest(repository: repository, reference: tag, body: manifest, mediaType: OCIMediaType.imageManifest)
    return OCIDescriptor(mediaType: OCIMediaType.imageManifest, digest: put.digest, sizeBytes: Int64(manifest.count))
}

func uniqueRepository(_ stem: String) -> String { "podstart-test/\(stem)-\(UInt32.random(in: 0 ... .max))" }

/// A port on 127.0.0.1 nothing listens on (bound, then closed).
func closedLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return UInt16(bigEndian: address.sin_port)
}

let someProfile = Array(#"{"schemaVersion":"podstart.dev/profile/v1","files":[]}"#.utf8)

@Suite("Registry artifacts", .serialized)
struct RegistryArtifactTests {
    @Test func imageReferencesParseLikeTheDockerCLI() throws {
        let cases: [(String, String, String, String?, String?)] = [
            ("127.0.0.1:35000/podstart-test/reader:latest", "127.0.0.1:35000", "podstart-test/reader", "latest", nil),
            ("busybox", "docker.io", "library/busybox", nil, nil),
            ("ghcr.io/org/app:v1.2@sha256:" + String(repeating: "a", count: 64), "ghcr.io", "org/app", "v1.2",
             "sha256:" + String(repeating: "a", count: 64)),
            ("localhost/app", "localhost", "app", nil, nil),
            ("org/app:3", "docker.io", "org/app", "3", nil),
        ]
        for (text, registry, repository, tag, digest) in cases {
            let r = try ImageReference(parsing: text)
            #expect(r.registry == registry && r.repository == repository && r.tag == tag && r.digest == digest, "\(text) → \(r)")
        }
        for bad in ["", "UPPER/case", "app@sha256:123", "a b", "host:5000/", "app:-tag"] {
            #expect(throws: ImageReference.ParseError.self, "\(bad)") { try ImageReference(parsing: bad) }
        }
        #expect(try ImageReference(parsing: "busybox").reference == "latest")
        #expect(try ImageReference(parsing: "busybox").apiHost == "registry-1.docker.io")
    }

    @Test func authChallengesParseWithQuotedCommas() {
        let c = AuthChallenge(parsing: #"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
        #expect(c?.scheme == "Bearer")
        #expect(c?.parameters == ["realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"])
        #expect(AuthChallenge(parsing: #"Basic realm="x""#)?.parameters == ["realm": "x"])
    }

    @Test func credentialsComeFromTheDockerConfig() throws {
        let dir = NSTemporaryDirectory() + "podstart-dockercfg-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let auth = Data("alice:s3cr:et".utf8).base64EncodedString()
        try #"{"auths":{"registry.example:5000":{"auth":"\#(auth)"},"https://other.example":{"username":"bob","password":"pw"}}}"#
            .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let env = ["DOCKER_CONFIG": dir]
        #expect(try RegistryCredentials.fromDockerConfig(host: "registry.example:5000", environment: env)
            == RegistryCredentials(username: "alice", password: "s3cr:et"))
        #expect(try RegistryCredentials.fromDockerConfig(host: "other.example", environment: env)
            == RegistryCredentials(username: "bob", password: "pw"))
        #expect(try RegistryCredentials.fromDockerConfig(host: "unknown.example", environment: env) == nil)
        try "{not json".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: OCIRegistryError.self) { try RegistryCredentials.fromDockerConfig(host: "x", environment: env) }
    }

    /// The Debian docker-registry (distribution 2.8) has no referrers API: the artifact is found
    /// through its tag, and podstart keeps the referrers tag-schema index itself.
    @Test func artifactOnTheLocalRegistryIsTaggedAndListedInTheReferrersTagIndex() async throws {
        let env = try LocalEnvironment.shared()
        let client = try OCIRegistryClient(host: env.registry)
        let repository = uniqueRepository("artifact")
        let subject = try await pushTestImage(client, repository: repository)
        let image = try ImageReference(parsing: "\(env.registry)/\(repository):latest")
        let registry = ProfileRegistry(client: client)
        #expect(try await registry.resolve(image) == subject)
        #expect(try await registry.fetch(image: image, subject: subject) == nil)

        let config = ProfileArtifact.config(imageDigest: subject.digest, profileSchema: "podstart.dev/profile/v1", starts: 1, files: 0)
        let stored = try await registry.store(image: image, subject: subject, profile: someProfile, config: config, starts: 1,
                                              created: "2026-11-24T10:00:00Z")
        #expect(!stored.registryHasReferrersAPI)
        #expect(stored.tag == "sha256-\(subject.digest.dropFirst(7)).podstart")

        // The tag's manifest, byte for byte what the spec asks of an artifact with a subject.
        let (tagged, body) = try #require(try await client.manifest(repository: repository, reference: stored.tag))
        #expect(tagged.digest == stored.manifestDigest)
        let manifest = try JSON.parse(body)
        #expect(manifest["mediaType"]?.stringValue == OCIMediaType.imageManifest)
        #expect(manifest["artifactType"]?.stringValue == "application/vnd.podstart.profile.v1+json")
        #expect(manifest["config"]?["mediaType"]?.stringValue == "application/vnd.podstart.profile.v1+json")
        #expect(manifest["subject"]?["digest"]?.stringValue == subject.digest)
        #expect(manifest["subject"]?["size"]?.int64Value == subject.sizeBytes)
        #expect(manifest["layers"]?.arrayValue?.count == 1)
        #expect(manifest["layers"]?.arrayValue?.first?["mediaType"]?.stringValue == ProfileArtifact.layerMediaType)
        #expect(manifest["annotations"]?[ProfileArtifact.startsAnnotation]?.stringValue == "1")

        // distribution-spec v1.1 referrers tag schema: an index at sha256-<hex> listing it.
        let (_, indexBody) = try #require(try await client.manifest(repository: repository, reference: ProfileArtifact.referrersTag(forSubject: subject.digest),
                                                                    accept: [OCIMediaType.imageIndex]))
        let listed = try #require(try JSON.parse(indexBody)["manifests"]?.arrayValue)
        #expect(listed.count == 1)
        #expect(listed.first?["digest"]?.stringValue == stored.manifestDigest)
        #expect(listed.first?["artifactType"]?.stringValue == ProfileArtifact.artifactType)

        let fetched = try #require(try await registry.fetch(image: image, subject: subject))
        #expect(fetched.profile == someProfile)
        #expect(fetched.foundBy == .tag)
        #expect(fetched.manifest.digest == stored.manifestDigest)

        // A second push replaces podstart's entry in the index instead of growing it.
        let second = Array(#"{"schemaVersion":"podstart.dev/profile/v1","files":[],"n":2}"#.utf8)
        let stored2 = try await registry.store(image: image, subject: subject, profile: second, config: config, starts: 2,
                                               created: "2026-11-24T10:05:00Z")
        let (_, indexBody2) = try #require(try await client.manifest(repository: repository, reference: ProfileArtifact.referrersTag(forSubject: subject.digest),
                                                                     accept: [OCIMediaType.imageIndex]))
        #expect(try JSON.parse(indexBody2)["manifests"]?.arrayValue?.compactMap { $0["digest"]?.stringValue } == [stored2.manifestDigest])
        #expect(try await registry.fetch(image: image, subject: subject)?.profile == second)
    }

    @Test func unknownDigestOrTagIsNamed() async throws {
        let env = try LocalEnvironment.shared()
        let registry = ProfileRegistry(client: try OCIRegistryClient(host: env.registry))
        let zero = "sha256:" + String(repeating: "0", count: 64)
        let byDigest = try ImageReference(parsing: "\(env.registry)/podstart-test/reader@\(zero)")
        let error = await #expect(throws: OCIRegistryError.self) { try await registry.resolve(byDigest) }
        #expect("\(error!)".contains("unknown digest") && "\(error!)".contains(env.registry) && "\(error!)".contains(zero), "\(error!)")
        let byTag = try ImageReference(parsing: "\(env.registry)/podstart-test/no-such-image:latest")
        let error2 = await #expect(throws: OCIRegistryError.self) { try await registry.resolve(byTag) }
        #expect("\(error2!)".contains("no-such-image:latest"), "\(error2!)")
    }

    /// A registry with the referrers API (the test server): the manifest PUT answers
    /// `OCI-Subject`, so no referrers tag index is written, and the newest artifact is found
    /// through `GET /v2/<name>/referrers/<digest>?artifactType=…`.
    @Test func referrersAPIFindsTheNewestArtifact() async throws {
        let server = try RegistryTestServer(referrersAPI: true)
        defer { server.stop() }
        let client = try OCIRegistryClient(host: server.address)
        let subject = try await pushTestImage(client, repository: "app")
        let image = try ImageReference(parsing: "\(server.address)/app:latest")
        let registry = ProfileRegistry(client: client)
        let config = ProfileArtifact.config(imageDigest: subject.digest, profileSchema: "podstart.dev/profile/v1", starts: 1, files: 0)
        let first = try await registry.store(image: image, subject: subject, profile: someProfile, config: config, starts: 1,
                                             created: "2026-11-24T10:00:00Z")
        #expect(first.registryHasReferrersAPI)
        #expect(server.tagged("app", ProfileArtifact.referrersTag(forSubject: subject.digest)) == nil)
        let newer = Array(#"{"newer":true}"#.utf8)
        let second = try await registry.store(image: image, subject: subject, profile: newer, config: config, starts: 2,
                                              created: "2026-11-24T11:00:00Z")
        // Point the tag back at the older one: the referrers API, not the tag, must decide.
        let older = try #require(server.manifest("app", first.manifestDigest))
        try await client.putManifest(repository: "app", reference: first.tag, body: older, mediaType: OCIMediaType.imageManifest)
        let fetched = try #require(try await registry.fetch(image: image, subject: subject))
        #expect(fetched.foundBy == .referrers)
        #expect(fetched.manifest.digest == second.manifestDigest)
        #expect(fetched.profile == newer)
        let asked = server.requests.filter { $0.path.contains("/referrers/") }
        #expect(asked.allSatisfy { $0.query == "artifactType=application%2Fvnd.podstart.profile.v1%2Bjson" }, "\(asked.map(\.query))")
    }

    @Test func failedPushLeavesThePreviousTag() async throws {
        let server = try RegistryTestServer(referrersAPI: false)
        defer { server.stop() }
        let client = try OCIRegistryClient(host: server.address)
        let subject = try await pushTestImage(client, repository: "app")
        let image = try ImageReference(parsing: "\(server.address)/app:latest")
        let registry = ProfileRegistry(client: client)
        let config = ProfileArtifact.config(imageDigest: subject.digest, profileSchema: "podstart.dev/profile/v1", starts: 1, files: 0)
        let first = try await registry.store(image: image, subject: subject, profile: someProfile, config: config, starts: 1, created: "t1")
        let tag = ProfileArtifact.tag(forSubject: subject.digest)
        for failing in ["/blobs/uploads/", "/manifests/sha256:", "/manifests/sha256-"] {
            server.fail(when: { r in r.method == "PUT" && r.path.contains(failing) ? 500 : nil })
            let error = await #expect(throws: OCIRegistryError.self) {
                try await registry.store(image: image, subject: subject, profile: Array("{\"other\":\"\(failing)\"}".utf8),
                                         config: config, starts: 2, created: "t2")
            }
            #expect("\(error!)".contains("500"), "\(error!)")
            #expect(server.tagged("app", tag) == first.manifestDigest, "after a failing PUT of \(failing)")
            server.fail(when: { _ in nil })
            #expect(try await registry.fetch(image: image, subject: subject)?.profile == someProfile)
        }
    }

    @Test func refusingRegistriesGiveClearErrorsAndNothingIsWritten() async throws {
        let port = closedLoopbackPort()
        let image = try ImageReference(parsing: "127.0.0.1:\(port)/app:latest")
        let unreachable = await #expect(throws: OCIRegistryError.self) {
            try await ProfileRegistry(client: try OCIRegistryClient(host: "127.0.0.1:\(port)")).resolve(image)
        }
        #expect("\(unreachable!)".contains("127.0.0.1:\(port)") && "\(unreachable!)".contains("connection refused"), "\(unreachable!)")

        for status in [500, 401, 403] {
            let server = try RegistryTestServer(mode: .refuse(status: status))
            defer { server.stop() }
            let registry = ProfileRegistry(client: try OCIRegistryClient(host: server.address))
            let image = try ImageReference(parsing: "\(server.address)/app:latest")
            let error = await #expect(throws: OCIRegistryError.self) { try await registry.resolve(image) }
            let text = "\(error!)"
            switch status {
            case 401: #expect(text.contains("401") && text.contains("docker login"), "\(text)")
            case 403: #expect(text.contains("403") && text.contains("forbid"), "\(text)")
            default: #expect(text.contains("500") && text.contains(server.address), "\(text)")
            }
            #expect(server.requests.allSatisfy { $0.method == "GET" || $0.method == "HEAD" })
        }
    }

    @Test func bearerChallengeIsAnsweredWithATokenFromTheRealm() async throws {
        let credentials = RegistryCredentials(username: "node", password: "pw")
        let server = try RegistryTestServer(bearerCredentials: credentials)
        defer { server.stop() }
        let client = try OCIRegistryClient(host: server.address, credentials: credentials)
        let subject = try await pushTestImage(client, repository: "app")
        let image = try ImageReference(parsing: "\(server.address)/app:latest")
        #expect(try await ProfileRegistry(client: client).resolve(image) == subject)
        let tokenRequests = server.requests.filter { $0.path == "/token" }
        #expect(!tokenRequests.isEmpty)
        #expect(tokenRequests.allSatisfy { $0.query.contains("service=podstart-test") })

        let anonymous = ProfileRegistry(client: try OCIRegistryClient(host: server.address))
        let error = await #expect(throws: OCIRegistryError.self) { try await anonymous.resolve(image) }
        #expect("\(error!)".contains("401"), "\(error!)")
    }

    @Test func malformedArtifactIsRefusedWithItsDigest() async throws {
        let server = try RegistryTestServer(referrersAPI: false)
        defer { server.stop() }
        let client = try OCIRegistryClient(host: server.address)
        let subject = try await pushTestImage(client, repository: "app")
        let image = try ImageReference(parsing: "\(server.address)/app:latest")
        // Something else under podstart's tag: a plain image manifest.
        let (_, plain) = try #require(try await client.manifest(repository: "app", reference: "latest"))
        let put = try await client.putManifest(repository: "app", reference: ProfileArtifact.tag(forSubject: subject.digest),
                                               body: plain, mediaType: OCIMediaType.imageManifest)
        let error = await #expect(throws: OCIRegistryError.self) {
            try await ProfileRegistry(client: client).fetch(image: image, subject: subject)
        }
        #expect("\(error!)".contains(put.digest) && "\(error!)".contains("not a podstart profile"), "\(error!)")
    }
}
