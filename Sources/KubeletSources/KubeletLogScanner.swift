#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PodstartCore

/// Counts of what a scan saw; every line that looked relevant and was not used is here.
public struct ScanCounters: Sendable, Equatable {
    public var bytes: Int64 = 0
    public var startupLines = 0
    public var startupRejected = 0
    public var rejectionReasons: [String: Int] = [:]
    public var containerdEvents = 0
    public var containerdMalformed = 0
    /// Lines longer than the scanner's line limit (split, counted).
    public var oversizeLines = 0
    public init() {}
}

/// Reads a kubelet/containerd log (a file, stdin, a journal export) in large chunks and finds the
/// few lines that matter with `memmem` over the whole chunk, never splitting it into strings:
/// lines with `podStartSLOduration` or the startup message (kubelet) and lines with `msg="`
/// (containerd). Memory is one chunk plus one partial line.
public final class KubeletLogScanner {
    public private(set) var counters = ScanCounters()
    public var assembler = PodStartAssembler()
    /// Only pods whose watch-observed-running (or creation) is at or after this instant.
    public var since: KubeletTimestamp?
    private let onReport: (PodStartReport) -> Void
    private let chunkSize: Int
    private var buffer: UnsafeMutableBufferPointer<UInt8>
    private var filled = 0
    public static let maxLineBytes = 1 << 20

    public init(chunkSize: Int = 1 << 20, onReport: @escaping (PodStartReport) -> Void) {
        self.chunkSize = chunkSize
        self.onReport = onReport
        buffer = .allocate(capacity: chunkSize + Self.maxLineBytes)
    }

    deinit { buffer.deallocate() }

    /// Scans a file descriptor to its end.
    public func scan(fd: Int32) throws(ScanError) {
        while true {
            if filled >= buffer.count {
                // A line longer than the buffer: process what we have as one line.
                counters.oversizeLines += 1
                processLines(UnsafeBufferPointer(rebasing: buffer[0..<filled]), final: true)
                filled = 0
            }
            let n = read(fd, buffer.baseAddress! + filled, min(chunkSize, buffer.count - filled))
            if n < 0 {
                if errno == EINTR { continue }
                throw .read(errno: errno)
            }
            if n == 0 { break }
            counters.bytes += Int64(n)
            filled += n
            let consumed = processLines(UnsafeBufferPointer(rebasing: buffer[0..<filled]), final: false)
            if consumed > 0 {
                let rest = filled - consumed
                if rest > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + consumed, rest) }
                filled = rest
            }
        }
        finish()
    }

    /// Feeds bytes (any split); call `finish()` at the end.
    public func feed(_ bytes: UnsafeBufferPointer<UInt8>) {
        var offset = 0
        while offset < bytes.count {
            if filled >= buffer.count {
                counters.oversizeLines += 1
                processLines(UnsafeBufferPointer(rebasing: buffer[0..<filled]), final: true)
                filled = 0
            }
            let n = min(bytes.count - offset, buffer.count - filled)
            (buffer.baseAddress! + filled).update(from: bytes.baseAddress! + offset, count: n)
            filled += n
            offset += n
            counters.bytes += Int64(n)
            let consumed = processLines(UnsafeBufferPointer(rebasing: buffer[0..<filled]), final: false)
            if consumed > 0 {
                let rest = filled - consumed
                if rest > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + consumed, rest) }
                filled = rest
            }
        }
    }

    public func feed(_ s: String) {
        var s = s
        s.withUTF8 { feed($0) }
    }

    /// Processes a last line without a newline.
    public func finish() {
        if filled > 0 {
            processLines(UnsafeBufferPointer(rebasing: buffer[0..<filled]), final: true)
            filled = 0
        }
    }

    /// Handles one complete line (no newline) from another source, e.g. a journald record.
    public func processLine(_ line: UnsafeBufferPointer<UInt8>) {
        if let r = StartupLineParser.parse(line) {
            handleStartup(r)
            return
        }
        handleContainerd(line, msgAt: nil)
    }

    /// Processes every complete line in `b`; returns the bytes consumed.
    @discardableResult
    private func processLines(_ b: UnsafeBufferPointer<UInt8>, final: Bool) -> Int {
        let end: Int
        if final {
            end = b.count
        } else {
            guard let lastNL = findByteBackward(b, UInt8(ascii: "\n"), before: b.count) else { return 0 }
            end = lastNL + 1
        }
        let region = UnsafeBufferPointer(rebasing: b[0..<end])
        // Two sorted hit lists, merged so events stay in line order.
        var a = nextHit(region, StartupLineParser.sloKey, from: 0)
        var c = nextHit(region, ContainerdLineParser.msgNeedle, from: 0)
        var lastLineStart = -1
        while true {
            // The earliest of the three hits.
            var at = Int.max
            var which = 0
            if let x = a, x < at { at = x; which = 1 }
            if let x = c, x < at { at = x; which = 2 }
            if at == Int.max { break }
            let lineStart = (findByteBackward(region, UInt8(ascii: "\n"), before: at).map { $0 + 1 }) ?? 0
            var lineEnd = findByte(region, UInt8(ascii: "\n"), from: at) ?? region.count
            if lineEnd > lineStart, region[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            if lineStart != lastLineStart {
                lastLineStart = lineStart
                let line = UnsafeBufferPointer(rebasing: region[lineStart..<lineEnd])
                if which == 1 {
                    if let r = StartupLineParser.parse(line) { handleStartup(r) }
                } else {
                    handleContainerd(line, msgAt: at - lineStart)
                }
            }
            let next = lineEnd + 1
            if let x = a, x < next { a = nextHit(region, StartupLineParser.sloKey, from: next) }
            if let x = c, x < next { c = nextHit(region, ContainerdLineParser.msgNeedle, from: next) }
        }
        return end
    }

    @inline(__always)
    private func nextHit(_ region: UnsafeBufferPointer<UInt8>, _ needle: Needle, from: Int) -> Int? {
        guard from < region.count else { return nil }
        return findBytes(region, needle.buffer, from: from)
    }

    private func handleStartup(_ r: Result<KubeletPodStartupObservation, StartupLineRejection>) {
        counters.startupLines += 1
        switch r {
        case .success(let o):
            if let since, let t = o.watchObservedRunning ?? o.created, t < since {
                _ = assembler.report(for: o) // forget its state
                return
            }
            onReport(assembler.report(for: o))
        case .failure(let why):
            counters.startupRejected += 1
            let key: String
            switch why {
            case .inconsistent: key = "inconsistent"
            case .missingKey: key = "missingKey"
            case .badValue: key = "badValue"
            case .unparsableFields: key = "unparsableFields"
            case .duplicateKey: key = "duplicateKey"
            case .badPod: key = "badPod"
            case .markerMismatch: key = "markerMismatch"
            case .badJSON: key = "badJSON"
            }
            counters.rejectionReasons[key, default: 0] += 1
        }
    }

    private func handleContainerd(_ line: UnsafeBufferPointer<UInt8>, msgAt: Int?) {
        switch ContainerdLineParser.parse(line, msgAt: msgAt) {
        case .event(let e)?:
            counters.containerdEvents += 1
            assembler.add(e)
        case .malformed?:
            counters.containerdMalformed += 1
        case nil:
            break
        }
    }
}

public enum ScanError: Error, Sendable, Equatable, CustomStringConvertible {
    case open(path: String, errno: Int32)
    case read(errno: Int32)

    public var description: String {
        switch self {
        case .open(let path, let e): "cannot open \(path): \(String(cString: strerror(e))) (errno \(e)); check the path and permissions"
        case .read(let e): "read failed: \(String(cString: strerror(e))) (errno \(e))"
        }
    }
}
