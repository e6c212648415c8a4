import PodstartCore
import Testing

@Suite("Phase attribution")
struct AttributionTests {
    static func m(_ p: PhaseName, _ s: Int64, _ e: Int64, _ src: PhaseSource = .cri, _ subject: String? = nil) -> PhaseMeasurement {
        PhaseMeasurement(phase: p, interval: Interval(start: s, end: e), source: src, subject: subject)
    }

    func topLevelSum(_ spans: [PhaseSpan]) -> Int64 { spans.filter { $0.parent == nil }.reduce(0) { $0 + $1.nanoseconds } }

    @Test func topLevelPhasesPartitionTheWindowExactlyWithGapsUnattributed() {
        let spans = PhaseAttribution.attribute(window: Interval(start: 0, end: 100), measurements: [
            Self.m(.sandbox, 5, 20), Self.m(.pull, 22, 60), Self.m(.create, 60, 65), Self.m(.start, 65, 70), Self.m(.probe, 70, 100),
        ])
        #expect(spans.map(\.name) == [.unattributed, .sandbox, .unattributed, .pull, .create, .start, .probe, .pullOther])
        #expect(topLevelSum(spans) == 100)
        let top = spans.filter { $0.parent == nil }
        for (a, b) in zip(top, top.dropFirst()) { #expect(a.end == b.start, "no gap and no overlap") }
    }

    @Test func parallelPullsCountOnceAlongTheCriticalPath() {
        let spans = PhaseAttribution.partition(window: Interval(start: 0, end: 50), measurements: [
            Self.m(.pull, 0, 30, .cri, "a"), Self.m(.pull, 10, 40, .cri, "b"), Self.m(.create, 40, 50),
        ])
        #expect(spans == [PhaseSpan(name: .pull, start: 0, end: 40, parent: nil, source: .cri),
                          PhaseSpan(name: .create, start: 40, end: 50, parent: nil, source: .cri)])
    }

    @Test func overlappingWorkGoesToWhatEndsLast() {
        // init ran while a pull went on; the pull ended later, so the overlap is the pull's
        let spans = PhaseAttribution.partition(window: Interval(start: 0, end: 30), measurements: [
            Self.m(.`init`, 0, 15), Self.m(.pull, 10, 25),
        ])
        #expect(spans.map { "\($0.name.rawValue):\($0.start)-\($0.end)" } == ["init:0-10", "pull:10-25", "unattributed:25-30"])
    }

    @Test func kernelTimingWinsOverLogTimingForTheSameWork() {
        let spans = PhaseAttribution.attribute(window: Interval(start: 0, end: 100), measurements: [
            Self.m(.pull, 10, 80, .kubeletLog, "nginx"), Self.m(.pull, 12, 70, .kernel, "nginx"),
        ])
        let pull = spans.filter { $0.name == .pull }
        #expect(pull == [PhaseSpan(name: .pull, start: 12, end: 70, parent: nil, source: .kernel)])
    }

    @Test func pullSplitsIntoDownloadDecompressAndOtherThatAddUp() {
        let spans = PhaseAttribution.attribute(
            window: Interval(start: 0, end: 100), measurements: [Self.m(.pull, 10, 90)],
            download: [Interval(start: 15, end: 50), Interval(start: 40, end: 60)],
            decompress: [Interval(start: 45, end: 85)])
        let parts = spans.filter { $0.parent == .pull }
        #expect(parts.map { "\($0.name.rawValue):\($0.start)-\($0.end)" } ==
                ["pull_other:10-15", "download:15-60", "decompress:60-85", "pull_other:85-90"])
        #expect(parts.reduce(0) { $0 + $1.nanoseconds } == 80, "parts add up to the pull")
    }

    @Test func unionMergesTouchingIntervals() {
        #expect(PhaseAttribution.union([Interval(start: 5, end: 7), Interval(start: 0, end: 5), Interval(start: 9, end: 10)])
                == [Interval(start: 0, end: 7), Interval(start: 9, end: 10)])
    }

    @Test func randomMeasurementsAlwaysAddUpToTheWindow() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let end = Int64.random(in: 1...10_000, using: &rng)
            let ms = (0..<Int.random(in: 0...8, using: &rng)).map { _ -> PhaseMeasurement in
                let a = Int64.random(in: -100...end + 100, using: &rng), b = Int64.random(in: -100...end + 100, using: &rng)
                return Self.m(PhaseName.topLevel.randomElement(using: &rng)!, min(a, b), max(a, b))
            }
            let dl = [Interval(start: Int64.random(in: 0...end, using: &rng), end: Int64.random(in: 0...end, using: &rng))]
            let spans = PhaseAttribution.attribute(window: Interval(start: 0, end: end), measurements: ms, download: dl)
            #expect(topLevelSum(spans) == end)
            for pull in spans where pull.name == .pull {
                let parts = spans.filter { $0.parent == .pull && $0.start >= pull.start && $0.end <= pull.end }
                #expect(parts.reduce(0) { $0 + $1.nanoseconds } == pull.nanoseconds)
            }
        }
    }
}

@Suite("Trace JSON and timestamps")
struct TraceJSONTests {
    @Test func timestampsRoundTripWithNanoseconds() {
        let cases: [(Int64, String)] = [
            (0, "1970-01-01T00:00:00.000000000Z"),
            (1_732_896_790_765_063_108, "2024-11-29T16:13:10.765063108Z"),
            (951_782_400_000_000_001, "2000-02-29T00:00:00.000000001Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
        ]
        for (ns, text) in cases {
            #expect(Timestamp.rfc3339(unixNanoseconds: ns) == text)
            #expect(Timestamp.parseRFC3339(text) == ns)
        }
        #expect(Timestamp.parseRFC3339("2024-11-29T18:13:10.5+02:00") == 1_732_896_790_500_000_000)
        #expect(Timestamp.parseRFC3339("2024-13-29T18:13:10Z") == nil)
        #expect(Timestamp.parseRFC3339("2024-11-29T18:13:10") == nil, "a zone is required")
    }

    @Test func aTraceSurvivesItsJSON() throws {
        let phases = PhaseAttribution.attribute(window: Interval(start: 1_000_000_000, end: 3_500_000_000),
                                                measurements: [PhaseMeasurement(phase: .pull, interval: Interval(start: 1_100_000_000, end: 2_000_000_000), source: .cri)],
                                                download: [Interval(start: 1_200_000_000, end: 1_500_000_000)])
        let trace = PodStartTrace(
            pod: .init(namespace: "shop", name: "web", uid: "u-1"), created: 1_000_000_000, ready: 3_500_000_000,
            outcome: .ready, phases: phases,
            containers: [.init(name: "web", image: "nginx:1.27", imageDigest: "sha256:ab", exitCode: nil, accesses: [
                .init(path: "/usr/sbin/nginx", layerDigest: "sha256:l1", firstAccessMs: 0.5, opens: 2, bytes: 8192,
                      ranges: [[0, 4096], [8192, 4096]]),
                .init(path: "/etc/nginx/\"quoted\"\nname", layerDigest: nil, firstAccessMs: 3, opens: 1, bytes: 0, ranges: []),
            ])])
        let text = trace.json().rendered()
        let back = try PodStartTrace(json: try JSON.parse(text))
        #expect(back == trace)
        #expect(text.hasPrefix("{\"schemaVersion\":\"podstart.dev/v1\",\"pod\":{"))
        #expect(trace.e2eSeconds == 2.5)
        #expect(text.contains("\"parent\":null"))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":}", "\"\\u12\"", "01x", "{\"schemaVersion\":\"other\"}", "nul"])
    func damagedJSONIsAnErrorNotACrash(text: String) {
        let parsed = try? JSON.parse(text)
        if let parsed { #expect((try? PodStartTrace(json: parsed)) == nil) }
    }
}
