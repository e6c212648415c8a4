/// Container ids from cgroup paths, as the three common layouts spell them:
/// cgroupfs `/kubepods/burstable/pod<uid>/<id>` (and podstart's `/podstart/pod<uid>/<id>`),
/// systemd `…/cri-containerd-<id>.scope`, `docker-<id>.scope`, `crio-<id>.scope`.
public enum CgroupPaths {
    /// The container id in one cgroup path, or nil if its last component is not one.
    public static func containerID(inPath path: Substring) -> String? {
        guard var last = path.split(separator: "/").last else { return nil }
        if last.hasSuffix(".scope") { last = last.dropLast(".scope".count) }
        for prefix in ["cri-containerd-", "docker-", "crio-", "libpod-"] where last.hasPrefix(prefix) {
            last = last.dropFirst(prefix.count)
        }
        guard last.count == 64, last.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return String(last)
    }

    /// The container id of a process from its `/proc/PID/cgroup` text (v1 `N:controllers:/path`
    /// lines and the v2 `0::/path` line); the first line that names one wins.
    public static func containerID(procCgroup text: String) -> String? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if let id = containerID(inPath: fields[2]) { return id }
        }
        return nil
    }

    /// The path of the unified (v2) hierarchy line (`0::/path`), which the kernel probes' cgroup
    /// id (bpf_get_current_cgroup_id) refers to.
    public static func unifiedPath(procCgroup text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }
}
