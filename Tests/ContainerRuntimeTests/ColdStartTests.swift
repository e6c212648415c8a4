import ContainerRuntime
import Foundation
import PodstartTestSupport
import Testing

extension ContainerRuntimeIntegration {
    /// Issue #18 item 3: `--cold` after `ctr -n k8s.io images rm <tag>`, which deletes only the
    /// tag's image record and leaves the `sha256:<config>` and digest records CRI made (and with
    /// them the content).
    @Suite struct ColdStartTests {
        let env: LocalEnvironment

        init() throws { env = try LocalEnvironment.shared() }

        func ctr(_ arguments: [String]) -> (Int32, String) {
            LocalEnvironment.run(["ctr", "--address", env.endpoint.socketPath, "-n", "k8s.io"] + arguments)
        }

        func contentDigests() -> Set<String> {
            let (status, out) = ctr(["content", "ls", "-q"])
            #expect(status == 0)
            return Set(out.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) })
        }

        @Test func coldAfterCtrRemovedTheTagReallyPulls() async throws {
            let tag = env.image("small-files:latest")
            let (id, _) = try await CRIClient.withClient(endpoint: env.endpoint) { client in
                _ = try await client.pullImage(tag, sandboxConfig: nil)
                let info = try #require(try await client.imageStatus(tag))
                return (info.id, info.repoDigests)
            }
            // What `ctr images rm <tag>` leaves: no tag, but the id record and the content.
            let (status, out) = ctr(["images", "rm", tag])
            #expect(status == 0, "ctr images rm: \(out)")
            let (byTag, all) = try await CRIClient.withClient(endpoint: env.endpoint) { client in
                (try await client.imageStatus(tag), try await client.listImages())
            }
            #expect(byTag == nil)
            #expect(all.contains { $0.id == id }, "CRI's id record is gone already: the test shows nothing")
            #expect(contentDigests().contains(id), "config blob \(id) not in the content store before --cold")

            let removed = try await CRIClient.withClient(endpoint: env.endpoint) { client in
                try await PodStarter(endpoint: env.endpoint).removeImageForColdStart(tag, client: client)
            }
            #expect(removed.contains(id))
            let after = try await CRIClient.withClient(endpoint: env.endpoint) { client in try await client.listImages() }
            #expect(!after.contains { $0.id == id })
            // containerd's GC frees the content once no image references it.
            var gone = false
            for _ in 0..<50 where !gone {
                gone = !contentDigests().contains(id)
                if !gone { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(gone, "config blob \(id) still in the content store after --cold's removal")

            // And the cold start downloads the image again: the config blob, absent from the
            // content store now, can only come from the registry.
            var options = env.options(image: "small-files:latest")
            options.cold = true
            let record = try await PodStarter(endpoint: env.endpoint).run(options)
            #expect(record.pulled)
            #expect(record.imageID == id)
            #expect(contentDigests().contains(id), "config blob \(id) not in the content store after the cold start")
        }
    }
}
