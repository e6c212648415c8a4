import ContainerRuntime
import Exporter
import Foundation
import HTTPTransport
import KubeletSources
import PodstartAgent
import Testing

/// Which pod-record sources a configuration turns on, and where their credentials come from: the
/// service account (its directory overridable) in a pod, `--kubeconfig` outside, `--kubelet-url`.
@Suite struct AgentConfigurationTests {
    static func configuration() throws -> AgentConfiguration {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-config-\(UUID().uuidString)").path
        var c = AgentConfiguration(criEndpoint: CRIEndpoint(socketPath: "/run/none.sock"), stateDirectory: dir,
                                   metrics: .init(buildInfo: BuildInfo(version: "test")), listen: ListenAddress(host: "127.0.0.1", port: 0))
        c.environment = [:]
        c.serviceAccountDirectory = dir + "/serviceaccount"
        return c
    }

    @Test func inAPodTheServiceAccountAndServiceEnvironmentReachTheAPIServer() throws {
        var c = try Self.configuration()
        #expect(try c.apiServerEndpoint() == nil && !c.followsPodRecords && !c.sourceNames.contains("apiserver"))
        try FileManager.default.createDirectory(atPath: c.serviceAccountDirectory, withIntermediateDirectories: true)
        try "sa-token".write(toFile: c.serviceAccountDirectory + "/token", atomically: true, encoding: .utf8)
        c.environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let api = try #require(try c.apiServerEndpoint())
        #expect(api.url("/api") == "https://10.96.0.1:443/api" && api.tls.caFile == c.serviceAccountDirectory + "/ca.crt")
        #expect(c.followsPodRecords && c.sourceNames.contains("apiserver"))
        // the kubelet: its URL, the service account's token, skip-verify only when asked
        #expect(try c.kubeletEndpoint() == nil)
        c.kubeletURL = "https://10.1.2.3:10250"
        c.kubeletInsecureSkipTLSVerify = true
        let kubelet = try #require(try c.kubeletEndpoint())
        #expect(kubelet.bearerToken == .file(c.serviceAccountDirectory + "/token") && kubelet.tls.insecureSkipTLSVerify)
        #expect(c.effectiveKubeletMetricsURL == "https://10.1.2.3:10250/metrics")
    }

    @Test func outsideAClusterTheKubeconfigWins() throws {
        var c = try Self.configuration()
        c.environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        try FileManager.default.createDirectory(atPath: c.stateDirectory, withIntermediateDirectories: true)
        let path = c.stateDirectory + "/kubeconfig"
        try """
            current-context: dev
            clusters: [{name: dev, cluster: {server: "https://192.0.2.10:6443", insecure-skip-tls-verify: true}}]
            contexts: [{name: dev, context: {cluster: dev, user: dev}}]
            users: [{name: dev, user: {token: dev-token}}]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        c.kubeconfig = path
        let api = try #require(try c.apiServerEndpoint())
        #expect(api.url("/") == "https://192.0.2.10:6443/" && api.bearerToken == .value("dev-token") && api.tls.insecureSkipTLSVerify)
        c.kubeconfig = c.stateDirectory + "/missing"
        #expect(throws: KubeconfigError.self) { _ = try c.apiServerEndpoint() }
    }

    /// `--journal` follows the units whose log file is not given, and reads the kubelet's lines
    /// (so a start waits for its startup line) only when the kubelet's unit is followed.
    @Test func theJournalFollowsTheUnitsWithoutALogFile() throws {
        var c = try Self.configuration()
        #expect(!c.followsJournal && !c.sourceNames.contains("journal") && !c.readsKubeletLog)
        c.journal = true
        #expect(c.followsJournal && c.sourceNames.contains("journal") && c.readsKubeletLog)
        c.kubeletLog = "/var/log/kubelet.log"
        #expect(c.followsJournal && c.readsKubeletLog, "containerd's unit still followed")
        c.containerdLog = "/var/log/containerd.log"
        #expect(!c.followsJournal && !c.sourceNames.contains("journal"), "both from files: nothing left in the journal")
        c.kubeletLog = nil
        c.journalKubeletUnits = []
        #expect(!c.followsJournal && !c.readsKubeletLog)
    }
}
