import Foundation
@testable import KubeletSources
import PodstartCore
import Testing

/// Numbers from outside at the ends of their range (#16.1): each either parses exactly as Go
/// would, or the line is rejected and counted; nothing traps and every output stays valid JSON.
@Suite struct HostileNumbersTests {
    // MARK: Go's own tables (src/time/time_test.go, parseDurationTests / parseDurationErrorTests)

    static let goDurations: [(String, Int64)] = [
        ("0", 0), ("5s", 5_000_000_000), ("30s", 30_000_000_000), ("1478s", 1_478_000_000_000),
        ("-5s", -5_000_000_000), ("+5s", 5_000_000_000), ("-0", 0), ("+0", 0),
        ("5.0s", 5_000_000_000), ("5.6s", 5_600_000_000), ("5.s", 5_000_000_000), (".5s", 500_000_000),
        ("1.0s", 1_000_000_000), ("1.00s", 1_000_000_000), ("1.004s", 1_004_000_000), ("1.0040s", 1_004_000_000),
        ("100.00100s", 100_001_000_000),
        ("10ns", 10), ("11us", 11_000), ("12µs", 12_000), ("12μs", 12_000), ("13ms", 13_000_000),
        ("14s", 14_000_000_000), ("15m", 900_000_000_000), ("16h", 57_600_000_000_000),
        ("3h30m", 12_600_000_000_000), ("10.5s4m", 250_500_000_000), ("-2m3.4s", -123_400_000_000),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006), ("39h9m14.425s", 140_954_425_000_000),
        ("52763797000ns", 52_763_797_000),
        ("0.3333333333333333333h", 1_200_000_000_000),
        ("9007199254740993ns", 9_007_199_254_740_993),
        ("9223372036854775807ns", .max), ("9223372036854775.807us", .max), ("9223372036s854ms775us807ns", .max),
        ("-9223372036854775808ns", .min), ("-9223372036854775.808us", .min), ("-9223372036s854ms775us808ns", .min),
        ("-2562047h47m16.854775808s", .min),
        ("0.100000000000000000000h", 360_000_000_000),
        ("0.830103483285477580700h", 2_988_372_539_827),
    ]

    static let goDurationErrors: [[UInt8]] = [
        "", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "\u{FFFD}", "\u{FFFD} hello \u{FFFD} world",
        "9223372036854775810ns", "9223372036854775808ns", "-9223372036854775809ns", "9223372036854776us",
        "3000000h", "9223372036854775.808us", "9223372036854ms775us808ns",
        "1µms", "12\u{C2}\u{BC}s",
    ].map { Array($0.utf8) } + [[0x85, 0x85], [0xFF, 0x66, 0x66], Array("hello ".utf8) + [0xFF] + Array("ff world".utf8)]

    @Test func durationsParseExactlyAsGosTableSays() {
        for (text, want) in Self.goDurations {
            #expect(GoTime.parseDuration(text) == want, "\(text)")
        }
    }

    @Test func durationsGoRejectsAreRejected() {
        for bytes in Self.goDurationErrors {
            let got = bytes.withUnsafeBufferPointer { GoTime.parseDuration($0) }
            #expect(got == nil, "\(String(decoding: bytes, as: UTF8.self)) gave \(got.map(String.init) ?? "nil")")
        }
    }

    /// Go's monotonicStringTests (src/time/mono_test.go): the whole Int64 range, both ends.
    @Test func monotonicReadingsCoverTheWholeInt64Range() throws {
        let cases: [(String, Int64)] = [
            ("m=+0.000000007", 7), ("m=+1.234567890", 1_234_567_890), ("m=-1.234567890", -1_234_567_890),
            ("m=+987654321.012345678", 987_654_321_012_345_678), ("m=-987654321.012345678", -987_654_321_012_345_678),
            ("m=+9223372036.854775807", .max), ("m=-9223372036.854775808", .min),
        ]
        for (suffix, want) in cases {
            guard case .time(let t)? = GoTime.parseTime("2024-11-29 16:13:10.765063108 +0000 UTC " + suffix) else {
                Issue.record("\(suffix) did not parse")
                continue
            }
            #expect(t.monotonicNanoseconds == want, "\(suffix)")
        }
        for beyond in ["m=+9223372036.854775808", "m=-9223372036.854775809", "m=+99999999999.000000000"] {
            #expect(GoTime.parseTime("2024-11-29 16:13:10 +0000 UTC " + beyond) == nil, "\(beyond)")
        }
    }

    // MARK: startup lines

    /// A V3 line around `v3NoPull` (real, from a v1.33 control plane) with the four instants and
    /// durations replaced.
    static func v3(slo: String = "5.744415212", e2e: String = "5.744415212s", created: String = "2025-09-11 19:22:30 +0000 UTC",
                   observed: String = "2025-09-11 19:22:35.744322467 +0000 UTC m=+9.974335924",
                   watch: String = "2025-09-11 19:22:35.744415212 +0000 UTC m=+9.974428663", extra: String = "") -> String {
        #"Sep 11 19:22:35 controlplane kubelet[3461]: I0911 19:22:35.744440    3461 pod_startup_latency_tracker.go:104] "Observed pod startup duration" pod="kube-flannel/kube-flannel-ds-b8hjs" podStartSLOduration=\#(slo) podStartE2EDuration="\#(e2e)" podCreationTimestamp="\#(created)" firstStartedPulling="0001-01-01 00:00:00 +0000 UTC" lastFinishedPulling="0001-01-01 00:00:00 +0000 UTC" observedRunningTime="\#(observed)" watchObservedRunningTime="\#(watch)""# + extra
    }

    /// Monotonic readings at Int64's ends made `abs` and negation trap (exit 132) in `analyze`
    /// and the agent's `--kubelet-log`: now the line is rejected (the clocks disagree) and counted.
    @Test func monotonicReadingsAtInt64EndsRejectTheLineInsteadOfTrapping() throws {
        let at = "2025-09-11 19:22:35.744415212 +0000 UTC "
        let lines = [
            // wall difference 0, monotonic difference Int64.min: abs(.min)
            Self.v3(observed: at + "m=+0.000000001", watch: at + "m=-9223372036.854775807"),
            // watch before observed by Int64's whole range: −(.min)
            Self.v3(observed: at + "m=+9223372036.854775807", watch: at + "m=-9223372036.854775808"),
            Self.v3(observed: at + "m=-9223372036.854775808", watch: at + "m=+9223372036.854775807"),
        ]
        let scanner = KubeletLogScanner { _ in Issue.record("a damaged line was reported") }
        for line in lines {
            let result = try #require(StartupLineParser.parse(line))
            guard case .failure(.inconsistent) = result else { Issue.record("\(result) for \(line)"); continue }
            scanner.feed(line + "\n")
        }
        scanner.finish()
        #expect(scanner.counters.startupRejected == lines.count)
    }

    /// `podStartSLOduration=+.5` and `podStartE2EDuration=".5s"` are what Go's ParseFloat and
    /// ParseDuration accept; the report writes the SLO as a JSON number, not `+.5`.
    @Test func goNumberFormsJSONLacksAreWrittenAsValidJSON() throws {
        let line = Self.v3(slo: "+.5", e2e: ".5s", created: "2025-09-11 19:22:30 +0000 UTC",
                           observed: "2025-09-11 19:22:30.4 +0000 UTC", watch: "2025-09-11 19:22:30.5 +0000 UTC")
        let o = try #require(try StartupLineParser.parse(line)?.get())
        #expect(o.e2eNanoseconds == 500_000_000 && o.sloSeconds == 0.5 && o.sloSecondsText == "+.5")
        let json = PodStartReport(observation: o).jsonLine()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        #expect(object["sloSeconds"] as? Double == 0.5, "\(json)")
        #expect(json.contains("\"sloSeconds\":0.5,"))
        // Go's own %v output is kept byte for byte.
        for text in ["1.849267303", "-9.223372029479458e+09", "0", "5e-324"] {
            #expect(isJSONNumber(text.utf8), "\(text)")
        }
        for text in ["+.5", ".5", "5.", "+1", "01", "1e", "-", "1.e5", "Inf", "NaN", ""] {
            #expect(!isJSONNumber(text.utf8), "\(text)")
        }
    }

    /// klog writes maps, slices and structs as JSON (klog's test/output.go: `pods=[{…}]`,
    /// `s={"hello":"world"}`); such values after the kubelet's keys must not reject the line.
    @Test func klogJSONValuesAfterTheKnownKeysAreSkipped() throws {
        let extras = [
            #" pods=[{"name":"pod-1","namespace":"kube-system"},{"name":"pod-2","namespace":"kube-system"}]"#,
            #" s={"hello":"world"} i={"1":2,"3":4}"#,
            #" s=["hello","world"] i=[1,2,3] obj={} pods=null"#,
            #" s={"Name":"a } ] \" b","Kind":"pod"}"#,  // brackets and an escaped quote inside a string
        ]
        for extra in extras {
            let result = StartupLineParser.parse(Self.v3(extra: extra))
            guard case .success(let o)? = result else { Issue.record("\(String(describing: result)) for\(extra)"); continue }
            #expect(o.pod == "kube-flannel/kube-flannel-ds-b8hjs" && o.e2eNanoseconds == 5_744_415_212)
        }
        for broken in [#" pods=[{"name":"pod-1""#, #" s={"a":"b"}x"#, " s=[[[[", #" s={"a":"b\"#] {
            guard case .failure(.unparsableFields)? = StartupLineParser.parse(Self.v3(extra: broken)) else {
                Issue.record("\(broken) was not rejected as unparsable")
                continue
            }
        }
    }

    // MARK: containerd lines

    static let pullStart = #"time="2026-12-06T03:41:40.080366399Z" level=info msg="PullImage \"127.0.0.1:35000/podstart-test/reader:latest\"""#
    static func pulled(_ duration: String, at time: String = "2026-12-06T03:41:40.173583428Z") -> String {
        #"time="\#(time)" level=info msg="Pulled image \"127.0.0.1:35000/podstart-test/reader:latest\" with image id \"sha256:901ea26b4b4988cb6fc3ea5f420a71646be124141ae0ba37674a6096276ce614\", repo tag \"127.0.0.1:35000/podstart-test/reader:latest\", repo digest \"127.0.0.1:35000/podstart-test/reader@sha256:3212aef5959af30f72aa76e3ef7fcb32e828b7f796a7361dff1606f5eb1b8a02\", size \"1436402\" in \#(duration)""#
    }
    static func pullDone(at time: String) -> String {
        #"time="\#(time)" level=info msg="PullImage \"127.0.0.1:35000/podstart-test/reader:latest\" returns image reference \"sha256:901ea26b4b4988cb6fc3ea5f420a71646be124141ae0ba37674a6096276ce614\"""#
    }

    /// containerd states each pull's duration; at Int64's ends the comparison with the lines'
    /// own timestamps overflowed (exit 132 in `analyze`). Now such a pull is suspect and counted.
    @Test func extremePullDurationsMarkThePullSuspectInsteadOfTrapping() {
        for (duration, end) in [("2562047h47m16.854775807s", "2026-12-06T03:41:40.173614530Z"),
                                ("-2562047h47m16.854775808s", "2026-12-06T03:41:40.173614530Z"),
                                ("2562047h47m16.854775807s", "2026-12-06T03:41:39.000000000Z"),  // ends before it began
                                ("-2562047h47m16.854775808s", "2026-12-06T03:41:39.000000000Z")] {
            var assembler = PodStartAssembler()
            for line in [Self.pullStart, Self.pulled(duration), Self.pullDone(at: end)] {
                guard case .event(let e)? = ContainerdLineParser.parse(line) else {
                    Issue.record("not an event: \(line)")
                    continue
                }
                assembler.add(e)
            }
            #expect(assembler.inconsistentPulls == 1, "\(duration) ending \(end)")
            #expect(assembler.finishedPulls.count == 1 && assembler.finishedPulls[0].suspect)
        }
        // Past Int64: a bad duration, counted by reason.
        guard case .malformed(let why)? = ContainerdLineParser.parse(Self.pulled("2562047h47m16.854775808s")) else {
            Issue.record("an overflowing duration was not malformed")
            return
        }
        #expect(why.hasPrefix("Pulled image with a bad duration"))
    }

    /// A line cut inside a tracked message's first words used to be ignored although the README
    /// says damaged lines are counted.
    @Test func aLineCutInsideACRIMessageIsCounted() {
        let cut = [#"time="2026-12-06T03:41:40.080366399Z" level=info msg="PullIma"#,
                   #"time="2026-12-06T03:41:40.080366399Z" level=info msg="RunPodSandbox fo"#,
                   #"time="2026-12-06T03:41:40.080366399Z" level=info msg="StartContainer for \"#]
        for line in cut {
            guard case .malformed(let why)? = ContainerdLineParser.parse(line) else {
                Issue.record("not counted: \(line)")
                continue
            }
            #expect(why == "line ends inside a CRI message")
        }
        // Other messages that merely share a first letter stay untracked.
        #expect(ContainerdLineParser.parse(#"time="2026-12-06T03:41:40.080366399Z" level=info msg="Start cri plugin""#) == nil)
        #expect(ContainerdLineParser.parse(#"time="2026-12-06T03:41:40.080366399Z" level=info msg="Pull"#) != nil)

        let scanner = KubeletLogScanner { _ in }
        scanner.feed(cut.joined(separator: "\n") + "\n")
        scanner.finish()
        #expect(scanner.counters.containerdMalformed == cut.count)
        #expect(scanner.counters.containerdMalformedReasons["line ends inside a CRI message"] == cut.count)
    }

    // MARK: --since

    @Test func aSinceDurationReachingBefore1970IsRejected() {
        let now = Date(timeIntervalSince1970: 1_796_528_500)
        #expect(SinceParser.parse("2562047h", now: now) == nil)
        #expect(SinceParser.parse("2562047h47m16.854775807s", now: now) == nil)
        #expect(SinceParser.parse("90m", now: now)?.nanosecondsSinceEpoch == 1_796_523_100_000_000_000)
    }

    // MARK: the binary

    /// `podstart analyze` on a log holding every hostile line above, as a user would run it:
    /// exit 0, every output line valid JSON, the damaged lines counted.
    @Test func analyzeOnHostileNumbersExitsZeroWithValidJSON() throws {
        let at = "2025-09-11 19:22:35.744415212 +0000 UTC "
        let log = [
            Self.v3(observed: at + "m=+0.000000001", watch: at + "m=-9223372036.854775807"),
            Self.v3(observed: at + "m=+9223372036.854775807", watch: at + "m=-9223372036.854775808"),
            Self.v3(slo: "+.5", e2e: ".5s", observed: "2025-09-11 19:22:30.4 +0000 UTC", watch: "2025-09-11 19:22:30.5 +0000 UTC"),
            Self.pullStart, Self.pulled("-2562047h47m16.854775808s"), Self.pullDone(at: "2026-12-06T03:41:39.000000000Z"),
            Self.pulled("2562047h47m16.854775808s"),
            #"time="2026-12-06T03:41:40.080366399Z" level=info msg="PullIma"#,
        ].joined(separator: "\n") + "\n"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-hostile-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("hostile.log").path
        try log.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try AnalyzeCommandLineTests.analyze(["--kubelet-log", path, "-o", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 2, "one pod and the summary: \(run.stdout)")
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
        let counts = try #require(summary["lines"] as? [String: Any], "\(summary)")
        #expect(counts["startupRejected"] as? Int == 2)
        #expect(counts["containerdMalformed"] as? Int == 2, "\(counts)")
    }
}
