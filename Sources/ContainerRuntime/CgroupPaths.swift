/// Container ids from cgroup paths, as the three common layouts spell them:
/// cgroupfs `/kubepods/burstable/pod<uid>/<id>` (and podstart's `/podstart/pod<uid>/<id>`),
/// systemd `…/cri-containerd-<id>.scope`, `docker-<id>.scope`, `crio-<id>.scope`.
public enum CgroupPaths {
    /// The container id in one cgroup path, or nil if its last component is not one.
    public static func containerID(inPath path: Substring) -> String? {
        guard let component = path.split(separator: "/").last else { return nil }
        let last = undecorated(component)
        guard last.count == 64, last.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return String(last)
    }

    /// The container id in one cgroup path when it names one of `knownIDs`, whatever the id's shape
    /// (`ctr run` ids like `web-1` sit at `/<namespace>/web-1`): the last two path components are
    /// compared, deepest first (a runtime may put a leaf such as `init.scope` or `container` under
    /// the container's cgroup), bare and without the systemd/runtime decorations
    /// (`cri-containerd-<id>.scope`). Shallower components are pods, slices and namespaces.
    /// Without a match, the 64-hex rule of ``containerID(inPath:)``.
    public static func containerID(inPath path: Substring, knownIDs: Set<String>) -> String? {
        if !knownIDs.isEmpty {
            for component in path.split(separator: "/").suffix(2).reversed() {
                if knownIDs.contains(String(component)) { return String(component) }
                let bare = undecorated(component)
                if bare != component, knownIDs.contains(String(bare)) { return String(bare) }
            }
        }
        return containerID(inPath: path)
    }

    /// The container id of a process from its `/proc/PID/cgroup` text, matching `knownIDs` as
    /// ``containerID(inPath:knownIDs:)`` does; the unified (`0::`) line is tried first, then the v1
    /// controller lines (a hybrid host has both, a v1-only host only the latter).
    public static func containerID(procCgroup text: String, knownIDs: Set<String>) -> String? {
        let lines = text.split(separator: "\n").compactMap { line -> Substring? in
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            return fields.count == 3 ? fields[2] : nil
        }
        let unifiedFirst = text.split(separator: "\n").filter { $0.hasPrefix("0::") }.map { $0.dropFirst(3) } + lines
        for path in unifiedFirst {
            if let id = containerID(inPath: path, knownIDs: knownIDs) { return id }
        }
        return nil
    }

    /// A path component without `.scope` and the runtime prefixes systemd cgroup drivers add.
    static func undecorated(_ component: Substring) -> Substring {
        var last = component
        if last.hasSuffix(".scope") { last = last.dropLast(".scope".count) }
        for prefix in ["cri-containerd-", "docker-", "crio-", "libpod-"] where last.hasPrefix(prefix) {
            last = last.dropFirst(prefix.count)
        }
        return last
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
