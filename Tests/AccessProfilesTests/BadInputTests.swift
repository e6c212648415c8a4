import AccessProfiles
import Foundation
import PodstartCore
import Testing

@Suite struct BadInputTests {
    @Test func malformedTraceLinesAreCountedAndNamedByLine() throws {
        let good = Make.lines([Make.trace("u1", [.init(path: "/a", ms: 0)]), Make.trace("u2", [.init(path: "/b", ms: 0)])])
        let lines = good.split(separator: "\n").map(String.init)
        let text = [lines[0], "{not json", "", "{\"schemaVersion\":\"other/v9\"}", lines[1], "[1,2]"].joined(separator: "\n") + "\n"
        let (traces, malformed) = TraceFiles.parse(Array(text.utf8))
        #expect(traces.count == 2)
        #expect(malformed.map(\.line) == [2, 4, 6])
        #expect(malformed[0].reason.contains("invalid JSON"))
        #expect(malformed[1].reason.contains("schemaVersion"))

        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try dir.write("traces.jsonl", text)
        let error = #expect(throws: TraceFiles.ReadError.self) { try TraceFiles.load(paths: [path], skipMalformed: false) }
        let message = error?.description ?? ""
        #expect(message.contains("3 of 5 traces are malformed") && message.contains("line 2:") && message.contains("line 6:")
                && message.contains(path) && message.contains("--skip-malformed"), "\(message)")
        var warnings: [String] = []
        let kept = try TraceFiles.load(paths: [path], skipMalformed: true) { warnings.append($0) }
        #expect(kept.count == 2)
        #expect(warnings.count == 1 && warnings[0].contains("line 4:"))
    }

    @Test func aMissingOrEmptyTraceFileIsAnErrorNamingIt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let missing = dir.file("nope.json")
        let e1 = #expect(throws: TraceFiles.ReadError.self) { try TraceFiles.load(paths: [missing], skipMalformed: true) }
        #expect(e1?.description.contains(missing) == true)
        let empty = try dir.write("empty.json", "\n\n")
        let e2 = #expect(throws: TraceFiles.ReadError.self) { try TraceFiles.load(paths: [empty], skipMalformed: true) }
        #expect(e2?.description.contains("holds no trace") == true)
    }

    @Test func wholeFileObjectsAndArraysAreRead() throws {
        let traces = [Make.trace("u1", [.init(path: "/a", ms: 0)]), Make.trace("u2", [.init(path: "/b", ms: 0)])]
        let array = "[\n" + traces.map { $0.json().rendered() }.joined(separator: ",\n") + "\n]\n"
        #expect(TraceFiles.parse(Array(array.utf8)).traces == traces)
        let pretty = traces[0].json().rendered().replacingOccurrences(of: ",\"", with: ",\n  \"")
        #expect(TraceFiles.parse(Array(pretty.utf8)).traces == [traces[0]])
    }

    @Test func pathsWithNewlinesOrDotDotAreNeverExported() throws {
        let t = Make.trace("u1", [.init(path: "/ok", ms: 0, ranges: [[0, 1]]),
                                  .init(path: "/evil\n/etc/shadow", ms: 1),
                                  .init(path: "/x/../../etc/shadow", ms: 2),
                                  .init(path: "relative/path", ms: 3),
                                  .init(path: "/a\r", ms: 4),
                                  .init(path: "/sp ", ms: 5)])
        let profile = ImageProfile(traces: [t], imageDigest: Make.digest)
        #expect(profile.files.map(\.path) == ["/ok"])
        #expect(profile.rejectedPaths.count == 5)
        #expect(profile.rejectedPaths["/evil\n/etc/shadow"] == .controlCharacter)
        #expect(profile.rejectedPaths["/x/../../etc/shadow"] == .dotComponent)
        let plan = PrefetchPlan(profile: profile)
        for format in PrefetchFormat.allCases {
            let text = try PrefetchExport.document(plan, format: format)
            #expect(!text.contains("shadow") && !text.contains("relative"), "\(format): \(text)")
        }
    }

    @Test func atomicWriteReplacesWholeOrLeavesTheOldFileAndNoTemporary() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let target = try dir.write("list.txt", "old\n")
        try AtomicFile.write("new\n", to: target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new\n")
        #expect(dir.entries() == ["list.txt"])
        // a directory in the way: the rename fails, nothing is left behind
        try FileManager.default.createDirectory(atPath: dir.file("taken"), withIntermediateDirectories: false)
        try "keep\n".write(toFile: dir.file("taken/inside"), atomically: false, encoding: .utf8)
        let error = #expect(throws: AtomicFile.WriteError.self) { try AtomicFile.write("x\n", to: dir.file("taken")) }
        #expect(error?.description.contains("rename") == true)
        #expect(dir.entries() == ["list.txt", "taken"])
        let missingDir = dir.file("no/such/dir/list.txt")
        #expect(throws: AtomicFile.WriteError.self) { try AtomicFile.write("x\n", to: missingDir) }
    }
}
