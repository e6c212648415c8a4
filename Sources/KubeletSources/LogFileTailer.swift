#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PodstartCore

/// Where a tailer stands in a log file: which file (device + inode, so a rotated file is still
/// found under its new name), how far its complete lines were consumed, and a fingerprint of the
/// file's first bytes (so a file truncated and rewritten past the offset is not mistaken for the
/// old one).
public struct TailPosition: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    /// Bytes of complete lines consumed.
    public var offset: Int64
    /// FNV-1a of the first `fingerprintLength` bytes.
    public var fingerprint: UInt64
    public var fingerprintLength: Int

    /// The saved form: one JSON object whose keys are the property names (what `JSONEncoder`
    /// wrote before, so positions saved by older versions still load).
    var json: JSON {
        .object([("device", .uint(device)), ("inode", .uint(inode)), ("offset", .int(offset)),
                 ("fingerprint", .uint(fingerprint)), ("fingerprintLength", .int(Int64(fingerprintLength)))])
    }

    public func save(to path: String) throws {
        let tmp = path + ".tmp"
        try Data(json.rendered().utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw TailError.io(path: path, errno: errno) }
    }

    public static func load(from path: String) -> TailPosition? {
        guard let d = FileManager.default.contents(atPath: path), let o = try? JSON.parse(Array(d)) else { return nil }
        func unsigned(_ key: String) -> UInt64? {
            switch o[key] {
            case .int(let i)?: UInt64(exactly: i)
            case .uint(let u)?: u
            default: nil
            }
        }
        guard let device = unsigned("device"), let inode = unsigned("inode"), let offset = o["offset"]?.int64Value,
              let fingerprint = unsigned("fingerprint"), let length = o["fingerprintLength"]?.int64Value.flatMap({ Int(exactly: $0) })
        else { return nil }
        return TailPosition(device: device, inode: inode, offset: offset, fingerprint: fingerprint, fingerprintLength: length)
    }
}

public enum TailError: Error, Sendable, Equatable, CustomStringConvertible {
    case io(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .io(let path, let e): "\(path): \(String(cString: strerror(e))) (errno \(e))"
        }
    }
}

/// Follows a log file across rotation — rename-and-create (logrotate's default, the kubelet's
/// own container log rotation) and copytruncate — and resumes from a saved `TailPosition`
/// without losing or repeating lines: after a rename it drains the old file before the new one,
/// also when the rename happened while podstart was not running (the old file is found by inode
/// among its siblings).
public final class LogFileTailer {
    public let path: String
    private var fd: Int32 = -1
    private var current: (device: UInt64, inode: UInt64)?
    /// Offset of the first byte not yet returned as part of a complete line.
    private var consumed: Int64 = 0
    private var lines: LineSplitter
    private var readOffset: Int64 = 0
    private var fingerprint: (hash: UInt64, length: Int) = (0, 0)
    /// Set while draining a rotated file found at startup; then `path` is opened from 0.
    private var drainingRotated = false
    private var resumeFrom: TailPosition?
    /// Start at the end of a file that exists at the first poll (without a saved position).
    private var startAtEnd: Bool
    /// Lines known lost: copytruncate between two polls, or a file rotated away twice while down.
    public private(set) var truncations = 0
    public private(set) var rotations = 0
    /// Lines longer than `maxLineBytes`: skipped and counted here.
    public var oversizeLines: Int { lines.oversizeLines }
    /// Bytes held of an unfinished line (never more than `maxLineBytes`).
    public var pendingBytes: Int { lines.pendingBytes }
    static let fingerprintBytes = 256
    /// The default line cap: the kubelet's and containerd's lines are far shorter.
    public static let defaultMaxLineBytes = 1 << 20

    /// `startAtEnd`: when there is no saved position, skip what the file holds at the first
    /// poll (it describes the past) instead of reading it; a file created later, or the next
    /// file after a rotation, is read from its start.
    public init(path: String, resumeFrom: TailPosition? = nil, startAtEnd: Bool = false,
                maxLineBytes: Int = LogFileTailer.defaultMaxLineBytes) {
        self.path = path
        self.resumeFrom = resumeFrom
        self.startAtEnd = startAtEnd
        lines = LineSplitter(maxLineBytes: maxLineBytes)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Where the complete lines returned so far end; save it to resume later.
    public var position: TailPosition? {
        guard let current else { return resumeFrom }
        return TailPosition(device: current.device, inode: current.inode, offset: consumed,
                            fingerprint: fingerprint.hash, fingerprintLength: fingerprint.length)
    }

    /// Returns every complete line available now (without newlines). Call it periodically (or
    /// when inotify says the file or its directory changed).
    public func poll() throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        if fd < 0 { try openInitial() }
        guard fd >= 0 else { return [] }
        // Truncated (copytruncate) since the last poll? Checked before reading, so bytes of the
        // new content are never read from the old offset.
        if try wasTruncated() {
            truncations += 1
            lseek(fd, 0, SEEK_SET)
            readOffset = 0
            consumed = 0
            self.lines.reset()
            fingerprint = (0, 0)
        }
        try readAvailable(into: &lines)
        if drainingRotated || pathPointsElsewhere() {
            // Whatever the writer put in the old file before switching is there now.
            try readAvailable(into: &lines)
            self.lines.finish { lines.append(Array($0)) }
            close(fd)
            fd = -1
            current = nil
            drainingRotated = false
            rotations += 1
            if try openPath(at: 0) { try readAvailable(into: &lines) }
        }
        return lines
    }

    private func openInitial() throws {
        if let saved = resumeFrom {
            resumeFrom = nil
            var st = stat()
            if stat(path, &st) == 0, UInt64(st.st_dev) == saved.device, UInt64(st.st_ino) == saved.inode {
                if try openPath(at: saved.offset, expecting: saved) { return }
                return
            }
            // Rotated while we were away: finish the old file first if it is still here.
            if let rotated = findByInode(device: saved.device, inode: saved.inode) {
                let f = open(rotated, O_RDONLY | O_CLOEXEC)
                if f >= 0 {
                    fd = f
                    current = (saved.device, saved.inode)
                    seek(to: saved.offset)
                    fingerprint = (saved.fingerprint, saved.fingerprintLength)
                    drainingRotated = true
                    return
                }
            }
            truncations += 1 // the old file is gone: whatever it had after `offset` is lost
        }
        if startAtEnd {
            startAtEnd = false
            if try openPath(at: nil) { return }
        }
        _ = try openPath(at: 0)
    }

    /// Opens `path` at `offset` (nil: at its end, skipping a last line still being written);
    /// returns false when it does not exist (yet).
    @discardableResult
    private func openPath(at offset: Int64?, expecting saved: TailPosition? = nil) throws -> Bool {
        let f = open(path, O_RDONLY | O_CLOEXEC)
        if f < 0 {
            if errno == ENOENT { return false }
            throw TailError.io(path: path, errno: errno)
        }
        var st = stat()
        fstat(f, &st)
        fd = f
        current = (UInt64(st.st_dev), UInt64(st.st_ino))
        guard let offset else {
            let end = Int64(st.st_size)
            seek(to: end)
            var last: UInt8 = UInt8(ascii: "\n")
            if end > 0, pread(f, &last, 1, off_t(end - 1)) == 1, last != UInt8(ascii: "\n") {
                // The writer is inside a line: its rest belongs to the past too.
                lines.skipToNextLine()
            }
            let len = Int(min(end, Int64(Self.fingerprintBytes)))
            fingerprint = (headHash(length: len), len)
            return true
        }
        var start = offset
        if let saved, Int64(st.st_size) < saved.offset || headHash(length: saved.fingerprintLength) != saved.fingerprint {
            // Truncated (copytruncate) while we were away.
            truncations += 1
            start = 0
        }
        seek(to: start)
        fingerprint = start == 0 ? (0, 0) : (saved?.fingerprint ?? 0, saved?.fingerprintLength ?? 0)
        return true
    }

    private func seek(to offset: Int64) {
        lseek(fd, off_t(offset), SEEK_SET)
        readOffset = offset
        consumed = offset
        lines.reset()
    }

    private func readAvailable(into lines: inout [[UInt8]]) throws {
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TailError.io(path: path, errno: errno)
            }
            if n == 0 { break }
            readOffset += Int64(n)
            self.lines.feed(buf[0..<n]) { lines.append(Array($0)) }
            consumed = readOffset - self.lines.partialLineBytes
        }
        if fingerprint.length < Self.fingerprintBytes, consumed > Int64(fingerprint.length) {
            let len = Int(min(consumed, Int64(Self.fingerprintBytes)))
            fingerprint = (headHash(length: len), len)
        }
    }

    /// FNV-1a of the first `length` bytes of the open file.
    private func headHash(length: Int) -> UInt64 {
        guard length > 0 else { return 0 }
        var b = [UInt8](repeating: 0, count: length)
        let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, length, 0) }
        guard n == length else { return ~0 }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return h
    }

    private func wasTruncated() throws -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TailError.io(path: path, errno: errno) }
        if Int64(st.st_size) < readOffset { return true }
        // Truncated and written past our offset again since the last poll.
        if fingerprint.length > 0, headHash(length: fingerprint.length) != fingerprint.hash { return true }
        return false
    }

    private func pathPointsElsewhere() -> Bool {
        guard let current else { return false }
        var st = stat()
        // Renamed away and not yet re-created: keep reading the old file.
        if stat(path, &st) != 0 { return false }
        return UInt64(st.st_dev) != current.device || UInt64(st.st_ino) != current.inode
    }

    /// A sibling of `path` (`kubelet.log.1`, `kubelet.log-20241129`, …) with this inode.
    private func findByInode(device: UInt64, inode: UInt64) -> String? {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let base = url.lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        for n in names where n != base && n.hasPrefix(base) {
            var st = stat()
            let p = dir + "/" + n
            if stat(p, &st) == 0, UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode { return p }
        }
        return nil
    }
}
