import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one readiness check at a time for a started container.
struct ReadinessProber: Sendable {
    var check: ReadinessCheck
    var client: CRIClient
    var containerID: String
    /// Host pid of the container's first process; the file check looks through its root.
    var containerPid: Int32
    var netnsPath: String?
    var timeout: Duration

    func check() async -> NetnsProbe.Outcome {
        switch check {
        case .running:
            // Reached only once the status loop has seen the container running or exited.
            return .success
        case .file(let path):
            // Through /proc/PID/root: the container's own view of its filesystems, without an exec
            // that would add processes and file accesses to the trace.
            guard containerPid > 0 else { return .failure("container has no running process") }
            var st = stat()
            if stat("/proc/\(containerPid)/root\(path)", &st) == 0 { return .success }
            return .failure("\(path): \(String(cString: strerror(errno)))")
        case .exec(let command):
            do {
                let seconds = max(1, Int64(timeout.seconds.rounded(.up)))
                let result = try await client.execSync(containerID: containerID, command: command,
                                                       timeoutSeconds: seconds)
                if result.exitCode == 0 { return .success }
                let output = String(decoding: (result.stderr.isEmpty ? result.stdout : result.stderr).prefix(200),
                                    as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                return .failure("exit code \(result.exitCode)" + (output.isEmpty ? "" : ": \(output)"))
            } catch {
                return .failure("\(error)")
            }
        case .http(let port, let path):
            guard let netnsPath else { return .failure("the sandbox has no network namespace path") }
            return await NetnsProbe.http(netnsPath: netnsPath, port: port, path: path, timeoutSeconds: timeout.seconds)
        case .tcp(let port):
            guard let netnsPath else { return .failure("the sandbox has no network namespace path") }
            return await NetnsProbe.tcp(netnsPath: netnsPath, port: port, timeoutSeconds: timeout.seconds)
        }
    }
}
