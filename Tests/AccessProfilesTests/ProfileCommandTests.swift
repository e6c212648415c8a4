import AccessProfiles
import Foundation
import PodstartCore
import PodstartTestSupport
import StateStore
import Testing

/// `podstart profile …` through the built binary, on traces recorded from real starts
/// (Fixtures/: `podstart trace --output json` against scripts/localenv.sh; small-files started
/// with five commands that each read f0001, f0002 and a few other files).
@Suite struct ProfileCommandTests {
    let binary: String
    let modes = Fixtures.path("small-files-modes.jsonl")
    let heldOut = Fixtures.path("small-files-heldout.json")

    init() throws { binary = try LocalEnvironment.podstartBinary() }

    func podstart(_ arguments: [String]) -> (Int32, String) {
        LocalEnvironment.run([binary, "profile"] + arguments)
    }

    func jsonLine(_ output: String) throws -> JSON {
        try JSON.parse(String(try #require(output.split(separator: "\n").first { $0.hasPrefix("{") }, "no JSON in: \(output)")))
    }

    @Test func planListsFilesReadInEnoughStartsInMedianOrder() throws {
        let (status, output) = podstart(["plan", "--from", modes, "--output", "json"])
        #expect(status == 0, "\(output)")
        let plan = try jsonLine(output)
        #expect(plan["starts"]?.int64Value == 4)
        let paths = plan["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
        // every image file some start read (each mode's files were read in at least 1 of 4 starts)
        #expect(Set(paths) == Set(["/etc/passwd", "/etc/group", "/bin/busybox"] + [1, 2, 10, 11, 20, 30, 40].map { String(format: "/data/small/f%04d.txt", $0) }))
        #expect(paths.count == 10, "\(paths)")
        #expect(Array(paths.prefix(3)) == ["/etc/passwd", "/etc/group", "/bin/busybox"], "runc reads the user files before the first exec")
        #expect(!paths.contains("/tmp/ready"), "a file the container created is not image content")
        let medians = plan["files"]?.arrayValue?.compactMap { $0["medianFirstAccessMs"]?.doubleValue } ?? []
        #expect(medians == medians.sorted())
        #expect(plan["imageBytes"]?.int64Value ?? 0 > 0, "the traces carry the image's unpacked size")

        let (_, strict) = podstart(["plan", "--from", modes, "--output", "json", "--min-share", "0.5"])
        let strictPaths = try jsonLine(strict)["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
        #expect(!strictPaths.contains("/data/small/f0040.txt") && strictPaths.contains("/data/small/f0011.txt"), "\(strictPaths)")
    }

    @Test func exportWritesACheckedListAtomically() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for format in PrefetchFormat.allCases {
            let out = dir.file("list.\(format.rawValue)")
            let (status, output) = podstart(["export", "--from", modes, "--format", format.rawValue, "--out", out])
            #expect(status == 0, "\(format): \(output)")
            let text = try String(contentsOfFile: out, encoding: .utf8)
            try PrefetchExport.check(text, format: format)
        }
        let estargz = try String(contentsOfFile: dir.file("list.estargz"), encoding: .utf8)
        #expect(estargz.hasPrefix("{\"path\":\"etc/passwd\"}\n{\"path\":\"etc/group\"}\n{\"path\":\"bin/busybox\"}\n"), "\(estargz)")
        #expect(dir.entries().allSatisfy { $0.hasPrefix("list.") }, "no temporary file left: \(dir.entries())")
        let (status, stdout) = podstart(["export", "--from", modes, "--format", "nydus"])
        #expect(status == 0)
        #expect(stdout.hasPrefix("/etc/passwd\n/etc/group\n/bin/busybox\n"))
    }

    @Test func listShowsEachImageWithItsStartsAndReadShare() throws {
        let reader = Fixtures.path("reader-3-starts.jsonl")
        let (status, output) = podstart(["list", "--from", modes, reader, "--output", "json"])
        #expect(status == 0, "\(output)")
        let rows = try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try JSON.parse(String($0)) }
        #expect(rows.count == 2)
        let starts = rows.compactMap { $0["starts"]?.int64Value }.sorted()
        #expect(starts == [3, 4])
        for row in rows {
            let read = try #require(row["readBytes"]?.doubleValue), image = try #require(row["imageBytes"]?.doubleValue)
            #expect(row["readShare"]?.doubleValue == read / image)
        }
        let (s2, table) = podstart(["list", "--from", modes, reader])
        #expect(s2 == 0 && table.contains("podstart-test/reader:latest") && table.contains("podstart-test/small-files:latest"), "\(table)")
    }

    @Test func showPrintsEveryFileAndItsJSONIsTheProfile() throws {
        let (status, output) = podstart(["show", "--from", modes, "--output", "json"])
        #expect(status == 0, "\(output)")
        let profile = try ImageProfile.parse(output)
        #expect(profile.starts == 4 && profile.files.count == 10)
        #expect(profile.files.first { $0.path == "/data/small/f0010.txt" }?.starts == 2)
        let (s2, table) = podstart(["show", "--from", modes])
        #expect(s2 == 0 && table.contains("2/4") && table.contains("/data/small/f0040.txt"), "\(table)")
    }

    @Test func evaluateAgainstAHeldOutStartReportsRecallPrecisionAndImageShare() throws {
        let (status, output) = podstart(["evaluate", "--from", modes, "--trace", heldOut, "--output", "json"])
        #expect(status == 0, "\(output)")
        let e = try jsonLine(output)
        // held out: passwd, group, busybox, f0001, f0002, f0011, f0030 (all profiled) and f0999 (never seen)
        #expect(e["heldOutFiles"]?.int64Value == 8)
        #expect(e["recallFiles"]?.doubleValue == 7.0 / 8)
        #expect(e["missedFiles"]?.rendered() == "[\"/data/small/f0999.txt\"]")
        let heldBytes = try #require(e["heldOutBytes"]?.doubleValue)
        #expect(e["recallBytes"]?.doubleValue == (heldBytes - 1024) / heldBytes)
        #expect(e["precisionFiles"]?.doubleValue == 7.0 / 10)
        let prefetch = try #require(e["prefetchBytes"]?.doubleValue)
        let image = try #require(e["imageBytes"]?.doubleValue)
        #expect(e["imageShare"]?.doubleValue == prefetch / image)
        #expect(e["precisionBytes"]?.doubleValue == (heldBytes - 1024) / prefetch)
        // ranges: the profiled starts read these small files whole, as the held-out one did
        let rangeBytes = try #require(e["rangePrefetchBytes"]?.doubleValue)
        #expect(rangeBytes > 0 && rangeBytes <= prefetch)
        #expect(e["rangeRecallBytes"]?.doubleValue == (heldBytes - 1024) / heldBytes)
        #expect(e["rangeOverfetch"]?.doubleValue == rangeBytes / heldBytes)
        for key in ["recallBytes", "recallFiles", "precisionBytes", "precisionFiles", "prefetchBytes", "imageBytes", "imageShare"] {
            #expect(e[key] != nil, "missing \(key)")
        }
    }

    @Test func evaluateRefusesAHeldOutStartThatIsInTheProfile() throws {
        let (status, output) = podstart(["evaluate", "--from", modes, heldOut, "--trace", heldOut])
        #expect(status != 0)
        #expect(output.contains("one of the profile's starts"), "\(output)")
    }

    @Test func malformedTraceFileFailsNamingTheLineAndWritesNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let text = try String(contentsOfFile: modes, encoding: .utf8)
        let broken = try dir.write("broken.jsonl", text.replacingOccurrences(of: "\n{", with: "\n{oops", options: [], range: nil))
        let out = dir.file("record.jsonl")
        let (status, output) = podstart(["export", "--from", broken, "--format", "estargz", "--out", out])
        #expect(status != 0)
        #expect(output.contains("3 of 4 traces are malformed") && output.contains("line 2:"), "\(output)")
        #expect(dir.entries() == ["broken.jsonl"], "nothing written: \(dir.entries())")
        let (ok, _) = podstart(["export", "--from", broken, "--format", "estargz", "--out", out, "--skip-malformed"])
        #expect(ok == 0)
    }

    @Test func unknownDigestsAndReferencesAreClearErrors() throws {
        let unknown = "sha256:" + String(repeating: "0", count: 64)
        let (s1, o1) = podstart(["plan", "--from", modes, "--image", unknown])
        #expect(s1 != 0 && o1.contains("no start of image \(unknown)") && o1.contains("small-files"), "\(o1)")
        let (s2, o2) = podstart(["plan", "--from", modes, "--image", "sha256:XYZ"])
        #expect(s2 != 0 && o2.contains("64 lowercase hex"), "\(o2)")
        let (s3, o3) = podstart(["plan", "--image", "nothing:1", "--state-dir", "/nonexistent-podstart-state"])
        #expect(s3 != 0 && o3.contains("no state database at /nonexistent-podstart-state/podstart.sqlite"), "\(o3)")
        #expect(!FileManager.default.fileExists(atPath: "/nonexistent-podstart-state"), "reading must not create the state dir")
        let (s4, o4) = podstart(["plan"])
        #expect(s4 != 0 && o4.contains("--from"), "\(o4)")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (s5, o5) = podstart(["export", "--from", modes, "--format", "estargz", "--out", dir.file("missing/dir/x")])
        #expect(s5 != 0 && o5.contains("missing/dir/x"), "\(o5)")
    }

    @Test func aTagThatRanAsTwoDigestsMustBeChosenByDigest() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = try dir.write("two.jsonl", Make.lines([
            Make.trace("a", digest: Make.digest, image: "registry.test/app:1", [.init(path: "/a", ms: 0)]),
            Make.trace("b", digest: Make.otherDigest, image: "registry.test/app:1", [.init(path: "/b", ms: 0)]),
        ]))
        let (s1, o1) = podstart(["plan", "--from", file])
        #expect(s1 != 0 && o1.contains("2 images; choose one with --image"), "\(o1)")
        let (s2, o2) = podstart(["plan", "--from", file, "--image", "registry.test/app:1"])
        #expect(s2 != 0 && o2.contains("ran as 2 digests") && o2.contains(Make.digest) && o2.contains(Make.otherDigest), "\(o2)")
        let (s3, o3) = podstart(["export", "--from", file, "--image", Make.otherDigest, "--format", "paths"])
        #expect(s3 == 0 && o3 == "/b\n", "\(o3)")
    }

    @Test func budgetAndImageBytesFlagsReachThePlan() throws {
        let (status, output) = podstart(["plan", "--from", modes, "--output", "json", "--budget-bytes", "10000", "--image-bytes", "20000"])
        #expect(status == 0, "\(output)")
        let plan = try jsonLine(output)
        #expect(plan["imageBytes"]?.int64Value == 20000)
        let prefetch = try #require(plan["prefetchBytes"]?.int64Value)
        #expect(prefetch <= 10000 && prefetch > 0)
        #expect(plan["overBudget"]?.int64Value == 1, "busybox (1.7 MB) does not fit; the small files after it do")
        #expect(plan["imageShare"]?.doubleValue == Double(prefetch) / 20000)
        let (bad, message) = podstart(["plan", "--from", modes, "--min-share", "1.5"])
        #expect(bad != 0 && message.contains("--min-share must be between 0 and 1"), "\(message)")
    }

    @Test func evaluateWantsExactlyOneHeldOutStart() throws {
        let (status, output) = podstart(["evaluate", "--from", heldOut, "--trace", modes])
        #expect(status != 0 && output.contains("holds 4 starts"), "\(output)")
    }

    @Test func imageFromTheStateStoreByReferenceOrDigest() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let traces = try Fixtures.traces("small-files-modes.jsonl") + Fixtures.traces("reader-3-starts.jsonl")
        let store = try TimelineStore(directory: dir.path, configuration: .init(maxAgeSeconds: nil, maxBytes: nil))
        for t in traces { try await store.save(t) }
        try store.close()
        let reader = try #require(traces.last?.containers.first)
        let (status, output) = podstart(["plan", "--image", reader.image, "--state-dir", dir.path, "--output", "json"])
        #expect(status == 0, "\(output)")
        let plan = try jsonLine(output)
        #expect(plan["imageDigest"]?.stringValue == reader.imageDigest)
        #expect(plan["starts"]?.int64Value == 3)
        let paths = plan["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
        #expect(paths == ["/etc/passwd", "/etc/group", "/reader", "/data/one.txt", "/data/two.bin", "/data/three.txt"], "\(paths)")
        let (s2, o2) = podstart(["plan", "--image", try #require(reader.imageDigest), "--state-dir", dir.path, "--output", "json"])
        #expect(s2 == 0, "\(o2)")
        #expect(try jsonLine(o2)["starts"]?.int64Value == 3)
    }
}
