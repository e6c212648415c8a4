import PodstartCore

/// One line of a mount table as the kernel writes it in `/proc/PID/mountinfo` (proc(5)):
/// `id parent major:minor root mountpoint options [optional…] - fstype source superoptions`.
/// Paths are unescaped (the kernel writes space, tab, newline and backslash as `\ooo`).
public struct MountInfoEntry: Sendable, Hashable {
    public var mountID: Int
    public var parentID: Int
    /// The path inside the file system that is mounted here (`/` for a whole file system; a bind
    /// mount's source directory otherwise).
    public var root: String
    public var mountPoint: String
    /// `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    public var optionalFields: [String]
    public var fileSystemType: String
    public var source: String
    public var superOptions: String

    /// How mounts made under this one elsewhere reach it (mount_namespaces(7)).
    public enum Propagation: String, Sendable, Hashable {
        /// `shared:N`: mounts propagate both ways within its peer group (and it may also be a slave).
        case shared
        /// `master:N` only: receives mounts from its master, sends none.
        case slave
        /// Neither: mounts made elsewhere after it was created never appear under it.
        case `private`
    }

    public var propagation: Propagation {
        if optionalFields.contains(where: { $0.hasPrefix("shared:") }) { return .shared }
        if optionalFields.contains(where: { $0.hasPrefix("master:") }) { return .slave }
        return .private
    }

    /// The entries of a mount table, in the kernel's order (a later mount on the same point hides
    /// the earlier); lines that are not mountinfo lines are left out.
    public static func parse(_ text: String) -> [MountInfoEntry] {
        text.split(separator: "\n").compactMap(parse(line:))
    }

    public static func parse(line: Substring) -> MountInfoEntry? {
        guard let dash = line.range(of: " - ") else { return nil }
        let left = line[..<dash.lowerBound].split(separator: " ")
        let right = line[dash.upperBound...].split(separator: " ", maxSplits: 2)
        guard left.count >= 6, right.count >= 2, let id = Int(left[0]), let parent = Int(left[1]) else { return nil }
        return MountInfoEntry(mountID: id, parentID: parent, root: unescape(left[3]), mountPoint: unescape(left[4]),
                              optionalFields: left.dropFirst(6).map(String.init), fileSystemType: String(right[0]),
                              source: unescape(right[1]), superOptions: right.count > 2 ? unescape(right[2]) : "")
    }

    /// The mount a path lives on: the one whose mount point is the path's longest prefix (by whole
    /// components), the last of those mounted on the same point.
    public static func covering(_ path: String, in entries: [MountInfoEntry]) -> MountInfoEntry? {
        var best: MountInfoEntry?
        for e in entries {
            let inside = e.mountPoint == "/" || path == e.mountPoint || path.hasPrefix(e.mountPoint + "/")
            guard inside else { continue }
            if best == nil || e.mountPoint.count >= best!.mountPoint.count { best = e }
        }
        return best
    }

    /// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
    public static func unescape(_ text: Substring) -> String {
        guard text.contains("\\") else { return String(text) }
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
               let value = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(value)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Whether the rootfs mounts the runtime makes after this process started appear in this
/// process's mount table, where podstart finds a container's rootfs (its layers, what a read
/// file came from). In the host's mount namespace they always do; in a container (the agent's
/// DaemonSet) only when the runtime's state directory is mounted with propagation from the host
/// (`mountPropagation: HostToContainer` makes it a slave mount), which needs the host's mount to
/// be shared: on a node whose `/` is private it is not.
public enum RuntimeMountVisibility: Sendable, Hashable {
    /// This process shares the mount namespace of PID 1: the host's mounts are its own.
    case sameNamespace
    /// The state directory is on a mount that receives the host's later mounts.
    case propagated(mountPoint: String, MountInfoEntry.Propagation)
    /// The state directory is on a private mount: mounts made after it was set up never appear.
    case notPropagated(mountPoint: String)
    case unknown(reason: String)

    /// The `propagation` label of `podstart_runtime_info`.
    public var label: String {
        switch self {
        case .sameNamespace: "host-namespace"
        case .propagated(_, let p): p.rawValue
        case .notPropagated: "private"
        case .unknown: "unknown"
        }
    }

    public var isVisible: Bool? {
        switch self {
        case .sameNamespace, .propagated: true
        case .notPropagated: false
        case .unknown: nil
        }
    }

    public static func check(taskDirectory: String, mountInfo: String, sameNamespaceAsInit: Bool) -> RuntimeMountVisibility {
        if sameNamespaceAsInit { return .sameNamespace }
        let entries = MountInfoEntry.parse(mountInfo)
        guard let mount = MountInfoEntry.covering(taskDirectory, in: entries) else {
            return .unknown(reason: "no mount covers \(taskDirectory) in the mount table")
        }
        switch mount.propagation {
        case .private: return .notPropagated(mountPoint: mount.mountPoint)
        case let p: return .propagated(mountPoint: mount.mountPoint, p)
        }
    }

    /// This process's view, from `/proc/self/mountinfo`, against the runtime's own mount
    /// namespace: that of `runtimePid` (the process serving the runtime's socket), else PID 1's.
    /// When neither can be read, nothing is claimed.
    public static func current(taskDirectory: String, runtimePid: Int32?) -> RuntimeMountVisibility {
        guard let text = ProcFile.read("/proc/self/mountinfo") else { return .unknown(reason: "cannot read /proc/self/mountinfo") }
        let runtime = runtimePid.flatMap { ProcessNamespace.mount(pid: $0) } ?? ProcessNamespace.mount(pid: 1)
        guard let own = ProcessNamespace.mount(procEntry: "self"), let runtime else {
            return .unknown(reason: "cannot read the runtime's mount namespace (its socket's peer, or /proc/1/ns/mnt)")
        }
        return check(taskDirectory: taskDirectory, mountInfo: text, sameNamespaceAsInit: own == runtime)
    }
}
