import AccessProfiles
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// The trace's `imageBytes` (what a profile's `readShare` and `imageShare` divide by) against the
/// image's own layer tars in containerd's content store: the sizes of their regular files.
@Suite(.serialized) struct ImageSizeTests {
    @Test func traceImageBytesIsTheSumOfTheRegularFilesInTheImageLayers() throws {
        let env = try LocalEnvironment.shared()
        let binary = try LocalEnvironment.podstartBinary()
        let socket = "\(env.directory)/containerd/containerd.sock"
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let out = scratch.file("trace.json")
        let (status, output) = LocalEnvironment.run([binary, "trace", "--cri-endpoint", env.endpoint.description,
                                                     "--image", env.image("reader:latest"), "--ready-file", "/tmp/ready",
                                                     "--output", "json", "--out", out])
        try #require(status == 0, "podstart trace failed: \(output)")
        let trace = try #require(try TraceFiles.load(paths: [out], skipMalformed: false).first)
        let container = try #require(trace.containers.first)
        let imageBytes = try #require(container.imageBytes, "the trace has no imageBytes")
        let layers = Set(container.accesses.compactMap(\.layerDigest))
        try #require(layers.count == 3, "reader's files come from its three layers: \(layers)")
        var expected: UInt64 = 0
        for layer in layers {
            // tar -tv: a regular file's line starts with '-'; hard links ('h') carry no data
            let (s, listing) = LocalEnvironment.run(["sh", "-c", "ctr --address \(socket) --namespace k8s.io content get \(layer) | tar -tvzf -"])
            try #require(s == 0, "\(listing)")
            for line in listing.split(separator: "\n") where line.hasPrefix("-") {
                expected += UInt64(line.split(separator: " ", omittingEmptySubsequences: true)[2]) ?? 0
            }
        }
        #expect(imageBytes == expected)
        #expect(expected > 2_000_000, "busybox alone is about 2 MB")
        let profile = ImageProfile(traces: [trace], imageDigest: try #require(container.imageDigest))
        #expect(profile.imageBytes == imageBytes)
        #expect(try #require(profile.readShare) > 0 && profile.readShare! < 0.5)
    }
}
