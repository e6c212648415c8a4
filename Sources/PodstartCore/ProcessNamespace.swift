#if canImport(Glibc)
import Glibc
#endif

/// A process's namespaces as the kernel probes key them: the inode numbers of /proc/PID/ns/*.
/// Here, below both the probes and the runtime's resolver, so the two read them one way.
public enum ProcessNamespace {
    /// Inode of `/proc/PID/ns/mnt` (the probes' mount namespace key); nil when the process is
    /// gone or not readable.
    public static func mount(pid: Int32) -> UInt64? { mount(procEntry: "\(pid)") }

    /// The same for a /proc entry name (`self`, `1`, a pid).
    public static func mount(procEntry: String) -> UInt64? {
        var st = stat()
        return stat("/proc/\(procEntry)/ns/mnt", &st) == 0 ? UInt64(st.st_ino) : nil
    }

    /// The host's mount namespace: PID 1's (the agent runs with hostPID in a DaemonSet). Where
    /// PID 1's links cannot be read (a VM init that denies ptrace access), podstart's own mount
    /// namespace stands in: it then runs on the host, so the two are the same.
    public static func hostMount() -> UInt64? { mount(procEntry: "1") ?? mount(procEntry: "self") }
}
