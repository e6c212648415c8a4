import Foundation

/// Whether a kubelet runs beside podstart: a process named `kubelet` in podstart's own pid
/// namespace (the node's, for the agent's DaemonSet with `hostPID` and for a shell on the node).
///
/// `podstart trace --image` starts a pod through CRI that the kubelet did not create, and a
/// kubelet removes such pods as orphans (0.61 s after the sandbox appeared on the real node of
/// issue #15): on such a node, trace pods the kubelet starts (`--pod`).
///
/// Processes of other pid namespaces (a kubelet inside a container or a test's namespace, seen
/// from the host) are not this node's kubelet to podstart: its pods would be another node's.
public struct KubeletPresence: Sendable, Equatable {
    public var pid: Int32
    /// The process's command line, as /proc shows it (for the message).
    public var commandLine: String

    /// The first kubelet process found under `procRoot`, nil when none runs.
    public static func detect(procRoot: String = "/proc") -> KubeletPresence? {
        let ownNamespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(procRoot)/self/ns/pid")
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return nil }
        for entry in entries {
            guard let pid = Int32(entry), pid > 0 else { continue }
            let dir = "\(procRoot)/\(entry)"
            guard let comm = try? String(contentsOfFile: "\(dir)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .newlines) == "kubelet" else { continue }
            // /proc of a pid namespace shows only that namespace and its children: a child's
            // process has another pid namespace link than ours
            if let ownNamespace, let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/ns/pid"),
               theirs != ownNamespace { continue }
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: "\(dir)/cmdline"))) ?? Data()
            let commandLine = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            return KubeletPresence(pid: pid, commandLine: commandLine.isEmpty ? "kubelet" : commandLine)
        }
        return nil
    }
}
