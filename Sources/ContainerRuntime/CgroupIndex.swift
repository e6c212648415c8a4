import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where the cgroup hierarchies are mounted, as the kernel reports them in mountinfo (proc(5)):
/// never an assumed path. On a cgroup v2 host the unified hierarchy is usually `/sys/fs/cgroup`,
/// on a hybrid (v1 + v2) host `/sys/fs/cgroup/unified`; v1-only hosts have none.
public struct CgroupMounts: Sendable, Hashable {
    /// Mount point of the unified (cgroup2) hierarchy, nil when there is none.
    public var unified: String?
    /// The cgroup path the unified mount shows at its mount point (`/` on the host; a container's
    /// own cgroup inside a cgroup namespace or a bind mount).
    public var unifiedRoot: String?
    /// v1 hierarchies: mount point per controller (`memory`, `cpu`, `name=systemd`, …).
    public var v1: [String: String]

    /// Parses mountinfo text: `id parent major:minor root mountpoint options [optional…] - fstype source superoptions`.
    /// The filesystem type decides (`cgroup2` / `cgroup`), not the source field, which can be anything.
    public static func parse(mountinfo text: String) -> CgroupMounts {
        var result = CgroupMounts(unified: nil, unifiedRoot: nil, v1: [:])
        for e in MountInfoEntry.parse(text) {
            switch e.fileSystemType {
            case "cgroup2":
                // The first cgroup2 mount is the host's; later ones are bind mounts (e.g. into containers).
                if result.unified == nil {
                    result.unified = e.mountPoint
                    result.unifiedRoot = e.root
                }
            case "cgroup":
                let known = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls",
                             "net_prio", "perf_event", "hugetlb", "rdma", "misc"]
                for option in e.superOptions.split(separator: ",") {
                    if option.hasPrefix("name=") || known.contains(String(option)) {
                        if result.v1[String(option)] == nil { result.v1[String(option)] = e.mountPoint }
                    }
                }
            default:
                continue
            }
        }
        return result
    }

    /// This host's mounts, from `/proc/self/mountinfo`.
    public static func current(mountinfoPath: String = "/proc/self/mountinfo") throws(CgroupError) -> CgroupMounts {
        guard let text = ProcFile.read(mountinfoPath) else { throw .unreadable(path: mountinfoPath, errno: errno) }
        return parse(mountinfo: text)
    }
}

public enum CgroupError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, errno: Int32)
    /// No cgroup2 mount: bpf_get_current_cgroup_id() ids cannot be mapped to paths.
    case noUnifiedHierarchy(mountinfo: String)

    public var description: String {
        switch self {
        case let .unreadable(path, err):
            return "cannot read \(path) (\(String(cString: strerror(err)))): run podstart with the host's /proc"
        case let .noUnifiedHierarchy(mountinfo):
            return "no cgroup2 (unified) hierarchy in \(mountinfo): cgroup ids of the kernel probes cannot be "
                + "mapped to containers; mount one (mount -t cgroup2 none /sys/fs/cgroup/unified, or boot with "
                + "systemd.unified_cgroup_hierarchy=1); resolution by mount namespace and /proc/PID/cgroup still works"
        }
    }
}

/// Cgroup id → cgroup path in the unified hierarchy. The id is what bpf_get_current_cgroup_id()
/// returns: the inode number of the cgroup's directory in the cgroup2 file system, so it is found
/// by walking the unified mount. Walks are cached; an unknown id triggers one new walk (a cgroup
/// made since), at most once per `minimumRewalk`.
public final class CgroupIndex: Sendable {
    /// Mount point of the unified hierarchy walked.
    public let mountPoint: String
    public let minimumRewalk: Duration
    private let state = Mutex<State>(State())

    private struct State {
        var paths: [UInt64: String] = [:]
        var lastWalk: ContinuousClock.Instant?
    }

    public init(mountPoint: String, minimumRewalk: Duration = .milliseconds(50)) {
        self.mountPoint = mountPoint.count > 1 && mountPoint.hasSuffix("/") ? String(mountPoint.dropLast()) : mountPoint
        self.minimumRewalk = minimumRewalk
    }

    /// The index of this host's unified hierarchy, found from /proc/self/mountinfo.
    public convenience init(mountinfoPath: String = "/proc/self/mountinfo") throws(CgroupError) {
        guard let unified = try CgroupMounts.current(mountinfoPath: mountinfoPath).unified else {
            throw .noUnifiedHierarchy(mountinfo: mountinfoPath)
        }
        self.init(mountPoint: unified)
    }

    /// The cgroup path (`/podstart-sample/web-1`, as in the `0::` line of /proc/PID/cgroup) of a
    /// cgroup id, nil when no such cgroup exists (any more).
    public func path(cgroupID: UInt64) -> String? {
        if let known = state.withLock({ $0.paths[cgroupID] }) { return known }
        let now = ContinuousClock.now
        let mayWalk = state.withLock { s -> Bool in
            if let last = s.lastWalk, now - last < minimumRewalk { return false }
            s.lastWalk = now
            return true
        }
        guard mayWalk else { return nil }
        let walked = walk()
        return state.withLock { s in
            s.paths = walked
            return walked[cgroupID]
        }
    }

    /// The cgroup id of a cgroup path of the unified hierarchy (the inode of its directory).
    public func cgroupID(path: String) -> UInt64? {
        var st = stat()
        let full = path == "/" ? mountPoint : mountPoint + (path.hasPrefix("/") ? path : "/" + path)
        guard stat(full, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { return nil }
        let id = UInt64(st.st_ino)
        state.withLock { $0.paths[id] = path.isEmpty ? "/" : path }
        return id
    }

    /// Every cgroup directory under the mount: inode → path relative to the mount.
    private func walk() -> [UInt64: String] {
        var result: [UInt64: String] = [:]
        var st = stat()
        if stat(mountPoint, &st) == 0 { result[UInt64(st.st_ino)] = "/" }
        var pending: [String] = [""]
        while let relative = pending.popLast() {
            guard let dir = opendir(mountPoint + relative) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                let child = relative + "/" + name
                result[UInt64(entry.pointee.d_ino)] = child
                pending.append(child)
            }
        }
        return result
    }
}
