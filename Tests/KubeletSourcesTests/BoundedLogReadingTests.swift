import Foundation
import PodstartCore
import Testing
@testable import KubeletSources

/// Reading logs in bounded memory and linear time (#16.3): a tail starts at the end of what a
/// file already holds, every mode caps a line's length (longer ones are counted and skipped),
/// and a line without a newline is never rescanned or held past the cap.
@Suite struct BoundedLogReadingTests {
    typealias Dir = TailTests.Dir
    typealias Writer = TailTests.Writer

    /// 300 MB without a newline, fed in 1 MiB reads as from a file: the pending bytes never pass
    /// the cap, the line is counted once, and the lines around it come through intact.
    @Test func a300MBLineWithoutANewlineIsSkippedInBoundedMemory() {
        let cap = 1 << 20
        var splitter = LineSplitter(maxLineBytes: cap)
        var lines: [String] = []
        splitter.feed(Array("first\nsecond".utf8)[...]) { lines.append(String(decoding: $0, as: UTF8.self)) }
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        var largestPending = 0
        for _ in 0..<300 {
            splitter.feed(chunk[...]) { lines.append(String(decoding: $0, as: UTF8.self)) }
            largestPending = max(largestPending, splitter.pendingBytes)
        }
        #expect(largestPending <= cap)
        #expect(splitter.pendingBytes == 0, "the overlong line's bytes are dropped, not held")
        #expect(splitter.partialLineBytes == 300 << 20 + 6, "its bytes are still accounted for in offsets")
        splitter.feed(Array("tail\nthird\nfour".utf8)[...]) { lines.append(String(decoding: $0, as: UTF8.self)) }
        splitter.finish { lines.append(String(decoding: $0, as: UTF8.self)) }
        #expect(lines == ["first", "third", "four"])
        #expect(splitter.oversizeLines == 1)
    }

    @Test func linesUpToTheCapAreKeptAndSplitAcrossReadsAnywhere() {
        let text = Array("a\n\nbb\nccc\ndddd\n12345\n".utf8)
        for split in 0...text.count {
            var splitter = LineSplitter(maxLineBytes: 4)
            var lines: [String] = []
            splitter.feed(text[..<split]) { lines.append(String(decoding: $0, as: UTF8.self)) }
            splitter.feed(text[split...]) { lines.append(String(decoding: $0, as: UTF8.self)) }
            #expect(lines == ["a", "", "bb", "ccc", "dddd"], "split at \(split)")
            #expect(splitter.oversizeLines == 1 && splitter.partialLineBytes == 0)
        }
    }

    /// The agent's tail of a log that is already large: the first poll returns nothing and reads
    /// nothing of the past (its position is the file's end), then new lines come through.
    @Test func aTailStartsAtTheEndOfWhatTheFileHolds() throws {
        let d = try Dir()
        let w = Writer(d.log)
        let past = String(repeating: "I1129 18:13:11.940322 old line of the past\n", count: 50_000)
        w.write(past)
        let t = LogFileTailer(path: d.log, startAtEnd: true)
        #expect(try t.poll().isEmpty)
        #expect(t.position?.offset == Int64(past.utf8.count))
        w.write("new\n")
        #expect(TailTests.strings(try t.poll()) == ["new"])
        #expect(t.position?.offset == Int64(past.utf8.count + 4))
    }

    /// A line being written when the tail starts is the past too: its rest is skipped, not
    /// returned as a fragment.
    @Test func aTailStartingInsideALineSkipsItsRest() throws {
        let d = try Dir()
        let w = Writer(d.log)
        w.write("old\nhalf of a li")
        let t = LogFileTailer(path: d.log, startAtEnd: true)
        #expect(try t.poll().isEmpty)
        w.write("ne\nnew\n")
        #expect(TailTests.strings(try t.poll()) == ["new"])
        #expect(t.oversizeLines == 0)
    }

    /// A file created after the tail started, and the next file after a rotation, are read
    /// from their start.
    @Test func aFileCreatedLaterIsReadFromItsStart() throws {
        let d = try Dir()
        let t = LogFileTailer(path: d.log, startAtEnd: true)
        #expect(try t.poll().isEmpty)
        let w = Writer(d.log)
        w.write("first\n")
        #expect(TailTests.strings(try t.poll()) == ["first"])
    }

    @Test func aSavedPositionWinsOverStartingAtTheEnd() throws {
        let d = try Dir()
        let w = Writer(d.log)
        w.write("1\n2\n")
        let first = LogFileTailer(path: d.log)
        #expect(TailTests.strings(try first.poll()) == ["1", "2"])
        let saved = try #require(first.position)
        w.write("3\n")
        let resumed = LogFileTailer(path: d.log, resumeFrom: saved, startAtEnd: true)
        #expect(TailTests.strings(try resumed.poll()) == ["3"])
    }

    /// An overlong line in a tailed file: counted, skipped, never held past the cap; the offset
    /// still counts its bytes so a saved position resumes after it.
    @Test func anOverlongTailedLineIsCountedAndSkipped() throws {
        let d = try Dir()
        let w = Writer(d.log)
        let t = LogFileTailer(path: d.log, maxLineBytes: 1024)
        w.write("before\n" + String(repeating: "y", count: 5000))
        #expect(TailTests.strings(try t.poll()) == ["before"])
        #expect(t.pendingBytes <= 1024 && t.oversizeLines == 1)
        w.write(String(repeating: "y", count: 5000) + "\nafter\n")
        #expect(TailTests.strings(try t.poll()) == ["after"])
        #expect(t.pendingBytes == 0 && t.oversizeLines == 1)
        #expect(t.position?.offset == Int64(7 + 10_001 + 6))
    }

    /// `analyze` on a journal export whose second record is far longer than the cap (the issue's
    /// 300 MB record, scaled down): the record is counted, the records after it are analysed.
    @Test func aJournalExportWithAnOverlongRecordIsAnalysedPastIt() throws {
        let d = try Dir()
        let path = d.path + "/journal.json"
        func record(_ cursor: Int, _ message: String) -> String {
            #"{"__CURSOR":"s=1;i=\#(cursor)","_SYSTEMD_UNIT":"kubelet.service","MESSAGE":\#(jsonString(message))}"# + "\n"
        }
        var text = record(1, "starting kubelet")
        text += #"{"__CURSOR":"s=1;i=2","MESSAGE":""# + String(repeating: "z", count: 3 * KubeletLogScanner.maxLineBytes) + "\"}\n"
        text += record(3, StartupLineParserTests.v3AKS)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        try scanner.scanDetectingFormat(fd: fd)
        #expect(reports.map(\.pod) == ["default/nginx"])
        #expect(scanner.counters.oversizeLines == 1)
        #expect(scanner.counters.journalRecordsSkipped == 0)
    }
}
