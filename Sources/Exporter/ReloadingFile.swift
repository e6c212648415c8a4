#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Where a file is and when it last changed, as `stat(2)` (following symlinks) sees it:
/// Kubernetes replaces a projected or mounted file by swapping its `..data` symlink, which
/// changes the target's inode; an editor or `cp` changes the size or modification time.
struct FileStamp: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var sizeBytes: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// nil when the file cannot be stat'ed (gone for a moment during a swap).
    static func of(_ path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), sizeBytes: Int64(st.st_size),
                         modifiedSeconds: st.st_mtim.tv_sec, modifiedNanoseconds: st.st_mtim.tv_nsec)
    }
}

/// A value read from files that may be replaced while the agent runs (a kubelet-rotated
/// serving certificate, a projected token): `current()` stats the files and reads them again
/// when any changed. A new version that cannot be read or parsed leaves the old value in
/// service; `onReloadError` hears of it once per change of the files (the agent logs and counts
/// it), and the next change is tried again.
public final class ReloadingFile<Value: Sendable>: Sendable {
    public let paths: [String]
    private let load: @Sendable () throws -> Value
    private let onReloadError: @Sendable (any Error) -> Void
    private let state: Mutex<(stamps: [FileStamp?], value: Value)>

    /// Reads the files now: an error here is the caller's (a bad file at start stops the agent).
    public init(paths: [String], load: @escaping @Sendable () throws -> Value,
                onReloadError: @escaping @Sendable (any Error) -> Void = { _ in }) throws {
        self.paths = paths
        self.load = load
        self.onReloadError = onReloadError
        let stamps = paths.map(FileStamp.of)
        state = Mutex((stamps, try load()))
    }

    /// The value of the files as they are now, or the last good one.
    public func current() -> Value {
        let stamps = paths.map(FileStamp.of)
        if let value = state.withLock({ $0.stamps == stamps ? $0.value : nil }) { return value }
        // A file missing for a moment (between unlink and rename) is not yet a new version.
        if stamps.contains(where: { $0 == nil }) { return state.withLock { $0.value } }
        do {
            let value = try load()
            // Stamped with what was seen before reading: a change during the read is read again next time.
            state.withLock { $0 = (stamps, value) }
            return value
        } catch {
            let old = state.withLock { s in
                s.stamps = stamps
                return s.value
            }
            onReloadError(error)
            return old
        }
    }
}

struct SmallFileError: Error, CustomStringConvertible, Sendable {
    var description: String
}

/// A whole small file (a token, a key), refusing one larger than `limitBytes`.
func readSmallFile(path: String, limitBytes: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SmallFileError(description: "cannot open it: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SmallFileError(description: "cannot read it: \(String(cString: strerror(errno)))")
        }
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
        guard bytes.count <= limitBytes else { throw SmallFileError(description: "larger than \(limitBytes) bytes") }
    }
}
