import ContainerRuntime
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// The agent's OCI image, assembled by scripts/build-agent-image.sh from the debug binary the test
/// build made (a release build with --static-swift-stdlib takes ~10 min on 2 cores; the script's
/// default is that build), pushed to the local registry, pulled and started through CRI as a
/// node agent runs (host network, host PID, read-only root file system, the runtime socket and a
/// state directory mounted), then scraped on 127.0.0.1 while a real pod starts.
///
/// The agent in the container loads its eBPF programs with exactly the capabilities the DaemonSet
/// adds (read from deploy/base/daemonset.yaml; every other one dropped), from the host's BTF and
/// tracefs mounted as the DaemonSet mounts them: proof that the set is enough, not only a list.
@Suite(.serialized) struct AgentImageTests {
    let env: LocalEnvironment
    let binary: String

    init() throws {
        env = try LocalEnvironment.shared()
        binary = try LocalEnvironment.podstartBinary()
    }

    /// Builds and pushes the image; returns its reference in the local registry.
    func buildAndPush(tag: String) throws -> String {
        let out = try Command.temporaryDirectory("podstart-agent-image")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, output) = try Command.run("/bin/bash", [DeployFiles.imageScript, "--binary", binary, "--tag", tag,
                                                             "--out", "\(out)/oci", "--push", "\(env.registry)/podstart-test"])
        try #require(status == 0, "build-agent-image.sh failed (exit \(status)):\n\(output)")
        let reference = try #require(output.split(separator: "\n").last.map(String.init))
        #expect(reference == "\(env.registry)/podstart-test/\(tag)")
        return reference
    }

    /// The `add:` list of the DaemonSet's capabilities, in order.
    static func daemonSetCapabilities() throws -> [String] {
        let manifest = try String(contentsOfFile: "\(DeployFiles.deploy)/base/daemonset.yaml", encoding: .utf8)
        let lines = manifest.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let add = try #require(lines.firstIndex(of: "add:"), "no capabilities add: list in daemonset.yaml")
        var names: [String] = []
        for line in lines[(add + 1)...] {
            if line.hasPrefix("#") { continue }
            guard line.hasPrefix("- ") else { break }
            names.append(String(line.dropFirst(2)))
        }
        return names
    }

    @Test func imageStartsThroughCRIWithTheDaemonSetsCapabilitiesAndServesMetricsOnTheHostNetwork() async throws {
        let capabilities = try Self.daemonSetCapabilities()
        #expect(capabilities == ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"])
        let tag = "podstart-agent:test-\(UInt32.random(in: 0 ... .max))"
        let reference = try buildAndPush(tag: tag)

        let state = try Command.temporaryDirectory("podstart-image-state")
        let tmp = try Command.temporaryDirectory("podstart-image-tmp")
        defer {
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: tmp)
        }
        let port = try Command.freePort()
        var options = env.options(image: "")
        options.image = reference
        options.pod = PodStartOptions.newPod(name: "agent")
        options.cold = true
        options.hostNetwork = true
        options.hostPID = true
        options.readOnlyRootFilesystem = true
        options.capabilities = .init(add: capabilities, drop: ["ALL"])
        options.args = ["agent", "--listen", "127.0.0.1:\(port)", "--log-format", "json"]
        options.env = [.init(name: "NODE_NAME", value: "image-test-node")]
        options.mounts = [
            .init(containerPath: "/run/containerd/containerd.sock", hostPath: env.endpoint.socketPath, readOnly: true),
            .init(containerPath: "/var/lib/podstart", hostPath: state, readOnly: false),
            .init(containerPath: "/tmp", hostPath: tmp, readOnly: false),
            .init(containerPath: "/sys/kernel/btf", hostPath: "/sys/kernel/btf"),
            .init(containerPath: "/sys/kernel/tracing", hostPath: "/sys/kernel/tracing"),
        ]
        // the DaemonSet mounts the host's tracefs read-only: the host must have it mounted
        if !FileManager.default.fileExists(atPath: "/sys/kernel/tracing/events") {
            let (status, output) = try Command.run("/bin/mount", ["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            try #require(status == 0, "cannot mount tracefs at /sys/kernel/tracing: \(output)")
        }
        let env = env
        // the agent's own output, for a failure to say what the agent saw
        let agentLog = "\(options.logDirectory)/\(options.containerName)/0.log"
        let agentRecord = try await PodStarter(endpoint: env.endpoint).run(options, whileReady: { record in
            let agent = AgentEndpoint(port: port)
            _ = try await agent.waitFor("the agent in the container to answer /readyz on 127.0.0.1:\(port)", timeout: 60) {
                try? await agent.get("/readyz").0 == 200 ? true : nil
            }
            #expect(try await agent.get("/healthz").0 == 200)
            #expect(record.pulled, "the image was not pulled from the registry")

            // a real pod start through the same containerd, seen by the agent in the container
            var pod = env.options(image: "reader:latest")
            pod.readiness = .file(path: "/tmp/ready")
            let started = try await PodStarter(endpoint: env.endpoint).run(pod)
            let trace: JSON
            do {
                trace = try await agent.waitFor("the reader pod's start in /v1/pods", timeout: 30) { () -> JSON? in
                    let (status, body) = try await agent.get("/v1/pods/\(started.pod.uid)")
                    return status == 200 ? try JSON.parse(body) : nil
                }
            } catch {
                let log = (try? String(contentsOfFile: agentLog, encoding: .utf8)) ?? "(no log at \(agentLog))"
                let metrics = (try? await agent.get("/metrics").1) ?? ""
                let sources = metrics.split(separator: "\n").filter { $0.hasPrefix("podstart_source_errors_total") || $0.hasPrefix("podstart_pod_starts_total") || $0.hasPrefix("podstart_cri_connection_closes_total") }
                throw LocalEnvironment.StartFailure(description: "\(error)\nreader pod \(started.pod.uid) ready at \(started.ready.unixNs)\n\(sources.joined(separator: "\n"))\nagent log (last 8000 bytes):\n\(log.suffix(8000))")
            }
            #expect(trace["outcome"]?.stringValue == "ready")
            let metrics = try await agent.get("/metrics").1
            #expect(metrics.contains("podstart_pod_starts_total{outcome=\"ready\"} 1\n"), "\(metrics.prefix(3000))")
            #expect(metrics.contains("podstart_probes_enabled 1\n"), "the probes did not load with \(capabilities): \(metrics.prefix(3000))")
            // the kernel's view reached the trace: the files the reader container read
            let accesses = trace["containers"]?.arrayValue?.first?["accesses"]?.arrayValue ?? []
            #expect(!accesses.isEmpty, "no accesses in the containerised agent's trace: \(trace)")
            #expect(metrics.contains("podstart_build_info{"))
            // the state went to the mounted host directory, not the read-only root file system
            #expect(FileManager.default.fileExists(atPath: "\(state)/podstart.sqlite"))
        })
        #expect(agentRecord.imageDigest != nil)
    }
}

/// An agent's HTTP endpoint on 127.0.0.1 (a process AgentProcess did not start: one in a container).
struct AgentEndpoint: Sendable {
    var port: Int

    func get(_ path: String) async throws -> (Int, String) {
        let curl = try #require(Command.which("curl"), "curl is not installed: run scripts/install-deps.sh")
        let (status, output) = try Command.run(curl, ["-s", "--max-time", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        guard status == 0, let newline = output.lastIndex(of: "\n") else { return (0, output) }
        return (Int(output[output.index(after: newline)...]) ?? 0, String(output[..<newline]))
    }

    func waitFor<T>(_ what: String, timeout: TimeInterval, _ body: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try await body() { return value }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw LocalEnvironment.StartFailure(description: "timed out after \(timeout) s waiting for \(what)")
    }
}
