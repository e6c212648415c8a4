import AccessProfiles
import Foundation
import PodstartCore
import PodstartTestSupport
import StateStore
import Testing

/// `podstart profile push|pull` through the built binary against the local registry
/// (Debian's docker-registry, scripts/localenv.sh), with starts traced for real by
/// `podstart trace` in the local containerd. Each test copies the image (same digest) into a
/// repository of its own with skopeo, so no profile of an earlier run is there.
@Suite("Registry push and pull", .serialized)
struct RegistryShareTests {
    let env: LocalEnvironment
    let binary: String

    init() throws {
        env = try LocalEnvironment.shared()
        binary = try LocalEnvironment.podstartBinary()
    }

    func run(_ arguments: [String]) throws -> String {
        let (status, output) = LocalEnvironment.run(arguments)
        guard status == 0 else {
            throw LocalEnvironment.StartFailure(description: "\(arguments.prefix(5).joined(separator: " ")) … failed (\(status)): \(output)")
        }
        return output
    }

    func podstart(_ arguments: [String]) -> (Int32, String) { LocalEnvironment.run([binary] + arguments) }

    func jsonLine(_ output: String) throws -> JSON {
        try JSON.parse(String(try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON in: \(output)")))
    }

    /// `reader:latest` copied (same digest) to a fresh repository; returns its reference.
    func freshCopy(of name: String) throws -> String {
        let target = "\(env.registry)/\(uniqueRepository("share"))"
        _ = try run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
                     "docker://\(env.image(name))", "docker://\(target):latest"])
        return "\(target):latest"
    }

    /// Three real starts of reader:latest, one trace JSON line each.
    func threeReaderStarts(in dir: TemporaryDirectory) throws -> [String] {
        let file = dir.file("reader.jsonl")
        _ = try run([binary, "trace", "--cri-endpoint", env.endpoint.description, "--image", env.image("reader:latest"),
                     "--ready-file", "/tmp/ready", "--runs", "3", "--output", "json", "--out", file])
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        try #require(lines.count == 3, "\(lines.count) traces")
        return lines
    }

    @Test func twoNodesPushThenPullGivesTheStartsOfBothOnce() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lines = try threeReaderStarts(in: dir)
        let keys = try lines.map { ImageProfile.startKey(try PodStartTrace(json: try JSON.parse($0))) }
        #expect(Set(keys).count == 3)
        // Node A saw starts 1 and 2, node B starts 2 and 3 (the same start can reach the registry twice).
        try (lines[0] + "\n" + lines[1] + "\n").write(toFile: dir.file("a.jsonl"), atomically: true, encoding: .utf8)
        try (lines[1] + "\n" + lines[2] + "\n").write(toFile: dir.file("b.jsonl"), atomically: true, encoding: .utf8)
        let image = try freshCopy(of: "reader:latest")

        let (s1, o1) = podstart(["profile", "push", "--image", image, "--from", dir.file("a.jsonl"), "--output", "json"])
        #expect(s1 == 0, "\(o1)")
        let a = try jsonLine(o1)
        #expect(a["pushed"] == .bool(true) && a["startsBefore"]?.int64Value == 0 && a["startsAdded"]?.int64Value == 2
            && a["starts"]?.int64Value == 2, "\(o1)")
        #expect(a["referrersAPI"] == .bool(false), "Debian's docker-registry 2.8 has no referrers API")

        let (s2, o2) = podstart(["profile", "push", "--image", image, "--from", dir.file("b.jsonl"), "--output", "json"])
        #expect(s2 == 0, "\(o2)")
        let b = try jsonLine(o2)
        #expect(b["startsBefore"]?.int64Value == 2 && b["startsAdded"]?.int64Value == 1 && b["starts"]?.int64Value == 3, "\(o2)")

        // Pushing the same starts again writes nothing and counts nothing twice.
        let (s3, o3) = podstart(["profile", "push", "--image", image, "--from", dir.file("a.jsonl"), "--output", "json"])
        #expect(s3 == 0, "\(o3)")
        let again = try jsonLine(o3)
        #expect(again["pushed"] == .bool(false) && again["starts"]?.int64Value == 3 && again["startsAdded"]?.int64Value == 0, "\(o3)")
        #expect(again["manifestDigest"] == nil)

        let out = dir.file("pulled.json")
        let (s4, o4) = podstart(["profile", "pull", "--image", image, "--out", out])
        #expect(s4 == 0, "\(o4)")
        let pulled = try ImageProfile.parse(try String(contentsOfFile: out, encoding: .utf8))
        #expect(pulled.starts == 3)
        #expect(Set(pulled.startKeys) == Set(keys))
        let local = ImageProfile(traces: try lines.map { try PodStartTrace(json: try JSON.parse($0)) }, imageDigest: pulled.imageDigest)
        #expect(pulled.files.map(\.path) == local.files.map(\.path), "the merged profile is the profile of all three starts")
        #expect(pulled.files.map(\.starts) == local.files.map(\.starts))
        #expect(pulled.files.contains { $0.path == "/data/one.txt" && $0.starts == 3 && $0.bytes == 1000 })

        // The artifact is where registries without the referrers API look for it.
        let reference = try ImageReference(parsing: image)
        let client = try OCIRegistryClient(host: env.registry)
        let tagged = try #require(try await client.manifest(repository: reference.repository,
                                                                                reference: ProfileArtifact.tag(forSubject: pulled.imageDigest)))
        #expect(tagged.descriptor.digest == b["manifestDigest"]?.stringValue)

        // Pulled as a prefetch list, checked like export's.
        let (s5, o5) = podstart(["profile", "pull", "--image", image, "--format", "estargz"])
        #expect(s5 == 0, "\(o5)")
        try PrefetchExport.check(o5, format: .estargz)
        #expect(o5.contains(#"{"path":"data/one.txt"}"#))
    }

    /// A node agent's way: the starts come from its state store; a second push adds nothing.
    @Test func pushFromTheAgentsStateStore() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let traces = try threeReaderStarts(in: dir).map { try PodStartTrace(json: try JSON.parse($0)) }
        let state = dir.file("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let store = try TimelineStore(directory: state, configuration: .init(maxAgeSeconds: nil, maxBytes: nil))
        for t in traces { try await store.save(t) }
        try store.close()
        let image = try freshCopy(of: "reader:latest")
        let (s1, o1) = podstart(["profile", "push", "--image", image, "--state-dir", state, "--output", "json"])
        #expect(s1 == 0, "\(o1)")
        #expect(try jsonLine(o1)["startsAdded"]?.int64Value == 3, "\(o1)")
        let (s2, o2) = podstart(["profile", "push", "--image", image, "--state-dir", state])
        #expect(s2 == 0 && o2.contains("nothing to push"), "\(o2)")
        let (s3, o3) = podstart(["profile", "pull", "--image", image])
        #expect(s3 == 0, "\(o3)")
        let pulled = try ImageProfile.parse(o3)
        #expect(Set(pulled.startKeys) == Set(traces.map(ImageProfile.startKey)))
    }

    @Test func startsOfAnotherImageAreRefusedAndNothingIsWritten() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lines = try threeReaderStarts(in: dir)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir.file("reader.jsonl"), atomically: true, encoding: .utf8)
        let other = try freshCopy(of: "slow-ready:latest")
        let (status, output) = podstart(["profile", "push", "--image", other, "--from", dir.file("reader.jsonl")])
        #expect(status != 0)
        #expect(output.contains("no start of image sha256:"), "\(output)")
        let reference = try ImageReference(parsing: other)
        let client = try OCIRegistryClient(host: env.registry)
        let subject = try #require(try await client.manifest(repository: reference.repository, reference: "latest"))
        #expect(try await client.manifest(repository: reference.repository,
                                                            reference: ProfileArtifact.tag(forSubject: subject.descriptor.digest)) == nil)

        let (s2, o2) = podstart(["profile", "pull", "--image", other, "--out", dir.file("none.json")])
        #expect(s2 != 0 && o2.contains("no podstart profile of"), "\(o2)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("none.json")))

        let zero = "sha256:" + String(repeating: "0", count: 64)
        let (s3, o3) = podstart(["profile", "pull", "--image", "\(reference.registry)/\(reference.repository)@\(zero)"])
        #expect(s3 != 0 && o3.contains("unknown digest") && o3.contains(zero), "\(o3)")
    }

    @Test func refusingRegistriesGiveClearErrorsAndNoFile() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let port = closedLoopbackPort()
        let out = dir.file("profile.json")
        let (s1, o1) = podstart(["profile", "pull", "--image", "127.0.0.1:\(port)/app:1", "--out", out])
        #expect(s1 != 0 && o1.contains("127.0.0.1:\(port)") && o1.contains("connection refused"), "\(o1)")

        for status in [401, 500] {
            let server = try RegistryTestServer(mode: .refuse(status: status))
            defer { server.stop() }
            let (s, o) = podstart(["profile", "pull", "--image", "\(server.address)/app:1", "--out", out])
            #expect(s != 0 && o.contains(String(status)), "\(o)")
            if status == 401 { #expect(o.contains("docker login"), "\(o)") }
            let trace = Make.lines([Make.trace("u1", [Make.A(path: "/bin/app", ms: 1)])])
            try trace.write(toFile: dir.file("t.jsonl"), atomically: true, encoding: .utf8)
            let (sp, op) = podstart(["profile", "push", "--image", "\(server.address)/app:1", "--from", dir.file("t.jsonl")])
            #expect(sp != 0 && op.contains(String(status)), "\(op)")
            #expect(server.requests.allSatisfy { $0.method == "GET" || $0.method == "HEAD" }, "nothing written")
        }
        #expect(!FileManager.default.fileExists(atPath: out))

        // A registry that serves something else under podstart's tag: named, not merged into.
        let server = try RegistryTestServer(referrersAPI: false)
        defer { server.stop() }
        let digest = server.seedImage(repository: "app", tag: "1")
        let plain = try #require(server.manifest("app", digest))
        let client = try OCIRegistryClient(host: server.address)
        _ = try await client.putManifest(repository: "app", reference: ProfileArtifact.tag(forSubject: digest),
                                                           body: plain, mediaType: OCIMediaType.imageManifest)
        let (s3, o3) = podstart(["profile", "pull", "--image", "\(server.address)/app:1"])
        #expect(s3 != 0 && o3.contains("malformed") && o3.contains("not a podstart profile"), "\(o3)")
        let trace = Make.lines([Make.trace("u1", digest: digest, [Make.A(path: "/bin/app", ms: 1)])])
        try trace.write(toFile: dir.file("t.jsonl"), atomically: true, encoding: .utf8)
        let before = server.requests.count
        let (s4, o4) = podstart(["profile", "push", "--image", "\(server.address)/app:1", "--from", dir.file("t.jsonl")])
        #expect(s4 != 0 && o4.contains("not a podstart profile"), "\(o4)")
        #expect(server.requests.dropFirst(before).allSatisfy { $0.method == "GET" || $0.method == "HEAD" }, "nothing written")
    }

    @Test func pushThroughTheReferrersAPI() async throws {
        let server = try RegistryTestServer(referrersAPI: true)
        defer { server.stop() }
        let digest = server.seedImage(repository: "app", tag: "1")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let t1 = Make.lines([Make.trace("u1", digest: digest, [Make.A(path: "/bin/app", ms: 1, ranges: [[0, 4096]])])])
        let t2 = Make.lines([Make.trace("u2", digest: digest, [Make.A(path: "/bin/app", ms: 2, ranges: [[0, 8192]]),
                                                               Make.A(path: "/etc/app.conf", ms: 3, ranges: [[0, 100]])])])
        try t1.write(toFile: dir.file("1.jsonl"), atomically: true, encoding: .utf8)
        try t2.write(toFile: dir.file("2.jsonl"), atomically: true, encoding: .utf8)
        for (file, starts) in [("1.jsonl", 1), ("2.jsonl", 2)] {
            let (s, o) = podstart(["profile", "push", "--image", "\(server.address)/app:1", "--from", dir.file(file), "--output", "json"])
            #expect(s == 0, "\(o)")
            let result = try jsonLine(o)
            #expect(result["referrersAPI"] == .bool(true) && result["starts"]?.int64Value == Int64(starts), "\(o)")
        }
        #expect(server.tagged("app", ProfileArtifact.referrersTag(forSubject: digest)) == nil, "no fallback index where the API exists")
        #expect(server.requests.contains { $0.path == "/v2/app/referrers/\(digest)" })
        let (s, o) = podstart(["profile", "pull", "--image", "\(server.address)/app:1", "--format", "paths"])
        #expect(s == 0 && o == "/bin/app\n/etc/app.conf\n", "\(o)")
    }
}
