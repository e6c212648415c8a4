import ContainerRuntime
import Foundation
import Testing

/// The real containerd + registry of scripts/localenv.sh, started once per test process in a
/// directory of its own and stopped (`localenv.sh down`) when the process exits. Tests that need it
/// fail — never skip — with the reason when it cannot start (not root, packages missing, …).
public struct LocalEnvironment: Sendable {
    public var endpoint: CRIEndpoint
    /// `127.0.0.1:PORT/podstart-test`
    public var imagePrefix: String
    public var registry: String
    public var directory: String
    public var logRoot: String

    public func image(_ name: String) -> String { "\(imagePrefix)/\(name)" }

    public struct StartFailure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static let repositoryRoot: String = {
        // …/Tests/Support/LocalEnvironment.swift → repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    public static let directory = ProcessInfo.processInfo.environment["PODSTART_TEST_LOCALENV_DIR"]
        ?? "/var/lib/podstart-localenv-test"

    private static let started: Result<LocalEnvironment, StartFailure> = start()

    /// The environment, started on first use.
    public static func shared() throws -> LocalEnvironment {
        try started.get()
    }

    private static func start() -> Result<LocalEnvironment, StartFailure> {
        guard getuid() == 0 else {
            return .failure(StartFailure(description: "integration tests need root (containerd, runc, CNI); run them as root"))
        }
        let script = "\(repositoryRoot)/scripts/localenv.sh"
        let (status, output) = run(["bash", script, "up"])
        guard status == 0 else {
            return .failure(StartFailure(description: "scripts/localenv.sh up failed (exit \(status)):\n\(output)"))
        }
        atexit {
            _ = LocalEnvironment.run(["bash", "\(LocalEnvironment.repositoryRoot)/scripts/localenv.sh", "down"])
        }
        var env: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { env[String(pair[0])] = String(pair[1]) }
        }
        guard let endpointText = env["PODSTART_CRI_ENDPOINT"], let endpoint = try? CRIEndpoint(parsing: endpointText),
              let registry = env["PODSTART_REGISTRY"], let prefix = env["PODSTART_TEST_IMAGES"],
              let logRoot = env["PODSTART_POD_LOG_DIR"] else {
            return .failure(StartFailure(description: "scripts/localenv.sh up printed no environment:\n\(output)"))
        }
        return .success(LocalEnvironment(endpoint: endpoint, imagePrefix: prefix, registry: registry,
                                         directory: directory, logRoot: logRoot))
    }

    /// Runs a command with PODSTART_LOCALENV_DIR set to the tests' directory; returns exit status
    /// and stdout+stderr. posix_spawn + waitpid rather than Foundation.Process, which can miss the
    /// child's exit when first used inside a lazy static initializer.
    @discardableResult
    public static func run(_ arguments: [String]) -> (Int32, String) {
        let outputPath = "/tmp/podstart-localenv-\(getpid())-\(UInt64.random(in: 0 ... .max)).out"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var environment = ProcessInfo.processInfo.environment
        environment["PODSTART_LOCALENV_DIR"] = directory
        let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, envp)
        guard rc == 0 else { return (-1, "posix_spawn: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exitCode = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exitCode, output)
    }

    /// The `podstart` executable that `swift build --build-tests` put next to the test bundle.
    public static func podstartBinary() throws -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        let binary = "\(dir)/podstart"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw StartFailure(description: "\(binary) not built: run swift build --build-tests first")
        }
        return binary
    }

    public func options(image name: String) -> PodStartOptions {
        var options = PodStartOptions(image: image(name), pod: PodStartOptions.newPod(name: "test"))
        options.logRoot = logRoot
        options.timeout = .seconds(120)
        return options
    }

    /// containerd down (SIGTERM, as a node's containerd restart begins: every connection to it
    /// closes) and its socket removed while `body` runs, then up again through
    /// `scripts/localenv.sh up`, whatever `body` did. Running pods keep running (their shims stay).
    public func withContainerdStopped<T>(_ body: () async throws -> T) async throws -> T {
        let pidFile = "\(directory)/containerd/containerd.pid"
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              kill(pid, 0) == 0 else {
            throw StartFailure(description: "no running containerd in \(pidFile)")
        }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(20)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        unlink(endpoint.socketPath)  // the CRI socket is gone, not merely refusing
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        let (status, output) = Self.run(["bash", "\(Self.repositoryRoot)/scripts/localenv.sh", "up"])
        guard status == 0 else { throw StartFailure(description: "scripts/localenv.sh up after the stop failed (exit \(status)):\n\(output)") }
        return try result.get()
    }
}

extension LocalEnvironment {
    private static let stargzStarted: Result<CRIEndpoint, StartFailure> = {
        do { _ = try shared() } catch let failure as StartFailure { return .failure(failure) } catch {
            return .failure(StartFailure(description: "\(error)"))
        }
        let (status, output) = run(["bash", "\(repositoryRoot)/scripts/localenv.sh", "stargz-up"])
        guard status == 0 else {
            return .failure(StartFailure(description: "scripts/localenv.sh stargz-up failed (exit \(status)):\n\(output)"))
        }
        let prefix = "export PODSTART_STARGZ_CRI_ENDPOINT="
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
              let endpoint = try? CRIEndpoint(parsing: String(line.dropFirst(prefix.count))) else {
            return .failure(StartFailure(description: "scripts/localenv.sh stargz-up printed no stargz endpoint:\n\(output)"))
        }
        return .success(endpoint)
    }()

    /// The CRI endpoint of the environment's second containerd, whose CRI pulls lazily through the
    /// stargz snapshotter (`scripts/localenv.sh stargz-up`), started on first use. The eStargz test
    /// images are then in the registry as `NAME:estargz`.
    public func stargzEndpoint() throws -> CRIEndpoint {
        try Self.stargzStarted.get()
    }
}
