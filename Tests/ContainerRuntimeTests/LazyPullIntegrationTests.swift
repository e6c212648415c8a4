import ContainerRuntime
import Foundation
import PodstartBenchKit
import PodstartCore
import PodstartTestSupport
import Testing

extension ContainerRuntimeIntegration {
    /// Lazy pulling for real: containerd's CRI on the stargz snapshotter that scripts/install-deps.sh
    /// builds (`scripts/localenv.sh stargz-up`) pulls an eStargz image of the local registry through
    /// a throttling proxy that counts what it relays, and starts a container from it. Bytes, not
    /// time: a lazy PullImage fetches the TOCs, not the layers, and a read fetches its own chunks.
    @Suite struct LazyPullIntegrationTests {
        let env: LocalEnvironment
        let stargz: CRIEndpoint

        init() throws {
            env = try LocalEnvironment.shared()
            stargz = try env.stargzEndpoint()
        }

        /// Compressed sizes of the layers of `image` in the registry (its manifest's descriptors).
        func layerBytes(_ image: String) throws -> [Int] {
            let (status, output) = LocalEnvironment.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(image)"])
            try #require(status == 0, "skopeo inspect \(image): \(output)")
            let layers = try #require(try JSON.parse(output)["layers"]?.arrayValue, "no layers in the manifest of \(image)")
            return layers.compactMap { $0["size"]?.int64Value.map { Int($0) } }
        }

        /// FUSE filesystems the stargz snapshotter has mounted (one per lazily pulled layer).
        func stargzMounts() throws -> [String] {
            let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            let root = "\(env.directory)/stargz/root/"
            return mountinfo.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: " ")
                guard fields.count > 4, fields[4].hasPrefix(root),
                      let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count,
                      fields[dash + 1].hasPrefix("fuse") else { return nil }
                return String(fields[4])
            }
        }

        @Test func criPullsAnEStargzImageLazilyAndTheContainerReadsItsChunksOnDemand() async throws {
            let registryPort = try #require(UInt16(env.registry.split(separator: ":").last ?? ""))
            let layers = try layerBytes(env.image("large-layer:estargz"))
            let fullBytes = layers.reduce(0, +)
            try #require(fullBytes > 64 << 20, "large-layer:estargz holds 64 MiB of random data, its layers \(layers)")

            // Cold: no image of that content in the stargz containerd, so no snapshot to reuse.
            try await CRIClient.withClient(endpoint: stargz) { client in
                for image in try await client.listImages() where image.repoTags.contains(where: { $0.hasSuffix("/podstart-test/large-layer:estargz") }) {
                    try await client.removeImage(image.id)
                }
            }
            let mountsBefore = try stargzMounts().count

            // 4 MiB/s: the whole image would take over 16 s through it.
            let proxy = try ThrottlingProxy(upstreamPort: registryPort, bytesPerSecond: 4 * 1024 * 1024)
            defer { proxy.stop() }
            // containerd and the snapshotter both speak plain HTTP to 127.0.0.1 registries.
            let image = "127.0.0.1:\(proxy.port)/podstart-test/large-layer:estargz"
            var options = PodStartOptions(image: image, pod: PodStartOptions.newPod(name: "lazy"))
            options.logRoot = env.logRoot
            options.timeout = .seconds(120)

            let imageRef = try await CRIClient.withClient(endpoint: stargz) { client in
                try await client.pullImage(image, sandboxConfig: PodStarter(endpoint: stargz).kubeletSandboxConfigForTests(options))
            }
            let fetchedByPull = proxy.fetchedBytes
            #expect(imageRef.hasPrefix("sha256:"))
            #expect(try stargzMounts().count >= mountsBefore + layers.count,
                    "each layer is a FUSE mount of the snapshotter, not an unpacked copy")
            #expect(fetchedByPull * 20 < fullBytes,
                    "PullImage fetched \(fetchedByPull) bytes of the image's \(fullBytes): not lazily")

            // A 1 MiB read of the 64 MiB file fetches about that much more, and no more than a few chunks over.
            options.command = ["/bin/busybox", "sh", "-c",
                               "/bin/busybox head -c 1048576 /data/random.bin > /dev/null && /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 3600"]
            options.readiness = .file(path: "/tmp/ready")
            let record = try await PodStarter(endpoint: stargz).run(options)
            #expect(record.containerPid > 0)
            let fetchedByStart = proxy.fetchedBytes - fetchedByPull
            #expect(fetchedByStart >= 1 << 20, "the container read 1 MiB of random data; only \(fetchedByStart) bytes came from the registry")
            #expect(proxy.fetchedBytes * 4 < fullBytes,
                    "pull and start fetched \(proxy.fetchedBytes) bytes of the image's \(fullBytes)")

            try await CRIClient.withClient(endpoint: stargz) { client in try await client.removeImage(imageRef) }
        }
    }
}
