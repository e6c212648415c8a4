import Foundation
import PodstartCore
#if canImport(Glibc)
import Glibc
#endif

/// A container's overlay root filesystem as the runtime mounted it: the image's layers
/// (`lowerdir`, topmost first) under the container's writable layer (`upperdir`).
public struct OverlayRootfs: Sendable, Hashable {
    /// Where the runtime mounted it on the host
    /// (`<state>/io.containerd.runtime.v2.task/k8s.io/<id>/rootfs`).
    public var mountPoint: String
    /// Snapshot directories of the image layers, topmost first (overlayfs order).
    public var lowerDirs: [String]
    /// The container's own writable layer.
    public var upperDir: String?

    public init(mountPoint: String, lowerDirs: [String], upperDir: String?) {
        self.mountPoint = mountPoint
        self.lowerDirs = lowerDirs
        self.upperDir = upperDir
    }

    /// The rootfs overlay of container `containerID` in the host's mount table. It stays mounted
    /// until the task is deleted, so it is found even after the container exited.
    public static func find(containerID: String, mountInfoPath: String = "/proc/self/mountinfo") -> OverlayRootfs? {
        guard let text = ProcFile.read(mountInfoPath) else { return nil }
        return parse(mountInfo: text, containerID: containerID)
    }

    /// Parses mountinfo text (proc(5)) for the overlay mounted at `…/<containerID>/rootfs`.
    public static func parse(mountInfo: String, containerID: String) -> OverlayRootfs? {
        parse(mountInfo: mountInfo) { $0.hasSuffix("/\(containerID)/rootfs") }
    }

    /// The overlay a process sees as `/`, from its own `/proc/PID/mountinfo`: found the moment a
    /// container's first process execs, before a container that lives for milliseconds is gone.
    public static func root(ofProcess pid: Int32) -> OverlayRootfs? {
        guard let text = ProcFile.read("/proc/\(pid)/mountinfo") else { return nil }
        return parse(mountInfo: text) { $0 == "/" }
    }

    static func parse(mountInfo: String, mountPoint matches: (String) -> Bool) -> OverlayRootfs? {
        for line in mountInfo.split(separator: "\n") {
            guard let e = MountInfoEntry.parse(line: line), e.fileSystemType == "overlay", matches(e.mountPoint) else { continue }
            return OverlayRootfs(mountPoint: e.mountPoint, options: e.superOptions.split(separator: ",").map(String.init))
        }
        return nil
    }

    /// An overlay from its mount options (`lowerdir=a:b`, `upperdir=u`, …), as the kernel's mount
    /// table shows them (unescaped) or as containerd hands a task's rootfs mounts over.
    public init(mountPoint: String, options: [String]) {
        var lower: [String] = []
        var upper: String?
        for option in options {
            if option.hasPrefix("lowerdir=") {
                lower = option.dropFirst("lowerdir=".count).split(separator: ":").map(String.init)
            } else if option.hasPrefix("upperdir=") {
                upper = String(option.dropFirst("upperdir=".count))
            }
        }
        self.init(mountPoint: mountPoint, lowerDirs: lower, upperDir: upper)
    }

    /// Which layer provides `path` (absolute inside the container), looking top-down the way
    /// overlayfs does: the upper (container) layer first, then each lower layer; a whiteout
    /// (character device 0:0) hides the lower layers' copies. Returns the index in `lowerDirs`
    /// (0 = topmost), `.upper` for files the container created or copied up, nil if no layer has it.
    public func layerIndex(providing path: String) -> LayerHit? {
        if let upperDir, let hit = probe(upperDir, path) {
            return hit == .present ? .upper : nil
        }
        for (index, dir) in lowerDirs.enumerated() {
            if let hit = probe(dir, path) { return hit == .present ? .lower(index) : nil }
        }
        return nil
    }

    /// The file on the host that holds `path`'s data: the copy in the layer that provides it.
    /// The kernel's page-cache events name this file (device and inode of the layer directory's
    /// file system), not the overlay's inode that an open reports, so accesses join through it.
    public func dataFile(of path: String) -> FileKey? {
        let directory: String
        switch layerIndex(providing: path) {
        case .upper?: guard let upperDir else { return nil }; directory = upperDir
        case .lower(let index)?: directory = lowerDirs[index]
        case nil: return nil
        }
        var st = stat()
        guard stat(directory + path, &st) == 0 else { return nil }
        return FileKey(device: DeviceNumber(userspace: UInt64(st.st_dev)), inode: UInt64(st.st_ino))
    }

    /// The image's unpacked size: the sizes of the regular files in its layers (`lowerDirs`),
    /// summed, each hard-linked inode once. A file that an upper layer replaces counts in both
    /// layers, as it does in the layers a registry stores. nil when a layer cannot be walked.
    public func imageBytes() -> UInt64? {
        guard !lowerDirs.isEmpty else { return nil }
        var total: UInt64 = 0
        var seen = Set<FileKey>()
        // Depth-first with an explicit stack; lstat, so symbolic links are never followed.
        var stack = lowerDirs
        while let dir = stack.popLast() {
            guard let handle = opendir(dir) else { return nil }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }  // vanished, or a name not in UTF-8
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    stack.append(path)
                case S_IFREG:
                    let key = FileKey(device: DeviceNumber(userspace: UInt64(st.st_dev)), inode: UInt64(st.st_ino))
                    if st.st_nlink > 1, !seen.insert(key).inserted { continue }
                    total += UInt64(max(0, st.st_size))
                default:
                    continue
                }
            }
        }
        return total
    }

    public enum LayerHit: Sendable, Hashable {
        case upper
        case lower(Int)
    }

    private enum Probe { case present, whiteout }

    private func probe(_ dir: String, _ path: String) -> Probe? {
        var st = stat()
        guard lstat(dir + path, &st) == 0 else { return nil }
        if st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0 { return .whiteout }
        return .present
    }
}

/// Reads a /proc file to its end with read(2): proc files report size 0, and reading them by a
/// size hint can stop early on a large mount table.
enum ProcFile {
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
