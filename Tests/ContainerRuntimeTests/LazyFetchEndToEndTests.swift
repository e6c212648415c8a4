import ContainerRuntime
import Foundation
import PodstartBenchKit
import PodstartCore
import PodstartTestSupport
import Testing

extension ContainerRuntimeIntegration {
    /// `podstart trace` on a lazily pulled image (issue #17, "where lazy pulling moved the time"):
    /// the built binary against the stargz containerd of `scripts/localenv.sh stargz-up`, the eStargz
    /// image pulled through a throttling proxy, so every chunk the container reads is fetched on
    /// demand while it starts. The kernel's fuse tracepoints must show that wait as `lazy_fetch`
    /// inside `start`/`probe`, naming the files the container read; the same image on overlayfs has
    /// no FUSE file system and so no `lazy_fetch`.
    @Suite struct LazyFetchEndToEndTests {
        let env: LocalEnvironment
        let stargz: CRIEndpoint
        let binary: String

        init() throws {
            env = try LocalEnvironment.shared()
            stargz = try env.stargzEndpoint()
            binary = try LocalEnvironment.podstartBinary()
        }

        typealias Phase = TraceCommandEndToEndTests.Phase

        /// The container reads 1 MiB of the 64 MiB of random data, then says it is ready.
        static let command = ["/bin/busybox", "sh", "-c",
                              "/bin/busybox head -c 1048576 /data/random.bin > /dev/null && /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 3600"]

        func trace(endpoint: CRIEndpoint, image: String, cold: Bool) throws -> ([String: Any], [Phase]) {
            let (object, phases, _) = try TraceCommandEndToEndTests.trace(
                binary: binary, endpoint: endpoint,
                ["--image", image, "--ready-file", "/tmp/ready", "--probe-period", "20ms"] + (cold ? ["--cold"] : []) + ["--cmd"] + Self.command)
            return (object, phases)
        }

        /// The eStargz image through a new 4 MiB/s proxy (the container's 1 MiB read cannot come
        /// faster than a quarter second), gone from the stargz containerd under every name, so its
        /// next start pulls it lazily.
        func coldLazyImage() async throws -> (image: String, proxy: ThrottlingProxy) {
            let registryPort = try #require(UInt16(env.registry.split(separator: ":").last ?? ""))
            let proxy = try ThrottlingProxy(upstreamPort: registryPort, bytesPerSecond: 4 * 1024 * 1024)
            try await CRIClient.withClient(endpoint: stargz) { client in
                for present in try await client.listImages() where present.repoTags.contains(where: { $0.hasSuffix("/podstart-test/large-layer:estargz") }) {
                    try await client.removeImage(present.id)
                }
            }
            return ("127.0.0.1:\(proxy.port)/podstart-test/large-layer:estargz", proxy)
        }

        @Test func aLazilyPulledContainersWaitOnRemoteChunksIsLazyFetchInsideStartAndProbeWithTheFileItRead() async throws {
            let (image, proxy) = try await coldLazyImage()
            defer { proxy.stop() }
            let (object, phases) = try trace(endpoint: stargz, image: image, cold: true)
            #expect(proxy.fetchedBytes >= 1 << 20, "the 1 MiB read did not come through the proxy: \(proxy.fetchedBytes) bytes")

            let lazy = phases.filter { $0.name == "lazy_fetch" }
            let lazyNs = lazy.reduce(Int64(0)) { $0 + $1.end - $1.start }
            #expect(lazyNs > 0, "no lazy_fetch in \(phases.map(\.name))")
            let top = phases.filter { $0.parent == nil }
            for piece in lazy {
                #expect(piece.parent == "start" || piece.parent == "probe", "lazy_fetch under \(piece.parent ?? "nothing")")
                #expect(top.contains { $0.name == piece.parent && $0.start <= piece.start && piece.end <= $0.end },
                        "a lazy_fetch piece [\(piece.start), \(piece.end)] lies outside its \(piece.parent ?? "") phase")
            }
            // the pieces never overlap (the union of the waits, cut at phase boundaries)
            let sorted = lazy.sorted { $0.start < $1.start }
            for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.end <= b.start) }

            let containers = try #require(object["containers"] as? [[String: Any]])
            let fetches = try #require(containers.first?["lazyFetches"] as? [[String: Any]], "no lazyFetches in \(containers)")
            // the replies carried at least what the container read
            let bytes = fetches.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) }
            #expect(bytes >= 1 << 20, "\(fetches)")
            #expect(fetches.contains { $0["operation"] as? String == "read" && ($0["waitSeconds"] as? Double ?? 0) > 0 }, "\(fetches)")
            // Each read is named by the file whose pages its task had just added to the page cache,
            // joined to the path through the layer's copy of it; a read the kernel saw no fill for
            // stays unnamed, and must be rare.
            let reads = fetches.filter { $0["operation"] as? String == "read" }
            let named = reads.filter { $0["path"] is String }
            let readBytes = reads.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) }
            let namedBytes = named.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) }
            #expect(namedBytes * 10 >= readBytes * 9, "\(namedBytes) of \(readBytes) read bytes named: \(fetches)")
            let random = try #require(named.first { $0["path"] as? String == "/data/random.bin" },
                                      "the file the container read is not among those fetched: \(fetches)")
            #expect((random["bytes"] as? Int ?? 0) >= 1 << 20, "\(random)")
            #expect((random["waitSeconds"] as? Double ?? 0) > 0, "\(random)")
            #expect((random["layerDigest"] as? String)?.hasPrefix("sha256:") == true, "\(random)")
            // and every file named is one the container read: among its accesses, with bytes read,
            // from the same layer
            let accesses = try #require(containers.first?["accesses"] as? [[String: Any]], "no accesses in \(containers)")
            for fetch in named {
                let path = fetch["path"] as? String ?? ""
                let access = accesses.first { $0["path"] as? String == path }
                #expect((access?["bytes"] as? Int ?? 0) > 0, "\(path) was fetched but the container's accesses do not show it read: \(accesses)")
                #expect(access?["layerDigest"] as? String == fetch["layerDigest"] as? String, "\(fetch) vs \(access ?? [:])")
            }
        }

        /// The agent on the same node: it finds the image's layers under the root the runtime
        /// reports (the stargz snapshotter keeps them under its own), so the files a lazy start
        /// fetched are named with the layer that holds them, as `trace` names them.
        @Test func theAgentNamesTheFilesALazyStartFetchedWithTheirLayers() async throws {
            let (image, proxy) = try await coldLazyImage()
            defer { proxy.stop() }
            let agent = try await AgentProcess.start(binary: binary, stateDirectory: try Command.temporaryDirectory("podstart-agent-stargz"),
                                                     arguments: ["--cri-endpoint", stargz.description])
            var options = env.options(image: "large-layer:estargz")
            options.image = image
            options.command = Self.command
            options.readiness = .file(path: "/tmp/ready")
            options.probePeriod = .milliseconds(20)
            let record = try await PodStarter(endpoint: stargz).run(options)
            let trace = try await agent.pod(record.pod.uid, timeout: 60)
            #expect(try await agent.stop() == 0)

            let containers = try #require(trace["containers"] as? [[String: Any]])
            let fetches = try #require(containers.first?["lazyFetches"] as? [[String: Any]], "no lazyFetches in \(containers)")
            let random = try #require(fetches.first { $0["path"] as? String == "/data/random.bin" },
                                      "\(fetches)\naccesses: \(containers.first?["accesses"] ?? "none")")
            #expect((random["bytes"] as? Int ?? 0) >= 1 << 20, "\(random)")
            #expect((random["layerDigest"] as? String)?.hasPrefix("sha256:") == true, "\(random)")
            let accesses = try #require(containers.first?["accesses"] as? [[String: Any]], "no accesses in \(containers)")
            let access = try #require(accesses.first { $0["path"] as? String == "/data/random.bin" }, "\(accesses)")
            #expect(access["layerDigest"] as? String == random["layerDigest"] as? String, "\(access) vs \(random)")
            // no readiness source here (no API server, no kubelet): the start ends as the container
            // runs, before its read, so the wait is in the container's fetches, not in a phase
            #expect(trace["readiness"] as? String == "unknown", "\(trace["readiness"] ?? "none")")
        }

        @Test func theSameImageOnOverlayfsHasNoLazyFetch() throws {
            let (object, phases) = try trace(endpoint: env.endpoint, image: env.image("large-layer:estargz"), cold: false)
            #expect(phases.contains { $0.name == "probe" || $0.name == "ready_report" }, "\(phases.map(\.name))")
            #expect(!phases.contains { $0.name == "lazy_fetch" }, "\(phases.map(\.name))")
            let containers = try #require(object["containers"] as? [[String: Any]])
            #expect(containers.allSatisfy { $0["lazyFetches"] == nil })
            // and the container did read the file, through overlayfs
            let accesses = try #require(containers.first?["accesses"] as? [[String: Any]])
            #expect(accesses.contains { $0["path"] as? String == "/data/random.bin" })
        }
    }
}
