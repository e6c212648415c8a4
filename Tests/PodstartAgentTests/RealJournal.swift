import Foundation
import PodstartTestSupport

/// A real journal file that grows while a test runs: Debian's `systemd-journal-remote` (from
/// scripts/install-deps.sh) writes the records a test hands it, in journal export format, to
/// `directory/remote.journal`, where `journalctl --directory` reads and follows them as it follows
/// a node's /var/log/journal. No journald runs on the test machines (no systemd as PID 1); the
/// files, and journalctl reading them, are the real ones. Records carry `_SYSTEMD_UNIT` as
/// journald sets it for a unit's output.
final class RealJournal {
    static let remote = "/lib/systemd/systemd-journal-remote"

    struct Record {
        var unit: String
        var message: String
        /// `__REALTIME_TIMESTAMP`: microseconds since the epoch.
        var realtimeMicroseconds: Int64
    }

    let directory: String
    private let process = Process()
    private let input = Pipe()
    private var monotonic: Int64 = 0

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.remote) else {
            throw Failure("\(Self.remote) is missing: install Debian's systemd-journal-remote (scripts/install-deps.sh)")
        }
        directory = try Command.temporaryDirectory("podstart-journal")
        process.executableURL = URL(fileURLWithPath: Self.remote)
        process.arguments = ["--output=\(directory)/remote.journal", "-"]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Appends records to the journal file; returns once journalctl sees the last of them.
    func append(_ records: [Record]) throws {
        var text = ""
        for r in records {
            monotonic += 1
            precondition(!r.message.contains("\n"), "export format's text fields are one line")
            text += "__REALTIME_TIMESTAMP=\(r.realtimeMicroseconds)\n__MONOTONIC_TIMESTAMP=\(monotonic)\n"
            text += "_BOOT_ID=5e1f0c0ffee0400a8a1d0e5c0a7f0001\n_HOSTNAME=node-a\n_TRANSPORT=stdout\n"
            text += "_SYSTEMD_UNIT=\(r.unit)\nSYSLOG_IDENTIFIER=\(r.unit.replacingOccurrences(of: ".service", with: ""))\n"
            text += "MESSAGE=\(r.message)\n\n"
        }
        input.fileHandleForWriting.write(Data(text.utf8))
        try waitForEntries(atLeast: Int(monotonic))
    }

    /// Waits until journalctl reads `count` entries from the file.
    private func waitForEntries(atLeast count: Int) throws {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let (status, out) = try Command.run("/usr/bin/journalctl", ["--directory=\(directory)", "--output=cat", "--output-fields=_HOSTNAME", "--no-pager", "--quiet"])
            let seen = out.split(separator: "\n", omittingEmptySubsequences: false).count - 1
            if status == 0, seen >= count { return }
            guard Date() < deadline else { throw Failure("the journal shows \(seen) of \(count) entries after 30 s (journalctl exit \(status))") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// kubelet.log and containerd.log of the real node as the journal holds them: one record per
    /// line, each unit's lines in their order, the two merged by the lines' own times.
    static func nodeRecords(kubelet: [[UInt8]], containerd: [[UInt8]]) -> [Record] {
        var records: [Record] = []
        for line in kubelet {
            let text = String(decoding: line, as: UTF8.self)
            records.append(Record(unit: "kubelet.service", message: text, realtimeMicroseconds: klogMicroseconds(text) ?? records.last?.realtimeMicroseconds ?? 0))
        }
        for line in containerd {
            let text = String(decoding: line, as: UTF8.self)
            records.append(Record(unit: "containerd.service", message: text, realtimeMicroseconds: logrusMicroseconds(text) ?? 0))
        }
        // stable: each unit keeps its own order
        return records.enumerated().sorted { ($0.element.realtimeMicroseconds, $0.offset) < ($1.element.realtimeMicroseconds, $1.offset) }.map(\.element)
    }

    /// `I1206 03:01:08.836629 …` (klog has no year: the recording's, 2026).
    static func klogMicroseconds(_ line: String) -> Int64? {
        let b = Array(line.utf8)
        guard b.count > 21, "IWEF".utf8.contains(b[0]), b[5] == UInt8(ascii: " "), b[14] == UInt8(ascii: ".") else { return nil }
        let s = String(decoding: b[1..<21], as: UTF8.self)  // MMDD HH:MM:SS.ffffff
        let text = "2026-\(s.prefix(2))-\(s.dropFirst(2).prefix(2))T\(s.dropFirst(5).prefix(15))"
        return Recordings.unixNs(text) / 1000
    }

    /// `time="2026-12-06T03:01:08.836629805Z" …`
    static func logrusMicroseconds(_ line: String) -> Int64? {
        guard line.hasPrefix("time=\""), line.count > 36 else { return nil }
        return Recordings.unixNs(String(line.dropFirst(6).prefix(29))) / 1000
    }
}
