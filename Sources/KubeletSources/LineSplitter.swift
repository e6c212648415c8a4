#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream into lines (without their newline), holding at most `maxLineBytes` of
/// an unfinished line. A longer line is counted in `oversizeLines` and skipped up to its
/// newline, so memory stays bounded whatever the input. Each byte is searched for a newline
/// once: a huge line costs linear time, not a rescan of the pending bytes on every read.
public struct LineSplitter: Sendable {
    public let maxLineBytes: Int
    private var pending: [UInt8] = []
    /// Inside a line that is being skipped (too long, or begun before the reader started).
    private var skipping = false
    /// Lines longer than `maxLineBytes`, skipped.
    public private(set) var oversizeLines = 0
    /// Bytes fed since the last newline (held or skipped): the reader's offset minus this is
    /// where the complete lines end.
    public private(set) var partialLineBytes: Int64 = 0
    /// Bytes of the unfinished line held now (never more than `maxLineBytes`).
    public var pendingBytes: Int { pending.count }

    public init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    /// Skips the bytes up to the next newline without counting them as an oversize line: the
    /// rest of a line whose start was not read (a tail begun at the end of a file).
    public mutating func skipToNextLine() {
        pending.removeAll()
        skipping = true
    }

    /// Hands every line completed by `bytes` to `line`, in order.
    public mutating func feed(_ bytes: ArraySlice<UInt8>, _ line: (ArraySlice<UInt8>) -> Void) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let newline = Self.firstNewline(in: bytes, from: start)
            let end = newline ?? bytes.endIndex
            let piece = bytes[start..<end]
            if skipping {
                // dropped
            } else if pending.count + piece.count > maxLineBytes {
                oversizeLines += 1
                pending = []  // give the memory back: the line may have been hundreds of MB long
                skipping = true
            } else if newline != nil {
                if pending.isEmpty {
                    line(piece)
                } else {
                    pending.append(contentsOf: piece)
                    line(pending[...])
                    pending.removeAll(keepingCapacity: true)
                }
            } else {
                pending.append(contentsOf: piece)
            }
            guard let newline else {
                partialLineBytes += Int64(piece.count)
                break
            }
            skipping = false
            partialLineBytes = 0
            start = bytes.index(after: newline)
        }
    }

    /// memchr: this runs over every byte of a followed log, also in debug builds.
    private static func firstNewline(in bytes: ArraySlice<UInt8>, from start: Int) -> Int? {
        bytes.withUnsafeBufferPointer { b -> Int? in
            let offset = start - bytes.startIndex
            guard let base = b.baseAddress, offset < b.count,
                  let p = memchr(base + offset, Int32(UInt8(ascii: "\n")), b.count - offset) else { return nil }
            return bytes.startIndex + base.distance(to: p.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// At the end of the input: hands over a last line that has no newline.
    public mutating func finish(_ line: (ArraySlice<UInt8>) -> Void) {
        if !skipping, !pending.isEmpty { line(pending[...]) }
        pending.removeAll()
        skipping = false
        partialLineBytes = 0
    }

    /// Forgets any unfinished line (the file it came from was truncated or replaced).
    public mutating func reset() {
        pending.removeAll()
        skipping = false
        partialLineBytes = 0
    }
}
