#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PodstartCore

/// Counts of what a scan saw; every line that looked relevant and was not used is here.
public struct ScanCounters: Sendable, Equatable {
    public var bytes: Int64 = 0
    public var startupLines = 0
    public var startupRejected = 0
    public var rejectionReasons: [String: Int] = [:]
    public var containerdEvents = 0
    public var containerdMalformed = 0
    /// Why containerd lines were malformed, counted by reason (at most 32 distinct reasons kept).
    public var containerdMalformedReasons: [String: Int] = [:]
    /// containerd lines whose shape only one generation writes, by that generation.
    public var containerdGenerations: [ContainerdLogGeneration: Int] = [:]
    /// The kubelet's own sandbox lines used, and those that were damaged.
    public var kubeletEvents = 0
    public var kubeletMalformed = 0
    /// Lines longer than the scanner's line limit (split, counted).
    public var oversizeLines = 0
    /// Records of a `journalctl -o json` export that did not parse (damaged, or cut short).
    public var journalRecordsSkipped = 0
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

    /// Scans a file descriptor to its end. Reading and the `memmem` search run on a second
    /// thread, a few chunks ahead of the parsing on this one (memory: `pipelineDepth` chunks).
    /// `prefix`: bytes already read from `fd` (they come first).
    public func scan(fd: Int32, prefix: [UInt8] = []) throws(ScanError) {
        finish()
        let pipe = ChunkPipeline(chunkSize: chunkSize, maxLineBytes: Self.maxLineBytes, depth: Self.pipelineDepth)
        let reader = Thread { pipe.readAll(fd: fd, prefix: prefix) }
        reader.stackSize = 1 << 20
        reader.start()
        while let item = pipe.next() {
            let region = UnsafeBufferPointer(start: pipe.buffers[item.buffer].baseAddress, count: item.length)
            if item.oversize { counters.oversizeLines += 1 }
            dispatch(region, item.hits)
            pipe.release()
        }
        counters.bytes += pipe.bytesRead + Int64(prefix.count)
        if let e = pipe.readErrno { throw .read(errno: e) }
    }

    /// Scans a log, or a `journalctl -o json` export of one (recognised by its first record:
    /// then each record's MESSAGE is analysed).
    public func scanDetectingFormat(fd: Int32) throws(ScanError) {
        var head = [UInt8](repeating: 0, count: 64 << 10)
        var got = 0
        while got < head.count {
            let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 { if errno == EINTR { continue }; throw .read(errno: errno) }
            if n == 0 { break }
            got += n
            if head[0..<got].contains(UInt8(ascii: "\n")) { break }
        }
        head.removeSubrange(got...)
        let firstLine = head.prefix { $0 != UInt8(ascii: "\n") }
        let looksLikeJournalJSON = firstLine.first == UInt8(ascii: "{")
            && firstLine.withUnsafeBufferPointer { findBytes($0, Self.cursorKey.buffer) != nil }
        guard looksLikeJournalJSON else { return try scan(fd: fd, prefix: head) }
        // Records up to maxLineBytes; a longer one is skipped to its newline and counted. Each
        // byte is searched for a newline once, so a huge record costs linear time and the
        // pending buffer never holds more than maxLineBytes.
        var lines = LineSplitter(maxLineBytes: Self.maxLineBytes)
        lines.feed(head[...]) { journalRecordLine($0) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw .read(errno: errno) }
            if n == 0 { break }
            lines.feed(chunk[0..<n]) { journalRecordLine($0) }
        }
        lines.finish { journalRecordLine($0) }
        counters.oversizeLines += lines.oversizeLines
    }

    static let cursorKey = Needle("\"__CURSOR\"")
    public var journalRecordsSkipped: Int { counters.journalRecordsSkipped }

    private func journalRecordLine(_ line: ArraySlice<UInt8>) {
        guard !line.isEmpty else { return }
        guard let r = JournalRecord.parse(Array(line)) else { counters.journalRecordsSkipped += 1; return }
        r.message.withUnsafeBufferPointer { processLine($0) }
    }

    static let pipelineDepth = 3

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
        counters.bytes += Int64(line.count + 1)
        if let r = StartupLineParser.parse(line) {
            handleStartup(r)
            return
        }
        if findBytes(line, KubeletLineParser.sandboxNeedle.buffer) != nil {
            handleKubelet(line)
            return
        }
        handleContainerd(line, msgAt: nil)
    }

    /// A line worth parsing: its bounds in the region and which needle found it.
    struct LineHit {
        var start: Int
        var end: Int
        /// 1: startup line candidate; 2: containerd `msg="` at `msgAt`.
        var kind: UInt8
        var msgAt: Int
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
        var hits: [LineHit] = []
        Self.findHits(region, into: &hits)
        dispatch(region, hits)
        return end
    }

    /// Finds the lines to parse with one `memmem` pass per needle over the whole region (never
    /// touching the other lines), in line order. Pure: runs on the reader thread.
    static func findHits(_ region: UnsafeBufferPointer<UInt8>, into hits: inout [LineHit]) {
        hits.removeAll(keepingCapacity: true)
        var a = nextHit(region, StartupLineParser.sloKey, from: 0)
        var c = nextHit(region, ContainerdLineParser.msgNeedle, from: 0)
        var k = nextHit(region, KubeletLineParser.sandboxNeedle, from: 0)
        while true {
            var at = Int.max
            var kind: UInt8 = 0
            if let x = a, x < at { at = x; kind = 1 }
            if let x = c, x < at { at = x; kind = 2 }
            if let x = k, x < at { at = x; kind = 3 }
            // containerd: only lines whose message starts like a CRI step are worth a look;
            // skip the others without even finding their bounds.
            if kind == 2, at == c, !ContainerdLineParser.mayBeCRIMessage(region, bodyAt: at + ContainerdLineParser.msgNeedle.count) {
                c = nextHit(region, ContainerdLineParser.msgNeedle, from: at + ContainerdLineParser.msgNeedle.count)
                continue
            }
            if at == Int.max { break }
            let lineStart = (findByteBackward(region, UInt8(ascii: "\n"), before: at).map { $0 + 1 }) ?? 0
            var lineEnd = findByte(region, UInt8(ascii: "\n"), from: at) ?? region.count
            let next = lineEnd + 1
            if lineEnd > lineStart, region[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            // A startup hit wins over a containerd hit on the same line.
            if kind == 2, let x = a, x < next { kind = 1; at = x }
            hits.append(LineHit(start: lineStart, end: lineEnd, kind: kind, msgAt: at - lineStart))
            if let x = a, x < next { a = nextHit(region, StartupLineParser.sloKey, from: next) }
            if let x = c, x < next { c = nextHit(region, ContainerdLineParser.msgNeedle, from: next) }
            if let x = k, x < next { k = nextHit(region, KubeletLineParser.sandboxNeedle, from: next) }
        }
    }

    private func dispatch(_ region: UnsafeBufferPointer<UInt8>, _ hits: [LineHit]) {
        for h in hits {
            let line = UnsafeBufferPointer(rebasing: region[h.start..<h.end])
            switch h.kind {
            case 1: if let r = StartupLineParser.parse(line) { handleStartup(r) }
            case 3: handleKubelet(line)
            default: handleContainerd(line, msgAt: h.msgAt)
            }
        }
    }

    @inline(__always)
    private static func nextHit(_ region: UnsafeBufferPointer<UInt8>, _ needle: Needle, from: Int) -> Int? {
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

    private func handleKubelet(_ line: UnsafeBufferPointer<UInt8>) {
        switch KubeletLineParser.parseSandboxNeeded(line) {
        case .success(let e)?:
            counters.kubeletEvents += 1
            assembler.add(e)
        case .failure?:
            counters.kubeletMalformed += 1
        case nil:
            break
        }
    }

    private func handleContainerd(_ line: UnsafeBufferPointer<UInt8>, msgAt: Int?) {
        switch ContainerdLineParser.parse(line, msgAt: msgAt) {
        case .event(let e)?:
            counters.containerdEvents += 1
            if let g = e.generation { counters.containerdGenerations[g, default: 0] += 1 }
            assembler.add(e)
        case .malformed(let why)?:
            counters.containerdMalformed += 1
            // Reasons end with the message's start; group by the reason itself.
            let key = why.split(separator: " (msg ", maxSplits: 1).first.map(String.init) ?? why
            if counters.containerdMalformedReasons[key] != nil || counters.containerdMalformedReasons.count < 32 {
                counters.containerdMalformedReasons[key, default: 0] += 1
            }
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

/// Chunks read ahead of the parser: the reader thread fills buffer k mod depth, finds the
/// candidate lines, and hands it over; the parser gives buffers back in the same order.
final class ChunkPipeline: @unchecked Sendable {
    struct Item {
        var buffer: Int
        var length: Int
        var hits: [KubeletLogScanner.LineHit]
        var oversize: Bool
    }

    let buffers: [UnsafeMutableBufferPointer<UInt8>]
    let chunkSize: Int
    private let free: DispatchSemaphore
    private let ready = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var queue: [Item?] = []
    private(set) var bytesRead: Int64 = 0
    private(set) var readErrno: Int32?

    init(chunkSize: Int, maxLineBytes: Int, depth: Int) {
        self.chunkSize = chunkSize
        buffers = (0..<depth).map { _ in .allocate(capacity: chunkSize + maxLineBytes) }
        free = DispatchSemaphore(value: depth)
    }

    deinit { for b in buffers { b.deallocate() } }

    /// Reader thread.
    func readAll(fd: Int32, prefix: [UInt8]) {
        var carry: [UInt8] = prefix
        var index = 0
        var hits: [KubeletLogScanner.LineHit] = []
        var eof = false
        defer { post(nil) }
        while !eof {
            free.wait()
            let buf = buffers[index]
            var filled = carry.count
            if !carry.isEmpty { _ = UnsafeMutableBufferPointer(rebasing: buf[0..<filled]).initialize(from: carry) }
            carry.removeAll(keepingCapacity: true)
            // Fill at least a chunk holding a newline, or the whole buffer, or to the end of input.
            var sawNewline = false
            while filled < buf.count, !(filled >= chunkSize && sawNewline) {
                let n = read(fd, buf.baseAddress! + filled, buf.count - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    lock.withLock { readErrno = errno }
                    eof = true
                    break
                }
                if n == 0 { eof = true; break }
                if !sawNewline, memchr(buf.baseAddress! + filled, Int32(UInt8(ascii: "\n")), n) != nil { sawNewline = true }
                filled += n
                lock.withLock { bytesRead += Int64(n) }
            }
            if filled == 0 {
                free.signal() // a semaphore must be back at its initial value when it is freed
                break
            }
            let all = UnsafeBufferPointer(rebasing: buf[0..<filled])
            var end = filled
            var oversize = false
            if !eof {
                if let nl = findByteBackward(all, UInt8(ascii: "\n"), before: filled) {
                    end = nl + 1
                } else {
                    oversize = true // one line fills the whole buffer: hand it over as one line
                }
            }
            if end < filled { carry.append(contentsOf: all[end..<filled]) }
            KubeletLogScanner.findHits(UnsafeBufferPointer(rebasing: buf[0..<end]), into: &hits)
            post(Item(buffer: index, length: end, hits: hits, oversize: oversize))
            index = (index + 1) % buffers.count
        }
    }

    private func post(_ item: Item?) {
        lock.withLock { queue.append(item) }
        ready.signal()
    }

    /// Parser thread: the next chunk, or nil at the end.
    func next() -> Item? {
        ready.wait()
        return lock.withLock { queue.removeFirst() }
    }

    /// Parser thread: done with the chunk `next()` returned.
    func release() { free.signal() }
}
