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

    @Test func nydusAndOverlaybdAndPathsAreAbsolutePathsOneALine() throws {
        let expected = "/usr/bin/app\n/etc/app.conf\n/opt/data/idx \"q\".bin\n/usr/lib/libü.so\n"
        for format in [PrefetchFormat.nydus, .overlaybd, .paths] {
            #expect(try PrefetchExport.document(plan, format: format) == expected, "\(format)")
        }
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
