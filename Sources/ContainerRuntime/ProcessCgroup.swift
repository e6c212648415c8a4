/// A live process's container, from what the kernel says of it in /proc/PID/cgroup.
public enum ProcessCgroup {
    /// The container id some hierarchy line of /proc/PID/cgroup names (cgroupfs and systemd
    /// layouts, v1 and v2), or nil when the process is gone or in no container's cgroup.
    public static func containerID(ofProcess pid: Int32) -> String? {
        ProcFile.read("/proc/\(pid)/cgroup").flatMap { CgroupPaths.containerID(procCgroup: $0) }
    }
}
