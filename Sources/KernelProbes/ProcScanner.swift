import Foundation

/// Reads what the kernel says about processes from /proc: mount namespace, command, cgroups.
public enum ProcScanner {
    public struct Process: Hashable, Sendable {
        public var pid: UInt32
        public var comm: String
        public var mountNamespace: UInt32?
    }

    /// The inode number of a namespace link such as /proc/PID/ns/mnt ("mnt:[4026531841]").
    public static func namespaceInode(pid: String, kind: String = "mnt", procRoot: String = "/proc") -> UInt32? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(procRoot)/\(pid)/ns/\(kind)"),
              let open = target.firstIndex(of: "["), let close = target.lastIndex(of: "]"), open < close
        else { return nil }
        return UInt32(target[target.index(after: open)..<close])
    }

    /// The host's mount namespace: PID 1's (the agent runs with hostPID in a DaemonSet). Where
    /// PID 1's links cannot be read (a VM init that denies ptrace access), podstart's own mount
    /// namespace stands in: it then runs on the host, so the two are the same.
    public static func hostMountNamespace(procRoot: String = "/proc") -> UInt32? {
        namespaceInode(pid: "1", procRoot: procRoot) ?? namespaceInode(pid: "self", procRoot: procRoot)
    }

    public static func processes(procRoot: String = "/proc") -> [Process] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return [] }
        return entries.compactMap { name in
            guard let pid = UInt32(name) else { return nil }
            let comm = (try? String(contentsOfFile: "\(procRoot)/\(name)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return Process(pid: pid, comm: comm, mountNamespace: namespaceInode(pid: name, procRoot: procRoot))
        }
    }

    /// Commands of the container runtime, as the kernel's exec hook recognises them too.
    public static func isRuntimeCommand(_ comm: String) -> Bool {
        comm.hasPrefix("containerd") || comm == "runc" || comm == "crun" || comm == "conmon"
    }
}
