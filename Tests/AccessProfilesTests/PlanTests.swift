import AccessProfiles
import PodstartCore
import Testing

@Suite struct PlanTests {
    /// Five starts: /common in all, /rare in one, /half in three; /late read last.
    let profile: ImageProfile = {
        var traces: [PodStartTrace] = []
        for i in 1...5 {
            var a: [Make.A] = [.init(path: "/common", ms: Double(i), ranges: [[0, 1000]], size: 1000)]
            if i == 1 { a.append(.init(path: "/rare", ms: 0.5, ranges: [[0, 10]], size: 10)) }
            if i <= 3 { a.append(.init(path: "/half", ms: 20, ranges: [[0, 4096]], size: 100_000)) }
            a.append(.init(path: "/late", ms: 50, ranges: [[0, 500]], size: 500))
            traces.append(Make.trace("u\(i)", imageBytes: 1_000_000, a))
        }
        return ImageProfile(traces: traces, imageDigest: Make.digest)
    }()

    @Test func minShareKeepsFilesReadInEnoughStarts() {
        #expect(PrefetchPlan(profile: profile, options: .init(minShare: 0.2)).files.map(\.path) == ["/rare", "/common", "/half", "/late"])
        let plan = PrefetchPlan(profile: profile, options: .init(minShare: 0.3))
        #expect(plan.files.map(\.path) == ["/common", "/half", "/late"])
        #expect(plan.belowShare == 1)
        #expect(PrefetchPlan(profile: profile, options: .init(minShare: 0.6)).files.map(\.path) == ["/common", "/half", "/late"],
                "3 of 5 is 0.6 exactly")
        #expect(PrefetchPlan(profile: profile, options: .init(minShare: 0.61)).files.map(\.path) == ["/common", "/late"])
        #expect(PrefetchPlan(profile: profile, options: .init(minShare: 0)).files.count == 4, "0 still needs one start")
    }

    @Test func defaultMinShareKeepsAFileOneStartInFiveRead() {
        #expect(PrefetchPlan.Options().minShare == 0.2)
        #expect(PrefetchPlan(profile: profile).files.contains { $0.path == "/rare" })
    }

    @Test func filesAreOrderedByMedianFirstAccess() {
        let plan = PrefetchPlan(profile: profile)
        let medians = plan.files.map(\.medianFirstAccessMs)
        #expect(medians == medians.sorted())
        #expect(plan.files.first { $0.path == "/common" }?.medianFirstAccessMs == 3)
    }

    @Test func budgetSkipsFilesThatDoNotFitAndKeepsSmallerLaterOnes() {
        // whole files: /rare 10, /common 1000, /half 100000, /late 500
        let plan = PrefetchPlan(profile: profile, options: .init(minShare: 0.2, budgetBytes: 2000))
        #expect(plan.files.map(\.path) == ["/rare", "/common", "/late"])
        #expect(plan.overBudget == 1)
        #expect(plan.prefetchBytes == 1510)
        #expect(PrefetchPlan(profile: profile, options: .init(budgetBytes: 5)).files.isEmpty)
    }

    @Test func prefetchBytesCountWholeFilesAndReadBytesTheRanges() {
        let plan = PrefetchPlan(profile: profile)
        #expect(plan.prefetchBytes == 10 + 1000 + 100_000 + 500)
        #expect(plan.readBytes == 10 + 1000 + 4096 + 500)
    }

    @Test func directoriesAreNeverPlanned() {
        let t = Make.trace("d1", [.init(path: "/usr/lib", ms: 0), .init(path: "/usr/lib/x.so", ms: 1),
                                  .init(path: "/usr/lib-extra", ms: 2), .init(path: "/opt/a/b/c", ms: 3), .init(path: "/opt", ms: 4)])
        let plan = PrefetchPlan(profile: ImageProfile(traces: [t], imageDigest: Make.digest))
        #expect(plan.files.map(\.path) == ["/usr/lib/x.so", "/usr/lib-extra", "/opt/a/b/c"])
        #expect(plan.directories == 2)
    }

    @Test func planJSONCarriesRangesSharesAndTheImageShare() throws {
        let json = PrefetchPlan(profile: profile).json()
        #expect(json["imageShare"]?.doubleValue == Double(101_510) / 1_000_000)
        let first = try #require(json["files"]?.arrayValue?.first)
        #expect(first["path"]?.stringValue == "/rare")
        #expect(first["share"]?.doubleValue == 0.2)
        #expect(first["ranges"]?.rendered() == "[[0,10]]")
    }
}
