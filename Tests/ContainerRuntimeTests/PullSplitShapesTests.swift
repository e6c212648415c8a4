import ContainerRuntime
import Foundation
import PodstartBenchKit
import PodstartTestSupport
import PodstartCore
import Testing

extension ContainerRuntimeIntegration.TraceCommandEndToEndTests {
    /// The pull split on images of every shape (#17.1), each pulled cold through a throttling
    /// proxy that measures the registry side: `download` must match the time the registry spent
    /// sending (within 25% or 0.3 s), and `decompress` must hold the unpack, which containerd 1.6
    /// does after the last byte arrived and before PullImage returns.
    /// Rates make every transfer last a second or more (each image holds busybox, about 1 MiB
    /// compressed), so the registry's time is mostly sending rather than waiting between requests.
    @Test(arguments: [
        ("large-layer:latest", 24.0, Route.proxy),      // one large incompressible file: download-bound
        ("large-layer:compressible", 1.0, Route.proxy), // one large file of zeros: unpack-bound (512 MiB from 0.5 MiB)
        ("small-files:latest", 1.0, Route.proxy),       // two thousand small files
        ("reader:latest", 1.0, Route.proxy),            // several layers
        ("whiteouts:latest", 1.0, Route.proxy),         // a layer deleting what the one below added (128 MiB of text among it)
        // The issue's case: one large file pulled through a registry mirror entry at 16 MiB/s.
        ("large-layer:compressible", 16.0, Route.mirror),
        ("small-files:latest", 1.0, Route.mirror),
    ])
    func pullSplitMatchesTheRegistrySideOnEveryImageShape(name: String, mebibytesPerSecond: Double, route: Route) async throws {
        let registryPort = try #require(UInt16(env.registry.split(separator: ":").last ?? ""))
        let proxy = try ThrottlingProxy(upstreamPort: registryPort, bytesPerSecond: mebibytesPerSecond * 1024 * 1024)
        defer { proxy.stop() }
        let image: String
        switch route {
        case .proxy:
            image = "127.0.0.1:\(proxy.port)/podstart-test/\(name)"
        case .mirror:
            // A name containerd resolves only through its hosts.toml: the mirror (the throttling
            // proxy) first, the local registry as the upstream server. Both are loopback addresses.
            image = "\(Self.mirroredRegistry)/podstart-test/\(name)"
            try writeMirrorEntry(proxyPort: proxy.port, registryPort: registryPort)
        }
        // The same content under the registry's own name would make the pull find every blob present.
        try await CRIClient.withClient(endpoint: env.endpoint) { client in
            if let present = try await client.imageStatus(env.image(name)) { try await client.removeImage(present.id) }
        }
        let (_, phases) = try trace(["--image", image, "--cold"])
        let window = try #require(proxy.relayWindow, "nothing went through the proxy: the pull was not cold")
        let served = Double(window.lastUnixNs - window.firstUnixNs) / 1e9
        let download = seconds(phases, "download"), decompress = seconds(phases, "decompress")
        let pull = try #require(phases.first { $0.name == "pull" }, "no pull phase: \(phases.map(\.name))")
        let summary = "\(name): registry sent for \(served) s; download \(download) s, decompress \(decompress) s, "
            + "pull_other \(seconds(phases, "pull_other")) s, pull \(Double(pull.end - pull.start) / 1e9) s"
        print("pull split: " + summary)
        #expect(abs(download - served) <= max(0.25 * served, 0.3), "download does not match the registry side: \(summary)")
        // The unpack as the file system saw it: the inode changes in containerd's snapshots during
        // the pull (containerd sets each file's owner, mode and times once it is written; no
        // birth times on this file system).
        let unpacked = try unpackWindow(after: pull.start, before: pull.end)
        // A layer may be unpacked while a later one still downloads; that time is download's
        // (a pull part is the one thing happening at an instant, download first): decompress
        // must hold the unpack from the last byte on.
        let unpack = Double(unpacked.lastUnixNs - max(unpacked.firstUnixNs, window.lastUnixNs)) / 1e9
        print("pull split: \(name): unpack \(unpack) s after the last byte (\(unpacked.files) files changed, "
              + "from \(Double(unpacked.firstUnixNs - window.lastUnixNs) / 1e9) s after it)")
        #expect(decompress >= unpack - max(0.25 * unpack, 0.3), "decompress does not hold the unpack (\(unpack) s): \(summary)")
        #expect(decompress <= Double(pull.end - pull.start) / 1e9, "\(summary)")
        let ends = phases.filter { $0.name == "decompress" }.map(\.end)
        #expect(ends.allSatisfy { $0 >= window.firstUnixNs }, "decompress before the first byte arrived: \(summary)")
    }

    /// How the pull reaches the registry: straight to the throttling proxy by its address, or
    /// through a registry mirror entry (containerd's `hosts.toml`) that names the proxy as the mirror.
    enum Route: String, Sendable, CustomTestStringConvertible {
        case proxy, mirror
        var testDescription: String { rawValue }
    }

    /// The registry name the mirror entry is for; never resolved through DNS (hosts.toml names
    /// every host containerd contacts for it by loopback address).
    static let mirroredRegistry = "mirror.podstart.test"

    /// containerd's registry host configuration for `mirroredRegistry` (`config_path` in
    /// scripts/localenv.sh; read again on every pull): the proxy as a pull/resolve mirror, the
    /// local registry as the upstream server.
    func writeMirrorEntry(proxyPort: UInt16, registryPort: UInt16) throws {
        let directory = "\(env.directory)/containerd/certs.d/\(Self.mirroredRegistry)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let hosts = """
            server = "http://127.0.0.1:\(registryPort)"

            [host."http://127.0.0.1:\(proxyPort)"]
              capabilities = ["pull", "resolve"]
              skip_verify = true

            """
        try hosts.write(toFile: "\(directory)/hosts.toml", atomically: true, encoding: .utf8)
    }

    /// First and last inode change in containerd's overlayfs snapshots between `after` and
    /// `before` (Unix ns): the unpack, measured by the file system.
    func unpackWindow(after: Int64, before: Int64) throws -> (firstUnixNs: Int64, lastUnixNs: Int64, files: Int) {
        let snapshots = "\(env.directory)/containerd/root/io.containerd.snapshotter.v1.overlayfs/snapshots"
        // find's status is 1 when containerd's GC removes an old snapshot during the walk: not an error here
        let (_, output) = LocalEnvironment.run(["/usr/bin/find", snapshots, "-mindepth", "2", "-printf", "%C@\\n"])
        var first = Int64.max, last = Int64.min, files = 0
        for line in output.split(separator: "\n") {
            guard let seconds = Double(line) else { continue }
            let changed = Int64(seconds * 1e9)
            guard changed >= after, changed <= before else { continue }
            first = min(first, changed)
            last = max(last, changed)
            files += 1
        }
        return try #require(files > 0 ? (first, last, files) : nil, "no snapshot file changed during the pull in \(snapshots)")
    }
}
