#if canImport(Glibc)
import Glibc
#endif

/// A process's namespaces as the kernel probes key them: the inode numbers of /proc/PID/ns/*.
public enum ProcessNamespace {
    /// Inode of `/proc/PID/ns/mnt` (the probes' mount namespace key); nil when the process is
    /// gone or not readable.
    public static func mount(pid: Int32) -> UInt64? { mount(procEntry: "\(pid)") }

    /// The same for a /proc entry name (`self`, `1`, a pid).
    public static func mount(procEntry: String) -> UInt64? {
        var st = stat()
        return stat("/proc/\(procEntry)/ns/mnt", &st) == 0 ? UInt64(st.st_ino) : nil
    }
}
