import AccessProfiles
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// The estargz export fed to the real converter: a start traced with `podstart trace`, exported
/// with `podstart profile export --format estargz`, then `ctr-remote image convert --oci --estargz
/// --estargz-record-in` (Debian's stargz-snapshotter) in the local containerd. Each converted
/// layer's TOC (`stargz.index.json`) must list exactly the exported files that layer holds, in the
/// exported order, before `.prefetch.landmark`.
@Suite(.serialized) struct EStargzConvertTests {
    let env: LocalEnvironment
    let binary: String
    let socket: String

    init() throws {
        env = try LocalEnvironment.shared()
        binary = try LocalEnvironment.podstartBinary()
        socket = "\(env.directory)/containerd/containerd.sock"
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ctr-remote") else {
            throw LocalEnvironment.StartFailure(description: "ctr-remote not found: install Debian's stargz-snapshotter (scripts/install-deps.sh)")
        }
    }

    func run(_ arguments: [String]) throws -> String {
        let (status, output) = LocalEnvironment.run(arguments)
        guard status == 0 else {
            throw LocalEnvironment.StartFailure(description: "\(arguments.prefix(4).joined(separator: " ")) … failed (\(status)): \(output)")
        }
        return output
    }

    func ctr(_ arguments: [String], tool: String = "ctr") throws -> String {
        try run([tool, "--address", socket, "--namespace", "k8s.io"] + arguments)
    }

    /// Layer digests of the image `ref` names in containerd (bottom first), through its manifest
    /// in the content store (the linux/amd64 one of an index).
    func layers(of ref: String) throws -> [String] {
        let listing = try ctr(["images", "ls", "name==\(ref)"])
        let row = try #require(listing.split(separator: "\n").first { $0.hasPrefix(ref + " ") }, "\(ref) not in: \(listing)")
        let digest = try #require(row.split(separator: " ").first { $0.hasPrefix("sha256:") })
        var manifest = try JSON.parse(try ctr(["content", "get", String(digest)]))
        if let manifests = manifest["manifests"]?.arrayValue {
            let chosen = try #require(manifests.first { $0["platform"]?["architecture"]?.stringValue == "amd64" } ?? manifests.first)
            manifest = try JSON.parse(try ctr(["content", "get", try #require(chosen["digest"]?.stringValue)]))
        }
        return try #require(manifest["layers"]?.arrayValue).compactMap { $0["digest"]?.stringValue }
    }

    /// The TOC entries (name, type) of an eStargz layer blob, in order.
    func toc(layer digest: String, scratch: TemporaryDirectory) throws -> [(String, String)] {
        let blob = scratch.file(String(digest.dropFirst(7)) + ".tgz")
        _ = try run(["sh", "-c", "ctr --address \(socket) --namespace k8s.io content get \(digest) > \(blob)"])
        let index = try run(["tar", "-xzf", blob, "-O", "stargz.index.json"])
        let entries = try #require(try JSON.parse(index)["entries"]?.arrayValue, "no entries in the TOC of \(digest)")
        return entries.map { ($0["name"]?.stringValue ?? "", $0["type"]?.stringValue ?? "") }
    }

    @Test func convertedLayersPrefetchExactlyTheExportedFilesInTheExportedOrder() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let source = env.image("small-files:latest")
        // Read out of the layer's (sorted) tar order, so the TOC can only follow the record.
        let reads = [1500, 3, 1999, 42].map { String(format: "/data/small/f%04d.txt", $0) }
        let trace = scratch.file("trace.json")
        _ = try run([binary, "trace", "--cri-endpoint", env.endpoint.description, "--image", source, "--ready-file", "/tmp/ready",
                     "--output", "json", "--out", trace, "--cmd", "/bin/busybox", "sh", "-c",
                     "/bin/busybox cat \(reads.joined(separator: " ")) > /dev/null; /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 3600"])
        let record = scratch.file("record.jsonl")
        _ = try run([binary, "profile", "export", "--from", trace, "--format", "estargz", "--out", record])
        let recordText = try String(contentsOfFile: record, encoding: .utf8)
        try PrefetchExport.check(recordText, format: .estargz)
        let exported = try recordText.split(separator: "\n").map { try #require(try JSON.parse(String($0))["path"]?.stringValue) }
        #expect(Array(exported.suffix(4)) == reads.map { String($0.dropFirst()) }, "the reads, in first-access order: \(exported)")

        // Which original layer provides each exported file, from the trace.
        let traced = try #require(try TraceFiles.load(paths: [trace], skipMalformed: false).first)
        let layerOf = Dictionary(traced.containers.flatMap(\.accesses).map { (String($0.path.dropFirst()), $0.layerDigest) },
                                 uniquingKeysWith: { a, _ in a })

        let target = "podstart.test/small-files:esgz-\(UInt32.random(in: 0 ... .max))"
        // The conversion reads every layer blob of the source, and CRI can hold an image whose
        // blobs are gone from the content store (seen after a run that left a pod on its
        // snapshots: a later pull found the layers unpacked and fetched no blob): fetch what is missing.
        _ = try ctr(["images", "pull", "--plain-http", source])
        _ = try ctr(["image", "convert", "--oci", "--estargz", "--estargz-record-in", record, source, target], tool: "ctr-remote")
        defer { _ = try? ctr(["images", "rm", target]) }

        let original = try layers(of: source)
        let converted = try layers(of: target)
        try #require(original.count == converted.count, "\(original.count) layers became \(converted.count)")
        var prioritized: [String] = []
        for (i, layer) in converted.enumerated() {
            let entries = try toc(layer: layer, scratch: scratch)
            let expected = exported.filter { layerOf[$0] == original[i] }
            let names = entries.map(\.0)
            if expected.isEmpty {
                #expect(names.contains(".no.prefetch.landmark"), "layer \(i): no listed file, so no prefetch: \(names.prefix(10))")
                continue
            }
            let landmark = try #require(names.firstIndex(of: ".prefetch.landmark"), "layer \(i) has no .prefetch.landmark")
            let before = entries[..<landmark].filter { $0.1 == "reg" }.map(\.0)
            #expect(before == expected, "layer \(i): files before the landmark \(before), exported \(expected)")
            prioritized += before
        }
        #expect(prioritized.count == exported.count, "every exported file is prioritized in its layer: \(prioritized) vs \(exported)")
    }
}
