import Foundation
import Testing
@testable import KubeletSources

/// Tailing a log file across rotation and restarts: every line exactly once, in order.
@Suite struct TailTests {
    final class Dir {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-tail-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var log: String { path + "/kubelet.log" }
    }

    @Test func aPositionSavedByEarlierVersionsStillLoadsAndAGarbledOneDoesNot() throws {
        let d = try Dir()
        let saved = d.path + "/position.json"
        // what JSONEncoder wrote before the position was saved through the JSON enum
        try Data(#"{"offset":4096,"fingerprint":18446744073709551615,"inode":1234,"device":66306,"fingerprintLength":64}"#.utf8)
            .write(to: URL(fileURLWithPath: saved))
        let old = try #require(TailPosition.load(from: saved))
        #expect(old == TailPosition(device: 66306, inode: 1234, offset: 4096, fingerprint: .max, fingerprintLength: 64))
        try old.save(to: saved)
        #expect(TailPosition.load(from: saved) == old)
        try Data(#"{"offset":-1,"device":"x"}"#.utf8).write(to: URL(fileURLWithPath: saved))
        #expect(TailPosition.load(from: saved) == nil)
    }

    /// Appends through its own descriptor, like a logger that keeps the file open.
    final class Writer {
        let fd: Int32
        init(_ path: String) { fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644) }
        deinit { close(fd) }
        func write(_ s: String) { _ = s.withCString { Foundation.write(fd, $0, strlen($0)) } }
    }

    static func strings(_ lines: [[UInt8]]) -> [String] { lines.map { String(decoding: $0, as: UTF8.self) } }

    @Test func partialLinesWaitForTheirNewline() throws {
        let d = try Dir()
        let w = Writer(d.log)
        w.write("one\ntw")
        let t = LogFileTailer(path: d.log)
        #expect(Self.strings(try t.poll()) == ["one"])
        #expect(try t.poll().isEmpty)
        w.write("o\nthree\n")
        #expect(Self.strings(try t.poll()) == ["two", "three"])
        #expect(t.position?.offset == 14)
    }

    @Test func renameAndCreateDrainsTheOldFileFirst() throws {
        let d = try Dir()
        var w = Writer(d.log)
        w.write("1\n2\n")
        let t = LogFileTailer(path: d.log)
        #expect(Self.strings(try t.poll()) == ["1", "2"])
        w.write("3\n")
        #expect(rename(d.log, d.log + ".1") == 0)
        w.write("4\n5") // the logger still writes to the renamed file, then reopens
        #expect(Self.strings(try t.poll()) == ["3", "4"]) // no new file yet: keep reading the old one
        w = Writer(d.log)
        w.write("6\n7\n")
        #expect(Self.strings(try t.poll()) == ["5", "6", "7"])
        #expect(t.rotations == 1)
        w.write("8\n")
        #expect(Self.strings(try t.poll()) == ["8"])
    }

    @Test func copytruncateStartsOverAtTheBeginning() throws {
        let d = try Dir()
        let w = Writer(d.log)
        w.write("a\nb\nc\n")
        let t = LogFileTailer(path: d.log)
        #expect(Self.strings(try t.poll()) == ["a", "b", "c"])
        try FileManager.default.copyItem(atPath: d.log, toPath: d.log + ".1")
        #expect(truncate(d.log, 0) == 0)
        w.write("d\n")
        #expect(Self.strings(try t.poll()) == ["d"])
        #expect(t.truncations == 1)
        // Truncated and rewritten past the old offset between two polls: the fingerprint of the
        // first bytes tells.
        #expect(truncate(d.log, 0) == 0)
        w.write("a much longer first line than before\nsecond\n")
        #expect(Self.strings(try t.poll()) == ["a much longer first line than before", "second"])
        #expect(t.truncations == 2)
    }

    @Test func resumesFromASavedPositionWithoutLossOrRepeat() throws {
        let d = try Dir()
        let w = Writer(d.log)
        w.write("1\n2\n3")
        let saved = d.path + "/position.json"
        do {
            let t = LogFileTailer(path: d.log)
            #expect(Self.strings(try t.poll()) == ["1", "2"])
            try t.position!.save(to: saved)
        }
        w.write("\n4\n")
        let t2 = LogFileTailer(path: d.log, resumeFrom: TailPosition.load(from: saved))
        #expect(Self.strings(try t2.poll()) == ["3", "4"])
        try t2.position!.save(to: saved)
        // Rotated while podstart was down: the old file is found by inode and finished first.
        w.write("5\n")
        #expect(rename(d.log, d.log + ".1") == 0)
        let w2 = Writer(d.log)
        w2.write("6\n")
        let t3 = LogFileTailer(path: d.log, resumeFrom: TailPosition.load(from: saved))
        #expect(Self.strings(try t3.poll()) == ["5", "6"])
        // Truncated while down: start the new content from the top.
        try t3.position!.save(to: saved)
        #expect(truncate(d.log, 0) == 0)
        w2.write("7\n")
        let t4 = LogFileTailer(path: d.log, resumeFrom: TailPosition.load(from: saved))
        #expect(Self.strings(try t4.poll()) == ["7"])
    }

    @Test func tailedLinesFeedTheAnalyzerAcrossRotation() throws {
        let d = try Dir()
        let lines = try Samples.text("kubelet-journal-sample.log").split(separator: "\n").map(String.init)
        var w = Writer(d.log)
        var reports: [String] = []
        let scanner = KubeletLogScanner { reports.append($0.pod) }
        let t = LogFileTailer(path: d.log)
        for (i, l) in lines.enumerated() {
            w.write(l + "\n")
            if i == lines.count / 2 {
                _ = rename(d.log, d.log + ".1")
                w = Writer(d.log)
            }
            if i % 7 == 0 { for line in try t.poll() { line.withUnsafeBufferPointer { scanner.processLine($0) } } }
        }
        for line in try t.poll() { line.withUnsafeBufferPointer { scanner.processLine($0) } }
        #expect(reports == ["shop/web-7d9f8c6b5-x2kqz", "kube-system/coredns-6f6b679f8f-5m7kq"])
        #expect(scanner.counters.containerdEvents == 17)
    }
}
