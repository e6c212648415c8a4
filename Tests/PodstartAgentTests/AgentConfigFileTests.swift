import PodstartAgent
import Testing

/// The agent's --config file as flags: what the shipped ConfigMaps hold reads as the same
/// arguments a user would type, and a hostile file is an error naming the file, never a trap.
@Suite struct AgentConfigFileTests {
    @Test func aConfigMapsFlagsBecomeArgumentsInNameOrder() throws {
        let yaml = """
        listen: 0.0.0.0:9464
        cri-endpoint: unix:///run/containerd/containerd.sock
        retention-hours: 168
        kubelet-insecure-skip-tls-verify: true
        record-inputs: false
        kubelet-log: ~
        metrics-image: [registry.local/app:1, "registry.local/db:2"]
        """
        #expect(try AgentConfigFile.arguments(yaml: yaml, path: "c.yaml") == [
            "--cri-endpoint", "unix:///run/containerd/containerd.sock",
            "--kubelet-insecure-skip-tls-verify",
            "--listen", "0.0.0.0:9464",
            "--metrics-image", "registry.local/app:1", "--metrics-image", "registry.local/db:2",
            "--retention-hours", "168",
        ])
        #expect(try AgentConfigFile.arguments(yaml: "", path: "c.yaml") == [])
        #expect(try AgentConfigFile.arguments(yaml: "# only a comment\n", path: "c.yaml") == [])
        // a key given twice: the last one holds
        #expect(try AgentConfigFile.arguments(yaml: "listen: a\nlisten: b", path: "c.yaml") == ["--listen", "b"])
    }

    @Test(arguments: [
        // the first two trapped inside Yams' loader (found by Fuzz/Harnesses/yaml-config.swift)
        ("?\n-", "is not a flag name"),
        ("? [a, b]\n: x", "is not a flag name"),
        ("- listen", "must be a mapping of flag names to values"),
        ("listen: [[a]]", "holds a nested list or mapping"),
        ("listen: {host: a}", "is a mapping; give a plain value"),
        ("config: other.yaml", "'config' is not a flag name"),
        ("log format: json", "'log format' is not a flag name"),
        ("listen: \"a", "is not valid YAML"),
    ])
    func hostileFilesAreErrorsNamingTheFile(yaml: String, reason: String) {
        #expect {
            _ = try AgentConfigFile.arguments(yaml: yaml, path: "/etc/podstart/config.yaml")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("--config /etc/podstart/config.yaml") && text.contains(reason)
        }
    }
}
