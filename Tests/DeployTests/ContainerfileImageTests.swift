import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// The agent's image as users build it: deploy/Containerfile built by buildah (Debian's 1.28,
/// through scripts/build-agent-image-buildah.sh), pushed to the local registry, then pulled and
/// started through CRI as the DaemonSet runs it and scraped while a real pod starts
/// (DaemonSetImageRun says what holds, the same as for AgentImageTests' umoci-built image).
///
/// The binary is the one the test build made, in the Containerfile's `prebuilt` stage: its default
/// `build` stage is a release build inside (15-25 min on 2 cores, more than the whole CI run may
/// spend on it). Every other step runs for real: the journalctl and runtime stages install Debian's
/// packages from Debian's mirror, and their `RUN journalctl --version` and `RUN podstart --version`
/// prove that the runtime stage's packages hold every library both load. No registry but the local
/// one is reachable, so the base image debian:12-slim is made here (debootstrap from Debian's
/// mirror, cached in the local environment's directory: a run pays for it once).
@Suite(.serialized) struct ContainerfileImageTests {
    let env: LocalEnvironment
    let binary: String

    init() throws {
        env = try LocalEnvironment.shared()
        binary = try LocalEnvironment.podstartBinary()
    }

    @Test func containerfileBuiltByBuildahStartsThroughCRIWithTheDaemonSetsCapabilitiesAndLoadsTheProbes() async throws {
        try #require(Command.which("buildah") != nil, "buildah is not installed: run scripts/install-deps.sh (Debian package buildah)")
        let (versionStatus, versionOutput) = try Command.run(binary, ["--version"])
        try #require(versionStatus == 0, "\(binary) --version failed: \(versionOutput)")
        let version = versionOutput.trimmingCharacters(in: .whitespacesAndNewlines)

        let tag = "podstart-agent:buildah-test-\(UInt32.random(in: 0 ... .max))"
        let (status, output) = try Command.run("/bin/bash", [
            DeployFiles.buildahImageScript, "--binary", binary, "--tag", tag, "--local-base-images",
            "--state", "\(env.directory)/buildah", "--push", "\(env.registry)/podstart-test",
        ])
        try #require(status == 0, "build-agent-image-buildah.sh failed (exit \(status)):\n\(output.suffix(12000))")
        let reference = try #require(output.split(separator: "\n").last.map(String.init))
        #expect(reference == "\(env.registry)/podstart-test/\(tag)")
        // the binary came from the prebuilt stage, not from a release build inside ...
        #expect(output.contains("FROM scratch AS prebuilt"), "\(output.suffix(12000))")
        #expect(!output.contains("swift build -c release"), "the release build stage ran: \(output.suffix(12000))")
        // ... and the Containerfile's own checks ran on the runtime stage
        #expect(output.contains("RUN journalctl --version"), "\(output.suffix(12000))")
        #expect(output.contains("RUN podstart --version"), "\(output.suffix(12000))")

        let image = try DaemonSetImageRun.expectContainerfileConfig(reference)
        #expect(image["config"]?["Labels"]?["org.opencontainers.image.version"]?.stringValue == version)
        try await DaemonSetImageRun.startAndCheck(reference, env: env)
    }
}
