import AccessProfiles
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// Trace and profile JSON at the ends of its number ranges (#16.1): dates Int64 nanoseconds
/// cannot hold and sizes past 2^53 are refused with an error naming the field; sums over many
/// valid values saturate instead of trapping. `profile plan` used to exit 132 on such files.
@Suite struct HostileNumbersTests {
    /// A trace's JSON with `replace` applied to its text.
    static func traceText(_ replace: (String) -> String = { $0 }, sizeBytes: UInt64 = 4096) -> String {
        let t = Make.trace("u1", [.init(path: "/bin/app", ms: 1.5, ranges: [[0, 4096]], size: sizeBytes)])
        return replace(t.json().rendered())
    }

    static func decode(_ text: String) throws -> PodStartTrace {
        try PodStartTrace(json: JSON.parse(text))
    }

    @Test func datesOutsideInt64NanosecondsAreRefusedNamingTheField() throws {
        for year in ["9999", "2263", "0001", "1600"] {
            let text = Self.traceText { $0.replacingOccurrences(of: "\"created\":\"2023", with: "\"created\":\"\(year)") }
            let error = #expect(throws: PodStartTrace.DecodeError.self) { try Self.decode(text) }
            #expect(error?.description.contains("created") == true, "\(year): \(String(describing: error))")
        }
        #expect(Timestamp.parseRFC3339("2262-04-11T23:47:16.854775807Z") == .max)
        #expect(Timestamp.parseRFC3339("2262-04-11T23:47:16.854775808Z") == nil)
        #expect(Timestamp.parseRFC3339("1677-09-21T00:12:43.145224192Z") == .min)
        #expect(Timestamp.parseRFC3339("1677-09-21T00:12:43.145224191Z") == nil)
    }

    /// Both ends valid but centuries apart: end to end and every span saturate at Int64's range.
    @Test func spansCenturiesLongSaturateInsteadOfTrapping() throws {
        var t = Make.trace("u1", [.init(path: "/bin/app", ms: 0)])
        t.created = .min
        t.ready = .max
        t.phases = [PhaseSpan(name: .pull, start: .min, end: .max, parent: nil, source: .kernel),
                    PhaseSpan(name: .pull, start: .min, end: .max, parent: nil, source: .kernel)]
        #expect(t.e2eNanoseconds == .max)
        #expect(t.phases[0].nanoseconds == .max)
        #expect(t.seconds(of: .pull) == Double(Int64.max) / 1e9)
        let back = try PodStartTrace(json: JSON.parse(t.json().rendered()))
        #expect(back.created == .min && back.ready == .max)
    }

    @Test func sizesAndOffsetsPast2To53AreRefusedNamingTheField() throws {
        let big = "9223372036854775807"
        let cases: [(String, String)] = [
            ("\"sizeBytes\":4096", "\"sizeBytes\":\(big)"),
            ("\"bytes\":4096", "\"bytes\":\(big)"),
            ("\"opens\":1", "\"opens\":\(big)"),
            ("\"ranges\":[[0,4096]]", "\"ranges\":[[9007199254740992,1]]"),
            ("\"ranges\":[[0,4096]]", "\"ranges\":[[1,9007199254740992]]"),
            ("\"firstAccessMs\":1.5", "\"firstAccessMs\":1e300"),
        ]
        for (from, to) in cases {
            let text = Self.traceText { $0.replacingOccurrences(of: from, with: to) }
            #expect(text.contains(to), "the fixture changed: \(from) not in \(Self.traceText())")
            let field = String(to.dropFirst().prefix { $0 != "\"" })
            let error = #expect(throws: PodStartTrace.DecodeError.self) { try Self.decode(text) }
            #expect(error?.description.contains(field) == true, "\(to): \(String(describing: error))")
        }
        // 2^53 itself is a byte count a trace may hold.
        let edge = Self.traceText(sizeBytes: 1 << 53)
        #expect(try Self.decode(edge).containers[0].accesses[0].sizeBytes == 1 << 53)
    }

    @Test func profileSizesPast2To53AreRefused() throws {
        let profile = ImageProfile(traces: [Make.trace("u1", [.init(path: "/bin/app", ms: 1, ranges: [[0, 10]], size: 10)])],
                                   imageDigest: Make.digest)
        let text = profile.json().rendered()
        for (from, to) in [("\"sizeBytes\":10", "\"sizeBytes\":9223372036854775807"),
                           ("\"ranges\":[[0,10]]", "\"ranges\":[[9223372036854775807,9223372036854775807]]"),
                           ("[0,1,1]", "[0,1,9223372036854775807]"),
                           ("[0,1,1]", "[0,1e308,1]")] {
            let hostile = text.replacingOccurrences(of: from, with: to)
            #expect(hostile != text, "the fixture changed: \(from) not in \(text)")
            #expect(throws: ImageProfile.DecodeError.self) { try ImageProfile.parse(hostile) }
        }
    }

    /// Thousands of files at the largest size a trace may hold: the plan's sums pass UInt64 and
    /// saturate; the budget still keeps what fits.
    @Test func planSumsOverManyHugeFilesSaturate() {
        let accesses = (0..<3000).map { Make.A(path: "/f\($0)", ms: Double($0), ranges: [[0, 1 << 53]], size: 1 << 53) }
        let profile = ImageProfile(traces: [Make.trace("u1", accesses)], imageDigest: Make.digest)
        let plan = PrefetchPlan(profile: profile)
        #expect(plan.files.count == 3000)
        #expect(plan.prefetchBytes == .max && plan.readBytes == .max && profile.readBytes == .max)
        let budgeted = PrefetchPlan(profile: profile, options: .init(budgetBytes: .max))
        #expect(budgeted.files.count == 2047, "2047 × 2^53 fits in UInt64; the rest are over budget")
        #expect(budgeted.overBudget == 3000 - 2047)
    }

    /// What a user runs: `podstart profile plan` on such files fails with the error (status 1),
    /// or plans (status 0, valid JSON); it never traps.
    @Test func profilePlanOnHostileTracesFailsCleanlyOrPlans() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let binary = try LocalEnvironment.podstartBinary()
        let dated = try dir.write("dated.jsonl", Self.traceText { $0.replacingOccurrences(of: "\"created\":\"2023", with: "\"created\":\"9999") } + "\n")
        let (status, output) = LocalEnvironment.run([binary, "profile", "plan", "--from", dated, "--output", "json"])
        #expect(status == 1, "\(output)")
        #expect(output.contains("created"), "\(output)")

        let huge = (0..<3000).map { Make.A(path: "/f\($0)", ms: Double($0), ranges: [[0, 1 << 53]], size: 1 << 53) }
        let many = try dir.write("many.jsonl", Make.lines([Make.trace("u1", huge)]))
        let (ok, planned) = LocalEnvironment.run([binary, "profile", "plan", "--from", many, "--output", "json",
                                                  "--budget-bytes", "18446744073709551615"])
        #expect(ok == 0, "\(planned.prefix(2000))")
        let line = try #require(planned.split(separator: "\n").first { $0.hasPrefix("{") })
        #expect((try? JSON.parse(String(line))) != nil)
    }
}
