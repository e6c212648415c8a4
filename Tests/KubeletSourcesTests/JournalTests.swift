import Foundation
import Testing
@testable import KubeletSources

/// `--journal`: records of `journalctl -o json` for the kubelet and containerd units, read through
/// a real child process. No journald runs on the test machines, so a fake `journalctl` script is
/// put first on the PATH the reader searches; it serves records made from the sample journal and
/// honours `--after-cursor` and `-f` like the real one.
@Suite struct JournalTests {
    /// The sample journal as `journalctl -o json` records, with cursors `s=podstart;i=<n>`.
    static func records() throws -> [String] {
        var out: [String] = []
        for (i, line) in try Samples.text("kubelet-journal-sample.log").split(separator: "\n").enumerated() {
            let s = String(line)
            guard let colon = s.range(of: "]: ") else { continue }
            let prefix = s[..<colon.lowerBound]
            let unit = prefix.contains("containerd[") ? "containerd.service" : "kubelet.service"
            let message = String(s[colon.upperBound...])
            let obj: [String: Any] = [
                "__CURSOR": "s=podstart;i=\(i + 1)", "__REALTIME_TIMESTAMP": String(1_732_896_790_000_000 + i),
                "_SYSTEMD_UNIT": unit, "SYSLOG_IDENTIFIER": unit.replacingOccurrences(of: ".service", with: ""),
                "MESSAGE": message,
            ]
            out.append(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
        return out
    }

    final class FakeJournal {
        let dir: String
        init(records: [String]) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-journal-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try (records.joined(separator: "\n") + "\n").write(toFile: dir + "/records.jsonl", atomically: true, encoding: .utf8)
            let script = """
                #!/bin/sh
                # A stand-in for journalctl: prints records.jsonl (after --after-cursor), then in -f
                # mode waits like `journalctl -f` does.
                printf '%s\\n' "$*" >> "\(dir)/args.log"
                after=""; follow=0
                while [ $# -gt 0 ]; do
                  case "$1" in
                    --after-cursor) after="$2"; shift ;;
                    -f) follow=1 ;;
                  esac
                  shift
                done
                if [ -n "$after" ]; then
                  awk -v c="\\"__CURSOR\\":\\"$after\\"" 'found { print } index($0, c) > 0 { found = 1 }' "\(dir)/records.jsonl"
                else
                  cat "\(dir)/records.jsonl"
                fi
                if [ "$follow" = 1 ]; then exec sleep 600; fi
                """
            try script.write(toFile: dir + "/journalctl", atomically: true, encoding: .utf8)
            chmod(dir + "/journalctl", 0o755)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }
        var path: String { dir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") }
        var args: [String] { ((try? String(contentsOfFile: dir + "/args.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        func append(_ records: [String]) throws {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/records.jsonl"))
            try h.seekToEnd()
            h.write(Data((records.joined(separator: "\n") + "\n").utf8))
            try h.close()
        }
    }

    @Test func recordsParseIncludingByteArrayMessages() throws {
        let r = try #require(JournalRecord.parse(Array(#"{"__CURSOR":"s=1;i=2","_SYSTEMD_UNIT":"kubelet.service","__REALTIME_TIMESTAMP":"1732896797944352","MESSAGE":[73,49,50,10,255]}"#.utf8)))
        #expect(r.cursor == "s=1;i=2" && r.unit == "kubelet.service" && r.realtimeMicroseconds == 1_732_896_797_944_352)
        #expect(r.message == [73, 49, 50, 10, 255])
        #expect(JournalRecord.parse(Array(#"{"MESSAGE":"no cursor"}"#.utf8)) == nil)
        #expect(JournalRecord.parse(Array("not json".utf8)) == nil)
        #expect(JournalRecord.parse(Array(#"{"__CURSOR":"c","MESSAGE":[73,256]}"#.utf8)) == nil, "a message byte above 255")
        #expect(JournalRecord.parse(Array(#"{"__CURSOR":"c","MESSAGE":"x"} trailing"#.utf8)) == nil)
    }

    @Test func readsBothUnitsThroughJournalctlAndAnalyses() throws {
        let fake = try FakeJournal(records: try Self.records() + ["-- garbage line --"])
        var reader = JournalctlReader(units: ["kubelet", "containerd"])
        reader.searchPath = fake.path
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        let counters = try reader.readAll { scanner.processLine($0) }
        #expect(counters.records == 52 && counters.malformedRecords == 1)
        #expect(reports.map(\.pod) == ["shop/web-7d9f8c6b5-x2kqz", "kube-system/coredns-6f6b679f8f-5m7kq"])
        #expect(reports[0].containerdPullNanoseconds == 4_686_174_179)
        #expect(reports[0].correctedSloNanoseconds == Int64(3_258_143_511))
        #expect(fake.args == ["-o json --no-pager -u kubelet -u containerd"])
    }

    @Test func followResumesAfterTheSavedCursorWithoutLossOrRepeat() throws {
        let all = try Self.records()
        let fake = try FakeJournal(records: Array(all[..<20]))
        let store = JournalCursorStore(path: fake.dir + "/cursor")
        var reader = JournalctlReader(units: ["kubelet", "containerd"])
        reader.searchPath = fake.path
        var seen: [String] = []
        // First run: follow until the 20 records have come, then stop (a clean shutdown).
        _ = try reader.run(follow: true, cursorStore: store, shouldStop: { seen.count >= 20 }) { seen.append($0.cursor) }
        #expect(seen.count == 20)
        #expect(store.load() == "s=podstart;i=20")
        // While podstart is down, journald gets more.
        try fake.append(Array(all[20...]))
        var second: [String] = []
        _ = try reader.run(follow: true, cursorStore: store, shouldStop: { second.count >= all.count - 20 }) { second.append($0.cursor) }
        #expect(seen + second == (1...all.count).map { "s=podstart;i=\($0)" }.filter { c in all.contains { $0.contains(c + "\"") } })
        #expect(Set(seen).isDisjoint(with: second))
        #expect(fake.args.last == "-o json --no-pager -f -u kubelet -u containerd --after-cursor s=podstart;i=20")
    }

    /// `journalctl -o json > node.json; podstart analyze --kubelet-log node.json` works too.
    @Test func journalJSONExportFilesAreRecognised() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-export-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try (try Self.records().joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        try scanner.scanDetectingFormat(fd: fd)
        #expect(reports.map(\.pod) == ["shop/web-7d9f8c6b5-x2kqz", "kube-system/coredns-6f6b679f8f-5m7kq"])
        #expect(reports.first?.correctedSloNanoseconds == Int64(3_258_143_511))
        #expect(scanner.journalRecordsSkipped == 0)
        // A plain log through the same entry point.
        let plain = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-plain-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: plain) }
        try Samples.text("kubelet-journal-sample-v1.36.log").write(toFile: plain, atomically: true, encoding: .utf8)
        var v4: [PodStartReport] = []
        let s2 = KubeletLogScanner { v4.append($0) }
        let fd2 = open(plain, O_RDONLY)
        defer { close(fd2) }
        try s2.scanDetectingFormat(fd: fd2)
        #expect(v4.map(\.observation.variant) == [.v4, .v4])
    }

    @Test func missingJournalctlSaysWhatToDo() {
        var reader = JournalctlReader(units: ["kubelet"])
        reader.searchPath = "/nonexistent"
        #expect(throws: JournalError.journalctlNotFound) { _ = try reader.readAll { _ in } }
    }
}
