import ContainerRuntime
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

extension ContainerRuntimeIntegration {
    /// `podstart trace --image` beside a kubelet: a real process named `kubelet` (a copy of
    /// coreutils' sleep, so its comm is "kubelet") in a pid namespace the test makes, with
    /// `podstart` in the same namespace. The host's /proc is kept, so podstart and the runtime still
    /// see every pid; helpers outside that namespace are not told a kubelet runs beside them.
    @Suite struct KubeletNodeTests {
        let env: LocalEnvironment
        let binary: String

        init() throws {
            env = try LocalEnvironment.shared()
            binary = try LocalEnvironment.podstartBinary()
        }

        /// Runs `podstart arguments…` in a new pid namespace beside a process named kubelet.
        func besideAKubelet(_ arguments: [String]) throws -> (Int32, String) {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-kubelet-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: dir + "/kubelet")
            let quoted = ([binary] + arguments).map { "'\($0)'" }.joined(separator: " ")
            // pid 1 of the namespace is this shell: when it exits, the kubelet goes with it
            return LocalEnvironment.run(["unshare", "--pid", "--fork", "sh", "-c",
                                         "\(dir)/kubelet 300 & sleep 0.2; \(quoted); rc=$?; kill $!; exit $rc"])
        }

        @Test func traceImageRefusesBesideAKubeletAndNamesPod() throws {
            let (code, output) = try besideAKubelet(["trace", "--image", env.image("reader:latest"), "--cri-endpoint", env.endpoint.description])
            #expect(code != 0)
            #expect(output.contains("a kubelet runs on this node (pid "), "output: \(output)")
            #expect(output.contains("kubelet 300"), "the kubelet's command line is named: \(output)")
            #expect(output.contains("--pod NAMESPACE/NAME") && output.contains("--force"), "output: \(output)")
            // nothing was started: no sandbox of podstart's in the runtime from this run
            #expect(!output.contains("schemaVersion"))
        }

        @Test func traceImageWithForceStartsThePodAnyway() throws {
            let (code, output) = try besideAKubelet(["trace", "--image", env.image("reader:latest"), "--force", "--no-kernel",
                                                     "--cri-endpoint", env.endpoint.description, "--output", "json"])
            #expect(code == 0, "output: \(output)")
            #expect(output.contains("\"schemaVersion\""))
        }

        @Test func aPidNamespaceWithoutAKubeletIsNotRefused() throws {
            // a fresh pid namespace with its own /proc and no kubelet in it: the start goes on (to
            // the CRI endpoint, which does not exist here)
            let (code, output) = LocalEnvironment.run(["unshare", "--pid", "--fork", "--mount-proc", binary, "trace", "--image",
                                                       env.image("reader:latest"), "--cri-endpoint", "unix:///nonexistent/podstart.sock"])
            #expect(code != 0)
            #expect(!output.contains("a kubelet runs"), "output: \(output)")
            #expect(output.contains("nonexistent"), "it went on to the runtime: \(output)")
        }
    }
}
