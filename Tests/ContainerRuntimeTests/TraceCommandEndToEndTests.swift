import ContainerRuntime
import Foundation
import PodstartBenchKit
import PodstartTestSupport
import PodstartCore
import Testing

extension ContainerRuntimeIntegration {
    /// `podstart trace` as users run it: the built binary against the local environment, checked on
    /// its trace JSON. The binary sits next to the test bundle (`swift build --build-tests` builds it).
    @Suite struct TraceCommandEndToEndTests {
        let env: LocalEnvironment
        let binary: String

        init() throws {
            env = try LocalEnvironment.shared()
            binary = try LocalEnvironment.podstartBinary()
        }

        struct Phase { var name: String; var start: Int64; var end: Int64; var parent: String? }

        /// Runs `podstart trace … --output json` and returns the trace object and its phases.
        func trace(_ arguments: [String]) throws -> ([String: Any], [Phase]) {
            let (object, phases, output) = try Self.trace(binary: binary, endpoint: env.endpoint, arguments)
            #expect(!output.contains("pulling: "), "progress written where standard error is not a terminal")
            #expect(object["schemaVersion"] as? String == "podstart.dev/v1")
            return (object, phases)
        }

        /// `podstart trace --cri-endpoint ENDPOINT --output json ARGUMENTS` (any runtime): the trace
        /// object, its phases and everything the command wrote.
        static func trace(binary: String, endpoint: CRIEndpoint, _ arguments: [String]) throws -> ([String: Any], [Phase], String) {
            let (status, output) = LocalEnvironment.run(
                [binary, "trace", "--cri-endpoint", endpoint.description, "--output", "json"] + arguments)
            guard status == 0 else {
                throw LocalEnvironment.StartFailure(description: "podstart trace failed (\(status)): \(output)")
            }
            let line = output.split(separator: "\n").first { $0.hasPrefix("{") } ?? ""
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "no trace in: \(output)")
            let phases = try (object["phases"] as? [[String: Any]] ?? []).map { p in
                Phase(name: p["name"] as? String ?? "",
                      start: try #require((p["start"] as? String).flatMap(Timestamp.parseRFC3339)),
                      end: try #require((p["end"] as? String).flatMap(Timestamp.parseRFC3339)),
                      parent: p["parent"] as? String)
            }
            return (object, phases, output)
        }

        func seconds(_ phases: [Phase], _ name: String) -> Double {
            Double(phases.filter { $0.name == name }.reduce(Int64(0)) { $0 + $1.end - $1.start }) / 1e9
        }

        @Test func probePhaseIsTheEntrypointsDelayAndTopLevelPhasesAddUpToE2E() throws {
            let (object, phases) = try trace(["--image", env.image("slow-ready:latest"), "--ready-file", "/tmp/ready",
                                              "--probe-period", "20ms"])
            let probe = seconds(phases, "probe")
            #expect(abs(probe - 1.5) <= 0.15, "probe \(probe) s")
            let created = try #require((object["created"] as? String).flatMap(Timestamp.parseRFC3339))
            let ready = try #require((object["ready"] as? String).flatMap(Timestamp.parseRFC3339))
            let top = phases.filter { $0.parent == nil }.sorted { $0.start < $1.start }
            #expect(top.first?.start == created && top.last?.end == ready)
            for (a, b) in zip(top, top.dropFirst()) { #expect(a.end == b.start, "\(a.name) → \(b.name) leave a gap") }
            let sum = top.reduce(Int64(0)) { $0 + $1.end - $1.start }
            #expect(sum == ready - created)
            let e2e = try #require(object["e2eSeconds"] as? Double)
            #expect(abs(e2e - Double(ready - created) / 1e9) < 1e-6)
            for name in ["sandbox", "create", "start", "probe"] { #expect(seconds(phases, name) > 0, "\(name) missing") }
        }

        @Test func coldPullSplitsExactlyAndMatchesThePullImageCallAsContainerdLoggedIt() throws {
            let image = env.image("large-layer:latest")
            let (_, phases) = try trace(["--image", image, "--cold"])
            let pull = seconds(phases, "pull")
            let parts = seconds(phases, "download") + seconds(phases, "decompress") + seconds(phases, "pull_other")
            #expect(pull > 0)
            #expect(abs(parts - pull) <= 0.001, "download+decompress+pull_other \(parts) s, pull \(pull) s")
            #expect(seconds(phases, "download") > 0, "no download seen in a cold pull of 64 MiB")
            // The same PullImage call timed on the other side: containerd's CRI plugin logs when it
            // receives it and when it returns (docs/inputs.md#containerd-log-lines).
            let runtimeSeconds = try #require(containerdPullSeconds(image), "no PullImage lines for \(image) in containerd's log")
            #expect(abs(pull - runtimeSeconds) <= 0.10 * runtimeSeconds, "trace pull \(pull) s, containerd's PullImage \(runtimeSeconds) s")
        }

        /// Duration of the last PullImage of `image` in containerd's log.
        func containerdPullSeconds(_ image: String) -> Double? {
            guard let log = try? String(contentsOfFile: "\(env.directory)/containerd/containerd.log", encoding: .utf8) else { return nil }
            var begin: Int64?, end: Int64?
            for line in log.split(separator: "\n") {
                guard let timeRange = line.range(of: "time=\""), let close = line[timeRange.upperBound...].firstIndex(of: "\"") else { continue }
                let time = Timestamp.parseRFC3339(String(line[timeRange.upperBound..<close]))
                if line.contains("msg=\"PullImage \\\"\(image)\\\"\"") { begin = time; end = nil }
                if line.contains("msg=\"PullImage \\\"\(image)\\\" returns image reference") { end = time }
            }
            guard let begin, let end, end > begin else { return nil }
            return Double(end - begin) / 1e9
        }

        @Test func highlyCompressibleLayerMakesDecompressTheLargestPartOfPull() throws {
            let (_, phases) = try trace(["--image", env.image("large-layer:compressible"), "--cold"])
            let download = seconds(phases, "download"), decompress = seconds(phases, "decompress")
            let other = seconds(phases, "pull_other")
            #expect(decompress > download && decompress > other,
                    "download \(download) s, decompress \(decompress) s, pull_other \(other) s")
        }

        @Test func registryBehindAThrottlingProxyMakesDownloadTheLargestPartOfPull() async throws {
            let registryPort = try #require(UInt16(env.registry.split(separator: ":").last ?? ""))
            // 64 MiB at 24 MiB/s: close to 3 s of download, against well under a second of gunzip.
            let proxy = try ThrottlingProxy(upstreamPort: registryPort, bytesPerSecond: 24 * 1024 * 1024)
            defer { proxy.stop() }
            // containerd speaks plain HTTP to 127.0.0.1 registries it has no configuration for.
            let image = "127.0.0.1:\(proxy.port)/podstart-test/large-layer:latest"
            // --cold removes the image by the name it is given; the same content pulled under the
            // registry's own name must go too, or the pull finds every blob present.
            let direct = env.image("large-layer:latest")
            try await CRIClient.withClient(endpoint: env.endpoint) { client in
                if let present = try await client.imageStatus(direct) { try await client.removeImage(present.id) }
            }
            let (_, phases) = try trace(["--image", image, "--cold"])
            let download = seconds(phases, "download"), decompress = seconds(phases, "decompress")
            let other = seconds(phases, "pull_other")
            #expect(download > decompress && download > other,
                    "download \(download) s, decompress \(decompress) s, pull_other \(other) s")
            #expect(seconds(phases, "pull") > 2, "the proxy did not slow the pull down")
        }

        /// On a terminal a cold pull shows the bytes downloaded and unpacked as the kernel sees the
        /// runtime write them; with `--output json` on the same terminal, nothing.
        @Test func aColdPullOnATerminalShowsItsBytesArrivingAndUnpacking() async throws {
            let registryPort = try #require(UInt16(env.registry.split(separator: ":").last ?? ""))
            // 64 MiB at 24 MiB/s: several progress reports (four a second) while it arrives
            let proxy = try ThrottlingProxy(upstreamPort: registryPort, bytesPerSecond: 24 * 1024 * 1024)
            defer { proxy.stop() }
            let image = "127.0.0.1:\(proxy.port)/podstart-test/large-layer:latest"
            func onATerminal(_ output: String) async throws -> String {
                try await CRIClient.withClient(endpoint: env.endpoint) { client in
                    if let present = try await client.imageStatus(env.image("large-layer:latest")) { try await client.removeImage(present.id) }
                }
                let command = [binary, "trace", "--cri-endpoint", env.endpoint.description, "--image", image, "--cold", "--output", output]
                    .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
                // script(1) runs the command with a pseudo-terminal as its standard output and error
                let (status, text) = LocalEnvironment.run(["script", "-qec", command, "/dev/null"])
                #expect(status == 0, "\(text.suffix(2000))")
                return text
            }
            let table = try await onATerminal("table")
            let reports = table.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).compactMap { line -> (UInt64, UInt64)? in
                guard let at = line.range(of: "pulling: ") else { return nil }
                let parts = line[at.upperBound...].components(separatedBy: ", ")
                guard parts.count == 2, let d = Self.bytes(parts[0], "downloaded"), let u = Self.bytes(parts[1], "unpacked") else { return nil }
                return (d, u)
            }
            #expect(reports.count >= 2, "fewer than two progress reports in a 3 s pull: \(table.prefix(3000))")
            for (a, b) in zip(reports, reports.dropFirst()) { #expect(b.0 >= a.0 && b.1 >= a.1, "progress went back: \(a) then \(b)") }
            let last = try #require(reports.last)
            #expect(last.0 >= 48 << 20, "64 MiB layer, \(last.0) bytes downloaded reported")
            #expect(reports.contains { $0.1 > 0 }, "no unpacked bytes reported")
            #expect(table.contains("\u{1B}[2K"), "the progress line is not erased before the table")
            #expect(table.contains("download"), "no table after the progress: \(table.suffix(2000))")
            let json = try await onATerminal("json")
            #expect(!json.contains("pulling: "), "progress shown with --output json")
            #expect(json.contains("\"schemaVersion\""))
        }

        /// `61.0 MiB downloaded` → bytes (to the precision shown).
        static func bytes(_ text: String, _ what: String) -> UInt64? {
            let words = text.split(separator: " ")
            guard words.count == 3, words[2] == what, let value = Double(words[0]) else { return nil }
            let unit: Double = switch words[1] { case "B": 1; case "KiB": 1024; case "MiB": 1_048_576; case "GiB": 1_073_741_824; default: 0 }
            return unit == 0 ? nil : UInt64(value * unit)
        }

        @Test func accessesListExactlyTheFilesTheEntrypointReadWithTheirLayers() throws {
            let (object, _) = try trace(["--image", env.image("reader:latest"), "--ready-file", "/tmp/ready"])
            let container = try #require((object["containers"] as? [[String: Any]])?.first)
            let accesses = container["accesses"] as? [[String: Any]] ?? []
            // From the container's first exec on (runc's own setup reads come before it).
            let after = accesses.filter { ($0["firstAccessMs"] as? Double ?? -1) >= 0 }
            let paths = after.compactMap { $0["path"] as? String }
            #expect(paths == ["/reader", "/data/one.txt", "/data/two.bin", "/data/three.txt", "/tmp/ready"],
                    "accesses after the first exec: \(paths)")
            let (status, output) = LocalEnvironment.run(["skopeo", "inspect", "--tls-verify=false",
                                                         "docker://\(env.image("reader:latest"))"])
            #expect(status == 0)
            let layers = try #require((try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["Layers"] as? [String])
            let layerOf = Dictionary(after.map { ($0["path"] as? String ?? "", $0["layerDigest"] as? String) }, uniquingKeysWith: { a, _ in a })
            #expect(layerOf["/reader"] == layers[0])
            #expect(layerOf["/data/one.txt"] == layers[1])
            #expect(layerOf["/data/two.bin"] == layers[1])
            #expect(layerOf["/data/three.txt"] == layers[2])
            #expect(layerOf["/tmp/ready"] == .some(nil), "a file the container created has no image layer")
            let bytes = Dictionary(after.map { ($0["path"] as? String ?? "", ($0["bytes"] as? NSNumber)?.int64Value ?? -1) },
                                   uniquingKeysWith: { a, _ in a })
            #expect(bytes["/data/one.txt"] == 1000)
            #expect(bytes["/data/two.bin"] == 8192, "only the first 8192 bytes of the 64 KiB file were read")
            #expect(bytes["/data/three.txt"] == 3000)
            #expect(bytes["/data/unread.txt"] == nil, "a file the entrypoint never opened is not an access")
        }

        @Test func containerExitingBeforeReadyFailsWithItsExitCodeAndLeavesNothing() throws {
            let (status, output) = LocalEnvironment.run(
                [binary, "trace", "--cri-endpoint", env.endpoint.description, "--image", env.image("small-files:latest"),
                 "--ready-file", "/tmp/ready", "--cmd", "/bin/busybox", "sh", "-c", "exit 5"])
            #expect(status != 0)
            #expect(output.contains("exited with code 5"), "output: \(output)")
        }
    }
}
