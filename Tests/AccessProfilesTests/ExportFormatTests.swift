import Foundation
import AccessProfiles
import PodstartCore
import Testing

@Suite struct ExportFormatTests {
    let plan: PrefetchPlan = {
        let t1 = Make.trace("u1", [.init(path: "/usr/bin/app", ms: 0, ranges: [[0, 8192], [16384, 4096]], size: 40000),
                                   .init(path: "/etc/app.conf", ms: 1, ranges: [[0, 120]], size: 120),
                                   .init(path: "/opt/data/idx \"q\".bin", ms: 2),
                                   .init(path: "/usr/lib/libü.so", ms: 3, ranges: [[4096, 4096]], size: 9000)])
        return PrefetchPlan(profile: ImageProfile(traces: [t1], imageDigest: Make.digest))
    }()

    @Test func estargzIsJSONLinesOfPathsWithoutLeadingSlashInFirstAccessOrder() throws {
        let text = try PrefetchExport.document(plan, format: .estargz)
        #expect(text == """
            {"path":"usr/bin/app"}
            {"path":"etc/app.conf"}
            {"path":"opt/data/idx \\"q\\".bin"}
            {"path":"usr/lib/libü.so"}

            """)
    }

    @Test func nydusAndPathsAreAbsolutePathsOneALine() throws {
        let expected = "/usr/bin/app\n/etc/app.conf\n/opt/data/idx \"q\".bin\n/usr/lib/libü.so\n"
        for format in [PrefetchFormat.nydus, .paths] {
            #expect(try PrefetchExport.document(plan, format: format) == expected, "\(format)")
        }
    }

    /// overlaybd's prefetcher keeps a line only when every component is A-Z a-z 0-9 _ - . : the
    /// others would be skipped without a word, so the export leaves them out and says so.
    @Test func overlaybdLeavesOutPathsItWouldSkipAndSaysWhich() throws {
        let document = try PrefetchExport.export(plan, format: .overlaybd)
        #expect(document.text == "/usr/bin/app\n/etc/app.conf\n")
        #expect(document.omitted.map(\.path) == ["/opt/data/idx \"q\".bin", "/usr/lib/libü.so"])
        #expect(document.omitted.allSatisfy { $0.reason.contains("A-Z a-z 0-9 _ - .") })
        #expect(try PrefetchExport.export(plan, format: .paths).omitted.isEmpty)
        #expect(PrefetchExport.overlaybdAccepts("/usr/lib/x86_64-linux-gnu/libc.so.6"))
        for path in ["/usr/lib/python3/dist-packages/a+b.py", "/opt/my app/x", "/usr/lib/libü.so", "/x/@scope/y"] {
            #expect(!PrefetchExport.overlaybdAccepts(path), "\(path)")
        }
    }

    /// overlaybd refuses a whole list over 65,536 bytes: the export stops before it, in plan order.
    @Test func overlaybdListsStayWithinItsSizeLimit() throws {
        let files = (0 ..< 2000).map { Make.A(path: String(format: "/usr/share/app/modules/module_%04d/__init__.py", $0), ms: Double($0)) }
        let big = PrefetchPlan(profile: ImageProfile(traces: [Make.trace("u1", files)], imageDigest: Make.digest))
        let document = try PrefetchExport.export(big, format: .overlaybd)
        let kept = document.text.split(separator: "\n").map(String.init)
        #expect(document.text.utf8.count <= PrefetchExport.overlaybdMaxBytes)
        #expect(document.text.utf8.count + 47 > PrefetchExport.overlaybdMaxBytes, "stopped early: \(document.text.utf8.count) bytes")
        #expect(kept == Array(big.files.prefix(kept.count).map(\.path)), "the head of the plan, in order")
        #expect(kept.count + document.omitted.count == big.files.count)
        #expect(document.omitted.allSatisfy { $0.reason.contains("65536 bytes") })
        // the checker refuses what overlaybd would refuse
        let tooBig = big.files.map { $0.path + "\n" }.joined()
        #expect(throws: FormatViolation.self) { try PrefetchExport.check(tooBig, format: .overlaybd) }
        #expect(throws: Never.self) { try PrefetchExport.check(tooBig, format: .paths) }
        #expect(throws: FormatViolation.self) { try PrefetchExport.check("/a+b\n", format: .overlaybd) }
    }

    @Test func nydusJSONCarriesRangesAndLeavesThemOutForUnreadFiles() throws {
        let text = try PrefetchExport.document(plan, format: .nydusJSON)
        #expect(text == #"{"version":"v1","files":[{"path":"/usr/bin/app","ranges":[[0,8192],[16384,4096]]},{"path":"/etc/app.conf","ranges":[[0,120]]},{"path":"/opt/data/idx \"q\".bin"},{"path":"/usr/lib/libü.so","ranges":[[4096,4096]]}]}"# + "\n")
    }

    @Test func jsonIsTheVersionedProfile() throws {
        let text = try PrefetchExport.document(plan, format: .json)
        #expect(try ImageProfile.parse(text) == plan.profile)
    }

    @Test func anEmptyPlanIsAnEmptyListInLineFormatsAndValid() throws {
        let empty = PrefetchPlan(profile: ImageProfile(imageDigest: Make.digest))
        for format in PrefetchFormat.allCases { _ = try PrefetchExport.document(empty, format: format) }
        #expect(PrefetchExport.render(empty, format: .estargz) == "")
        #expect(PrefetchExport.render(empty, format: .nydusJSON) == "{\"version\":\"v1\",\"files\":[]}\n")
    }

    static let badLists: [(PrefetchFormat, String, String)] = [
        (.estargz, "{\"path\":\"/usr/bin/app\"}\n", "leading '/'"),
        (.estargz, "{\"path\":\"usr/../etc/shadow\"}\n", "'..'"),
        (.estargz, "{\"path\":\"usr/bin/a\\npp\"}\n", "newline"),
        (.estargz, "{\"path\":\"a\"}\n{\"path\":\"a\"}\n", "repeats"),
        (.estargz, "{\"path\":\"a\",\"size\":3}\n", "unknown key"),
        (.estargz, "usr/bin/app\n", "not JSON"),
        (.estargz, "{\"path\":\"a\"}", "no newline"),
        (.estargz, "{\"path\":\"a\"}\n\n{\"path\":\"b\"}\n", "empty line"),
        (.nydus, "usr/bin/app\n", "not absolute"),
        (.nydus, "/usr/lib\n/usr/lib/x.so\n", "covered by the earlier"),
        (.nydus, "/usr/bin/app\r\n", "control character"),
        (.nydus, "/usr/bin/app \n", "white space"),
        (.nydus, "/usr//bin\n", "'//'"),
        (.nydus, "/usr/./bin\n", "'.'"),
        (.nydusJSON, "{\"version\":\"v2\",\"files\":[]}", "\"v1\""),
        (.nydusJSON, "{\"version\":\"v1\",\"files\":[{\"path\":\"a\"}]}", "not absolute"),
        (.nydusJSON, "{\"version\":\"v1\",\"files\":[{\"path\":\"/a\",\"ranges\":[[0,0]]}]}", "size > 0"),
        (.nydusJSON, "{\"version\":\"v1\",\"files\":[{\"path\":\"/a\",\"ranges\":[[10,5],[0,5]]}]}", "sorted"),
        (.nydusJSON, "{\"version\":\"v1\",\"files\":[{\"path\":\"/a\"},{\"path\":\"/a\"}]}", "repeats"),
        (.nydusJSON, "{\"version\":\"v1\"}", "\"files\""),
        (.overlaybd, "\u{20}\u{18}", "no newline"),
        // the binary trace's magic (0xC2EF1820, little-endian) begins with a space: never a path
        (.overlaybd, "\u{20}\u{18}x\n", "not absolute"),
        (.overlaybd, "/a\n/a\n", "repeats"),
        (.paths, "/a/../b\n", "'..'"),
        (.json, "{\"schemaVersion\":\"podstart.dev/profile/v9\"}", "schemaVersion"),
    ]

    @Test(arguments: badLists)
    func checkerRefusesAListThatBreaksItsFormat(format: PrefetchFormat, text: String, expected: String) {
        let violation = #expect(throws: FormatViolation.self) { try PrefetchExport.check(text, format: format) }
        #expect(violation?.description.contains(expected) == true, "\(format): \(String(describing: violation))")
    }
}
