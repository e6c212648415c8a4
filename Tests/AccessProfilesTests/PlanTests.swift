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

/// The range-level evaluation of a plan (`nydus-json` prefetches ranges, the other formats
/// whole files): a held-out start that reads past what the profiled starts read is covered
/// whole-file but not by the ranges, and the ranges fetch far fewer bytes than whole files.
@Suite struct RangeEvaluationTests {
    @Test func rangesCountOnlyTheBytesTheyHoldAndOverfetchIsTheirBytesOverTheHeldOutBytes() throws {
        let profiled = [
            Make.trace("p1", [Make.A(path: "/app/lib.so", ms: 1, ranges: [[0, 8192]], size: 1 << 20),
                              Make.A(path: "/app/conf", ms: 2, ranges: [], size: 300)]),
            Make.trace("p2", [Make.A(path: "/app/lib.so", ms: 1, ranges: [[65536, 4096]], size: 1 << 20)]),
        ]
        let plan = PrefetchPlan(profile: ImageProfile(traces: profiled, imageDigest: Make.digest),
                                options: .init(minShare: 0.1))
        #expect(plan.files.map(\.path) == ["/app/lib.so", "/app/conf"])
        // the held-out start reads the first 8 KiB and 4 KiB the profile never saw, and the config
        let held = Make.trace("h", [Make.A(path: "/app/lib.so", ms: 1, ranges: [[0, 8192], [131072, 4096]], size: 1 << 20),
                                    Make.A(path: "/app/conf", ms: 2, ranges: [[0, 300]], size: 300)])
        let e = try ProfileEvaluation(plan: plan, heldOut: held)
        #expect(e.heldOutBytes == 8192 + 4096 + 300)
        #expect(e.recallBytes == 1)  // whole files hold every byte
        #expect(e.prefetchBytes == (1 << 20) + 300)
        // ranges: lib.so's two recorded runs (12 KiB) and conf whole (opened, never read: no range)
        #expect(e.rangePrefetchBytes == 8192 + 4096 + 300)
        #expect(e.rangeRecallBytes == Double(8192 + 300) / Double(8192 + 4096 + 300))
        #expect(e.rangeOverfetch == Double(8192 + 4096 + 300) / Double(8192 + 4096 + 300))
        let json = e.json()
        let rangeBytes: Int64 = 8192 + 4096 + 300
        #expect(json["rangePrefetchBytes"]?.int64Value == rangeBytes)
        #expect(json["rangeOverfetch"]?.doubleValue == e.rangeOverfetch)
    }

    @Test func aHeldOutStartThatReadNoBytesHasNoOverfetch() throws {
        let plan = PrefetchPlan(profile: ImageProfile(traces: [Make.trace("p1", [Make.A(path: "/bin/sh", ms: 1, ranges: [[0, 4096]])])],
                                                      imageDigest: Make.digest))
        let e = try ProfileEvaluation(plan: plan, heldOut: Make.trace("h", [Make.A(path: "/bin/sh", ms: 1)]))
        #expect(e.rangeOverfetch == nil && e.rangeRecallBytes == 1)
        #expect(e.json()["rangeOverfetch"]?.isNull == true)
    }
}
