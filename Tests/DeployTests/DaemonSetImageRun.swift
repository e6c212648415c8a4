import ContainerRuntime
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// An agent image in the local registry, checked as a node runs it — whichever builder made it
/// (scripts/build-agent-image.sh in AgentImageTests, deploy/Containerfile with buildah in
/// ContainerfileImageTests):
/// - its OCI config, as the registry serves it, is deploy/Containerfile's (entrypoint, command,
///   port, user, volume);
/// - pulled and started through CRI as deploy/base/daemonset.yaml runs it (host network, host PID,
///   read-only root file system, the runtime socket and a state directory mounted), it loads its
///   eBPF programs with exactly the capabilities the DaemonSet adds (read from the manifest; every
///   other one dropped) from the host's BTF and tracefs mounted as the DaemonSet mounts them:
///   proof that the set is enough, not only a list;
/// - scraped on 127.0.0.1 while a real pod starts, it reports that start with the files the
///   container read, and keeps its state in the mounted host directory.
enum DaemonSetImageRun {
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

    /// The image's OCI config blob as the registry serves it (`skopeo inspect --config`), after
    /// checking what deploy/Containerfile declares; returned for a builder's own checks.
    @discardableResult
    static func expectContainerfileConfig(_ reference: String) throws -> JSON {
        let skopeo = try #require(Command.which("skopeo"), "skopeo is not installed: run scripts/install-deps.sh")
        let (status, output) = try Command.run(skopeo, ["inspect", "--config", "--tls-verify=false", "docker://\(reference)"])
        try #require(status == 0, "skopeo inspect --config docker://\(reference) failed (exit \(status)): \(output)")
        // the output is stdout and stderr together: the JSON starts at its first brace
        let start = try #require(output.firstIndex(of: "{"), "no JSON from skopeo inspect --config: \(output)")
        let image = try JSON.parse(String(output[start...]))
        #expect(image["os"]?.stringValue == "linux")
        #expect(image["architecture"]?.stringValue == "amd64")
        let config = try #require(image["config"], "no config in the image's config blob: \(output.prefix(3000))")
        #expect(config["Entrypoint"]?.arrayValue?.compactMap(\.stringValue) == ["/usr/local/bin/podstart"])
        #expect(config["Cmd"]?.arrayValue?.compactMap(\.stringValue) == ["agent"])
        #expect(config["User"]?.stringValue == "0:0")
        #expect(config["ExposedPorts"]?.objectValue?.map(\.0) == ["9464/tcp"])
        #expect(config["Volumes"]?.objectValue?.map(\.0) == ["/var/lib/podstart"])
        #expect(config["Labels"]?["org.opencontainers.image.title"]?.stringValue == "podstart agent")
        #expect(config["Labels"]?["org.opencontainers.image.source"]?.stringValue == "deploy/Containerfile")
        return image
    }

    /// Pulls and starts `reference` through CRI as the DaemonSet does, then checks the agent in it
    /// while a real pod starts (see the type's documentation).
    static func startAndCheck(_ reference: String, env: LocalEnvironment) async throws {
        let capabilities = try daemonSetCapabilities()
        #expect(capabilities == ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"])

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
