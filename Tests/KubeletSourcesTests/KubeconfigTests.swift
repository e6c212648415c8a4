import Foundation
import HTTPTransport
import PodstartTestSupport
import Testing
@testable import KubeletSources

/// `--kubeconfig` (current context → server, CA, skip-verify, token / client certificate, inline
/// `-data` or files relative to the kubeconfig) and the in-cluster configuration (service
/// account directory, `KUBERNETES_SERVICE_HOST/PORT`), and both reaching a TLS server.
@Suite(.serialized) struct KubeconfigTests {
    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-kubeconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static let twoContexts = """
        apiVersion: v1
        kind: Config
        current-context: node
        clusters:
          - name: other
            cluster: {server: "https://10.0.0.9:6443", insecure-skip-tls-verify: true}
          - name: local
            cluster:
              server: https://127.0.0.1:6443
              certificate-authority: pki/ca.crt
        contexts:
          - name: admin
            context: {cluster: other, user: admin}
          - name: node
            context: {cluster: local, user: agent}
        users:
          - name: admin
            user: {token: admin-token}
          - name: agent
            user:
              client-certificate: /etc/podstart/client.crt
              client-key: client.key
              tokenFile: token
        """

    @Test func theCurrentContextNamesServerCAAndCredentialsWithPathsRelativeToTheFile() throws {
        let k = try Kubeconfig.parse(yaml: Self.twoContexts, baseDirectory: "/etc/kube")
        #expect(k.context == "node" && k.server == "https://127.0.0.1:6443")
        #expect(k.certificateAuthority == .file("/etc/kube/pki/ca.crt") && !k.insecureSkipTLSVerify)
        #expect(k.clientCertificate == .file("/etc/podstart/client.crt") && k.clientKey == .file("/etc/kube/client.key"))
        #expect(k.tokenFile == "/etc/kube/token" && k.token == nil)
    }

    @Test func badKubeconfigsAreErrorsThatSayWhy() {
        let cases: [(String, String)] = [
            ("just text", "not a mapping"),
            ("current-context: x\ncontexts: []", "no contexts entry named \"x\""),
            ("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: [{name: k, cluster: {}}]", "has no server"),
            ("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: [{name: k, cluster: {server: 'https://a', certificate-authority-data: '***'}}]",
             "certificate-authority-data is not base64"),
            // a mapping key that is a list: Yams' own loader traps on it (found by fuzzing the config file)
            ("?\n-", "a mapping key is a list or mapping"),
            ("current-context: c\n? [a, b]\n: x", "a mapping key is a list or mapping"),
        ]
        for (yaml, reason) in cases {
            #expect {
                _ = try Kubeconfig.parse(yaml: yaml, baseDirectory: "/")
            } throws: { e in "\(e)".contains(reason) }
        }
        let plugin = "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: {exec: {command: aws}}}]"
        #expect(throws: KubeconfigError.unsupportedCredential(user: "u")) { try Kubeconfig.parse(yaml: plugin, baseDirectory: "/") }
        #expect(throws: KubeconfigError.self) { try Kubeconfig.load(path: "/nonexistent/kubeconfig") }
    }

    /// A kubeconfig with the CA and a token inline, as `kind` or `kubeadm` write them, reaches a
    /// TLS server that checks the token; the inline CA is written owner-only.
    @Test func inlineDataReachesTheServer() async throws {
        let pki = try TestPKI.make()
        let server = try await TestHTTPSServer(pki: pki) { uri, auth in
            auth == "Bearer inline-token" ? TestRoute(chunks: [#"{"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]}"#])
                : TestRoute(status: .unauthorized, chunks: ["no"])
        }
        defer { Task { try? await server.shutdown() } }
        let ca = try Data(contentsOf: URL(fileURLWithPath: pki.caFile)).base64EncodedString()
        let yaml = """
            current-context: kind
            clusters: [{name: kind, cluster: {server: "https://127.0.0.1:\(server.port)", certificate-authority-data: \(ca)}}]
            contexts: [{name: kind, context: {cluster: kind, user: kind}}]
            users: [{name: kind, user: {token: inline-token}}]
            """
        let dir = try Self.directory()
        try yaml.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let endpoint = try Kubeconfig.load(path: dir + "/config").endpoint(materializeIn: dir + "/credentials")
        let written = try #require(endpoint.tls.caFile)
        let mode = try FileManager.default.attributesOfItem(atPath: written)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let list = try await APIServerPodSource(endpoint, nodeName: "vm").listPods()
        #expect(list.metadata?.resourceVersion == "7")
    }

    @Test func inClusterReadsTheServiceAccountAndTheServiceEnvironment() throws {
        let dir = try Self.directory()
        #expect(throws: KubeHTTPError.self) { _ = try KubeEndpoint.inCluster(directory: dir, environment: [:]) }
        try "sa-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/ca.crt", atomically: true, encoding: .utf8)
        // an empty CA bundle: an error naming the file, when the client is made (before any request)
        let empty = try KubeEndpoint.inCluster(directory: dir, environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"])
        #expect { _ = try HTTPTransport(empty) } throws: { e in "\(e)".contains(dir + "/ca.crt") }
        let ep = try KubeEndpoint.inCluster(directory: dir, environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"])
        #expect(ep.url("/api") == "https://[fd00::1]:6443/api")
        #expect(ep.bearerToken == .file(dir + "/token") && ep.tls.caFile == dir + "/ca.crt")
        try FileManager.default.removeItem(atPath: dir + "/token")
        #expect(throws: HTTPTransportError.self) {
            _ = try KubeEndpoint.inCluster(directory: dir, environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"])
        }
    }
}
