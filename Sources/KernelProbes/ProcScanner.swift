import Foundation
import PodstartCore

/// The processes running now, as /proc lists them: command and mount namespace (read through
/// PodstartCore's ``ProcessNamespace``, the one reader the runtime's resolver uses too).
public enum ProcScanner {
    public struct Process: Hashable, Sendable {
        public var pid: UInt32
        public var comm: String
        public var mountNamespace: UInt32?
    }

    /// The host's mount namespace, as the probes key it (``ProcessNamespace/hostMount()``).
    public static func hostMountNamespace() -> UInt32? { ProcessNamespace.hostMount().map(probeKey) }

    /// The mount namespace of a /proc entry (`self`, a pid), as the probes key it.
    public static func mountNamespace(procEntry: String) -> UInt32? { ProcessNamespace.mount(procEntry: procEntry).map(probeKey) }

    public static func processes() -> [Process] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name in
            guard let pid = UInt32(name) else { return nil }
            let comm = (try? String(contentsOfFile: "/proc/\(name)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return Process(pid: pid, comm: comm, mountNamespace: mountNamespace(procEntry: name))
        }
    }

    /// Commands of the container runtime, as the kernel's exec hook recognises them too.
    public static func isRuntimeCommand(_ comm: String) -> Bool {
        comm.hasPrefix("containerd") || comm == "runc" || comm == "crun" || comm == "conmon"
    }

    /// The kernel's namespace inode numbers are 32-bit (proc inums); the probes carry them so.
    private static func probeKey(_ inode: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: inode) }
}
