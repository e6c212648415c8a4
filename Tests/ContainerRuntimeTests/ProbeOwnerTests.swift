import ContainerRuntime
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

extension ContainerRuntimeIntegration {
    /// `podstart probe` names each event's namespace, pod and container, and keeps only those of
    /// the named pod: two real pods started through CRI while the built binary probes.
    @Suite struct ProbeOwnerTests {
        let env: LocalEnvironment
        let binary: String

        init() throws {
            env = try LocalEnvironment.shared()
            binary = try LocalEnvironment.podstartBinary()
        }

        @Test func probeNamesPodAndContainerOfEachEventAndKeepsOnlyThePodAsked() async throws {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-probe-\(UUID().uuidString)").path
            _ = FileManager.default.createFile(atPath: out + ".out", contents: nil)
            _ = FileManager.default.createFile(atPath: out + ".err", contents: nil)
            defer { try? FileManager.default.removeItem(atPath: out + ".out"); try? FileManager.default.removeItem(atPath: out + ".err") }
            // the pods' names are known before they start: PodStartOptions.newPod is random, so pick them here
            let wanted = PodStartOptions.newPod(name: "wanted"), other = PodStartOptions.newPod(name: "other")
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: binary)
            probe.arguments = ["probe", "--output", "json", "--kinds", "exec,open", "--pod", wanted.name,
                               "--cri-endpoint", env.endpoint.description]
            probe.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out + ".out"))
            probe.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: out + ".err"))
            try probe.run()
            defer { if probe.isRunning { probe.terminate() } }
            let deadline = ContinuousClock.now + .seconds(60)  // a hung probe, not a speed check
            while !((try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? "").contains("podstart: probing") {
                guard probe.isRunning, ContinuousClock.now < deadline else {
                    throw LocalEnvironment.StartFailure(description: "probe never attached: \((try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? "")")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            for pod in [wanted, other] {
                var options = env.options(image: "reader:latest")
                options.pod = pod
                options.containerName = "reader"
                _ = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { _ in try await Task.sleep(for: .milliseconds(500)) })
            }
            probe.interrupt()
            while probe.isRunning {
                guard ContinuousClock.now < deadline + .seconds(30) else { throw LocalEnvironment.StartFailure(description: "probe did not stop on SIGINT") }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(probe.terminationStatus == 0)
            let lines = try String(contentsOfFile: out + ".out", encoding: .utf8).split(separator: "\n")
            let events = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(events.count == lines.count, "every line is a JSON event")
            #expect(!events.isEmpty, "no event of the wanted pod")
            for event in events {
                #expect(event["pod"] as? String == wanted.name, "an event of another pod: \(event)")
                #expect(event["namespace"] as? String == wanted.namespace)
                #expect(["reader", "POD"].contains(event["container"] as? String ?? ""), "the pod's container or its sandbox: \(event)")
            }
            #expect(events.contains { $0["container"] as? String == "reader" })
            #expect(events.contains { $0["container"] as? String == "POD" }, "the sandbox's pause process")
            let text = lines.joined(separator: "\n")
            #expect(text.contains("/reader"), "the container's exec of /reader")
            #expect(text.contains("/data/one.txt"), "the container's open of /data/one.txt")
            #expect(!text.contains(other.name))
        }
    }
}
