import ContainerRuntime
import Foundation
import PodstartTestSupport
import Testing

extension ContainerRuntimeIntegration {
    /// pid / mount namespace / cgroup → container → pod and image, and file → image layer, on real
    /// containers of the local environment.
    @Suite struct ResolverIntegrationTests {
        let env: LocalEnvironment

        init() throws { env = try LocalEnvironment.shared() }

        @Test func runningProcessResolvesToItsPodContainerAndImage() async throws {
            let options = env.options(image: "small-files:latest")
            let resolver = ContainerResolver(endpoint: env.endpoint)
            var resolved: [ContainerMetadata?] = []
            let record = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { record in
                resolved.append(try await resolver.metadata(pid: record.containerPid))
                resolved.append(await resolver.metadata(mountNamespaceInode: record.mountNamespaceInode ?? 0))
                let byID = await resolver.metadata(containerID: record.containerID)
                resolved.append(await resolver.metadata(cgroupID: byID?.cgroupID ?? 0))
            })
            for (index, hit) in resolved.enumerated() {
                let meta = try #require(hit, "lookup \(index) found nothing")
                #expect(meta.containerID == record.containerID)
                #expect(meta.sandboxID == record.sandboxID)
                #expect(meta.pod == record.pod)
                #expect(meta.containerName == "main")
                #expect(meta.imageDigest == record.imageDigest)
                #expect(meta.state == .running)
            }
            // The host's own processes are no container.
            #expect(try await resolver.metadata(pid: getpid()) == nil)
        }

        @Test func runKeepsTheCacheCurrentWithoutExplicitRefreshes() async throws {
            let resolver = ContainerResolver(endpoint: env.endpoint, pollInterval: .milliseconds(100))
            let keeper = Task { try await resolver.run() }
            defer { keeper.cancel() }
            var seen: ContainerMetadata?
            let record = try await PodStarter(endpoint: env.endpoint).run(env.options(image: "small-files:latest"),
                                                                         whileReady: { record in
                for _ in 0..<50 {
                    seen = await resolver.metadata(containerID: record.containerID)
                    if seen != nil { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
            })
            #expect(seen?.pod == record.pod)
            // containerd 1.6 has no GetContainerEvents: the resolver must have fallen back to polling.
            let mode = await resolver.mode
            #expect(mode == "polling" || mode == "events")
            keeper.cancel()
            let outcome = await keeper.result
            if case .failure(let error) = outcome, !(error is CancellationError) {
                Issue.record("resolver.run() failed: \(error)")
            }
        }

        /// Cancelled mid-call, grpc reports "the transport threw an unexpected error", and now and
        /// then a client's shutdown outlasts a minute: a caller that cancelled must see a
        /// cancellation, at once, not a runtime failure (CI saw one in ~300 runs) or a hang.
        actor Outcome {
            var result: Result<Void, Error>?
            func set(_ result: Result<Void, Error>) { self.result = result }
        }

        @Test func cancellingRunMidCallEndsAtOnceWithCancellationOnly() async throws {
            var failures: [String] = []
            for round in 0..<100 {
                let resolver = ContainerResolver(endpoint: env.endpoint, pollInterval: .milliseconds(1))
                let keeper = Task { try await resolver.run() }
                try await Task.sleep(for: .microseconds(250 * (round % 20)))
                keeper.cancel()
                let outcome = Outcome()
                Task { await outcome.set(await keeper.result) }
                var waited = 0
                while await outcome.result == nil, waited < 500 {
                    try await Task.sleep(for: .milliseconds(10))
                    waited += 1
                }
                switch await outcome.result {
                case nil: failures.append("round \(round): run() had not ended 5 s after it was cancelled")
                case .failure(let error) where !(error is CancellationError): failures.append("round \(round): \(error)")
                default: break
                }
            }
            #expect(failures.isEmpty, "\(failures)")
        }

        @Test func containerThatExitedAtOnceStillResolvesWithItsExitCode() async throws {
            let options = env.options(image: "small-files:latest")
            let resolver = ContainerResolver(endpoint: env.endpoint)
            let imageRef = env.image("small-files:latest")
            var shortLived: ContainerMetadata?
            var shortLivedID = ""
            _ = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { record in
                // A second container of the same pod that exits within milliseconds.
                shortLivedID = try await CRIClient.withClient(endpoint: env.endpoint) { client in
                    var config = ContainerConfig(name: "oneshot", image: imageRef, logPath: "oneshot/0.log")
                    config.command = ["/bin/busybox", "sh", "-c", "exit 7"]
                    config.labels = [KubeletLabels.podName: record.pod.name, KubeletLabels.podNamespace: record.pod.namespace,
                                     KubeletLabels.podUID: record.pod.uid, KubeletLabels.containerName: "oneshot"]
                    let sandboxConfig = PodStarter(endpoint: env.endpoint).kubeletSandboxConfigForTests(options)
                    let id = try await client.createContainer(sandboxID: record.sandboxID, config: config,
                                                              sandboxConfig: sandboxConfig)
                    try await client.startContainer(id: id)
                    for _ in 0..<100 where try await client.containerStatus(id: id).state != .exited {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    return id
                }
                try await resolver.refresh()
                shortLived = await resolver.metadata(containerID: shortLivedID)
            })
            let meta = try #require(shortLived)
            #expect(meta.state == .exited)
            #expect(meta.exitCode == 7)
            #expect(meta.pod == options.pod)
            #expect(meta.containerName == "oneshot")
            #expect(meta.imageDigest?.hasPrefix("sha256:") == true)
        }

        @Test func filesMapToTheManifestLayerThatProvidesThem() async throws {
            var options = env.options(image: "reader:latest")
            options.readiness = .file(path: "/tmp/ready")
            var attributions: [String: LayerAttribution?] = [:]
            var loaded: ImageLayers?
            let record = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { record in
                let rootfs = try #require(record.rootfs)
                let root = try #require(rootfs.containerdRoot)
                let layers = try ImageLayers.load(contentStoreRoot: root, digest: try #require(record.imageDigest))
                loaded = layers
                for path in ["/reader", "/data/one.txt", "/data/three.txt", "/tmp/ready", "/missing"] {
                    attributions[path] = rootfs.attribution(of: path, layers: layers)
                }
            })
            // The registry's own view of the image, independent of containerd.
            let (status, output) = LocalEnvironment.run(["skopeo", "inspect", "--tls-verify=false",
                                                         "docker://\(env.image("reader:latest"))"])
            #expect(status == 0, "skopeo: \(output)")
            let inspected = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            let registryLayers = try #require(inspected?["Layers"] as? [String])
            let layers = try #require(loaded)
            #expect(layers.layers.map(\.digest) == registryLayers)
            #expect(layers.configDigest == record.imageID)
            #expect(layers.layers.allSatisfy { $0.diffID?.hasPrefix("sha256:") == true })
            #expect(attributions["/reader"] == .layer(layers.layers[0]))
            #expect(attributions["/data/one.txt"] == .layer(layers.layers[1]))
            #expect(attributions["/data/three.txt"] == .layer(layers.layers[2]))
            #expect(attributions["/tmp/ready"] == .container)
            #expect(attributions["/missing"] == .some(LayerAttribution.none))
        }
    }
}
