import Foundation
import PodstartCore

/// One journald record as `journalctl -o json` prints it (the fields podstart uses).
public struct JournalRecord: Sendable, Equatable {
    /// `__CURSOR`: where to resume after this record.
    public var cursor: String
    /// `_SYSTEMD_UNIT` (e.g. `kubelet.service`), or `SYSLOG_IDENTIFIER` when absent.
    public var unit: String?
    /// `__REALTIME_TIMESTAMP`, microseconds since the epoch.
    public var realtimeMicroseconds: Int64?
    /// `MESSAGE` bytes (journald gives a byte array instead of a string for non-UTF-8 data).
    public var message: [UInt8]

    /// Parses one line of `journalctl -o json`. Nil when it is not a record with a cursor and a
    /// message.
    public static func parse(_ line: [UInt8]) -> JournalRecord? {
        guard let obj = try? JSON.parse(line), let cursor = obj["__CURSOR"]?.stringValue else { return nil }
        let message: [UInt8]
        if let s = obj["MESSAGE"]?.stringValue {
            message = Array(s.utf8)
        } else if let a = obj["MESSAGE"]?.arrayValue {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(a.count)
            for v in a {
                guard let n = v.int64Value, let byte = UInt8(exactly: n) else { return nil }
                bytes.append(byte)
            }
            message = bytes
        } else {
            return nil
        }
        let unit = obj["_SYSTEMD_UNIT"]?.stringValue ?? obj["SYSLOG_IDENTIFIER"]?.stringValue
        let rt = obj["__REALTIME_TIMESTAMP"]?.stringValue.flatMap { Int64($0) }
        return JournalRecord(cursor: cursor, unit: unit, realtimeMicroseconds: rt, message: message)
    }
}

extension JournalRecord {
    /// The `__CURSOR` of one `journalctl -o json` line, whatever else it holds.
    public static func parseCursor(_ line: [UInt8]) -> String? {
        (try? JSON.parse(line))?["__CURSOR"]?.stringValue
    }
}

/// The last journald cursor handled, kept in a file so a restarted reader resumes right after it.
public struct JournalCursorStore: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func load() -> String? {
        guard let d = FileManager.default.contents(atPath: path),
              let s = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !s.isEmpty
        else { return nil }
        return s
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a cursor.
    public func save(_ cursor: String) throws {
        let tmp = path + ".tmp"
        try Data((cursor + "\n").utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw JournalError.cursorWrite(path: path, errno: errno) }
    }
}

public enum JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    case journalctlNotFound
    case launch(String)
    case exited(status: Int32, stderr: String)
    case cursorWrite(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .journalctlNotFound:
            "journalctl not found on PATH: install systemd's journalctl, or export the log with `journalctl -u kubelet -u containerd > FILE` elsewhere and use --kubelet-log FILE"
        case .launch(let why): "cannot start journalctl: \(why)"
        case .exited(let status, let stderr): "journalctl exited with status \(status): \(stderr)"
        case .cursorWrite(let path, let e): "cannot save journal cursor to \(path): errno \(e)"
        }
    }
}

/// Reads the kubelet and containerd units through `journalctl -o json` (a child process; no
/// libsystemd link needed), optionally following and resuming after a saved cursor.
public struct JournalctlReader {
    public struct Counters: Sendable, Equatable {
        public var records = 0
        public var malformedRecords = 0
        /// Records longer than `maxRecordBytes`: skipped (never held), counted.
        public var oversizeRecords = 0
    }

    /// The longest record read; a longer one is skipped to its newline and counted.
    public var maxRecordBytes = 1 << 20

    public var units: [String]
    public var since: KubeletTimestamp?
    /// Resume strictly after this cursor (`--after-cursor`).
    public var afterCursor: String?
    /// `journalctl` to run; found on PATH by default.
    public var executable: String?
    /// PATH used to find `journalctl` and given to it; the process' PATH by default.
    public var searchPath: String?

    public init(units: [String], afterCursor: String? = nil) {
        self.units = units
        self.afterCursor = afterCursor
    }

    public func arguments(follow: Bool) -> [String] {
        var args = ["-o", "json", "--no-pager"]
        if follow { args.append("-f") }
        for u in units { args += ["-u", u] }
        if let afterCursor {
            args += ["--after-cursor", afterCursor]
        } else if let since {
            args += ["--since", SinceParser.journalctlArgument(since)]
        }
        return args
    }

    /// Reads everything currently in the journal and returns; `handle` gets each MESSAGE.
    public func readAll(_ handle: (UnsafeBufferPointer<UInt8>) -> Void) throws -> Counters {
        try run(follow: false, cursorStore: nil, shouldStop: { false }) { record in
            record.message.withUnsafeBufferPointer { handle($0) }
        }
    }

    /// Runs journalctl (following when `follow`), hands every record to `handle` and, after each
    /// batch read from the pipe, saves the last handled cursor to `cursorStore`. Returns when
    /// journalctl exits or `shouldStop()` turns true (checked between batches); a clean stop
    /// never loses or repeats a record across restarts.
    public func run(follow: Bool, cursorStore: JournalCursorStore?, shouldStop: @escaping () -> Bool,
                    handle: (JournalRecord) -> Void) throws -> Counters {
        let path = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let exe = executable ?? Self.findOnPath("journalctl", path: path) else { throw JournalError.journalctlNotFound }
        var me = self
        if me.afterCursor == nil, let saved = cursorStore?.load() { me.afterCursor = saved }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = me.arguments(follow: follow)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = path
        p.environment = env
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        do { try p.run() } catch { throw JournalError.launch("\(error)") }
        let fd = outPipe.fileHandleForReading.fileDescriptor
        var counters = Counters()
        var lines = LineSplitter(maxLineBytes: maxRecordBytes)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var lastCursor: String?
        var stopped = false
        while true {
            if shouldStop() { stopped = true; break }
            // Poll so a stop request is noticed even when journalctl is idle in -f mode.
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let pr = poll(&pfd, 1, 100)
            if pr == 0 { continue }
            if pr < 0 { if errno == EINTR { continue }; break }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            lines.feed(chunk[0..<n]) { line in
                guard !line.isEmpty else { return }
                guard let r = JournalRecord.parse(Array(line)) else { counters.malformedRecords += 1; return }
                handle(r)
                counters.records += 1
                lastCursor = r.cursor
            }
            counters.oversizeRecords = lines.oversizeLines
            if let c = lastCursor, let cursorStore { try cursorStore.save(c) }
        }
        if stopped || p.isRunning {
            p.terminate()
        }
        p.waitUntilExit()
        if !stopped, p.terminationReason == .exit, p.terminationStatus != 0 {
            let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw JournalError.exited(status: p.terminationStatus, stderr: err.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return counters
    }

    public static func findOnPath(_ name: String, path: String) -> String? {
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
