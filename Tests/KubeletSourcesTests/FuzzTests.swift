import PodstartCore
import PodstartTestSupport
import Testing
@testable import KubeletSources

/// Property tests: random corruption and truncation of real lines never crash the parsers and
/// never yield a wrong value silently.
@Suite struct FuzzTests {

    static let lines = [
        StartupLineParserTests.v1FailedPull, StartupLineParserTests.v1NoPull, StartupLineParserTests.v2CDT,
        StartupLineParserTests.v3AKS, StartupLineParserTests.v3Line104, StartupLineParserTests.v3NoPull,
        StartupLineParserTests.v4Minikube,
    ]

    /// What `analyze` reports from a line, apart from the pod name (which has no redundancy).
    struct Values: Equatable {
        var slo: String, e2e: Int64, created: Int64?, watch: Int64?, pull: Int64?, initNs: Int64?, runToWatch: Int64?
        var variant: KubeletStartupLineVariant
        init(_ o: KubeletPodStartupObservation) {
            let r = PodStartReport(observation: o)
            slo = o.sloSecondsText; e2e = o.e2eNanoseconds; created = o.created?.nanosecondsSinceEpoch
            watch = o.watchObservedRunning?.nanosecondsSinceEpoch; pull = r.pullNanoseconds; initNs = r.initNanoseconds
            runToWatch = r.runningToWatchNanoseconds; variant = o.variant
        }
    }

    /// Byte ranges whose damage cannot be detected from the line itself: the pod name, the
    /// header (not used), and the wall-clock digits below a millisecond of instants that also
    /// carry a monotonic reading (Go subtracts those on the monotonic clock, so they never reach
    /// an output; the millisecond and above are checked against that clock).
    static func undetectable(_ line: [UInt8]) -> [Range<Int>] {
        let s = String(decoding: line, as: UTF8.self)
        var out: [Range<Int>] = []
        let msg = s.utf8.distance(from: s.startIndex, to: s.range(of: "\"Observed")!.lowerBound)
        out.append(0..<msg)
        if let r = s.range(of: "pod=\"") {
            let start = s.utf8.distance(from: s.startIndex, to: r.upperBound)
            let end = start + s[r.upperBound...].utf8.prefix { $0 != UInt8(ascii: "\"") }.count
            out.append(start..<end)
        }
        // Sub-millisecond wall digits: "HH:MM:SS.mmm" then up to 6 more digits before " ".
        var i = 0
        while let r = s[s.index(s.startIndex, offsetBy: i)...].range(of: #":\d\d\.\d{4,9} "#, options: .regularExpression) {
            let start = s.utf8.distance(from: s.startIndex, to: r.lowerBound) + 4 + 3
            let end = s.utf8.distance(from: s.startIndex, to: r.upperBound) - 1
            out.append(start..<end)
            i = end
        }
        return out
    }

    @Test func singleByteCorruptionIsRejectedOrHarmless() throws {
        var rng = SplitMix(state: 0xC0FFEE)
        var rejected = 0, harmless = 0
        for line in Self.lines {
            let original = Array(line.utf8)
            let want = try Values(#require(try? StartupLineParser.parse(line)?.get()))
            let blind = Self.undetectable(original)
            for _ in 0..<600 {
                var damaged = original
                let at = Int.random(in: 0..<damaged.count, using: &rng)
                var b: UInt8
                repeat { b = UInt8.random(in: 32...126, using: &rng) } while b == damaged[at]
                damaged[at] = b
                let result = damaged.withUnsafeBufferPointer { StartupLineParser.parse($0) }
                switch result {
                case nil, .failure?:
                    rejected += 1
                case .success(let o)?:
                    if blind.contains(where: { $0.contains(at) }) { harmless += 1; continue }
                    var got = Values(o)
                    // runningToWatch: observedRunningTime's digits below the clock-agreement
                    // tolerance (1 ms) have no redundancy; within it, it may differ.
                    if let g = got.runToWatch, let w = want.runToWatch, abs(g - w) <= StartupLineParser.clockAgreementNanoseconds {
                        got.runToWatch = w
                    }
                    #expect(got == want, "byte \(at) → \(Character(Unicode.Scalar(b))) changed a value silently in \(String(decoding: damaged, as: UTF8.self))")
                    harmless += 1
                }
            }
        }
        #expect(rejected > 0 && harmless > 0)
    }

    @Test func truncationAtEveryByteIsRejectedOrHarmless() throws {
        for line in Self.lines {
            let original = Array(line.utf8)
            let want = try Values(#require(try? StartupLineParser.parse(line)?.get()))
            for n in 0..<original.count {
                let cut = Array(original[0..<n])
                if case .success(let o)? = cut.withUnsafeBufferPointer({ StartupLineParser.parse($0) }) {
                    #expect(Values(o) == want, "truncated to \(n) bytes yet accepted with other values")
                }
            }
        }
    }

    @Test func randomGarbageAndMixedLinesNeverCrashTheScanner() throws {
        var rng = SplitMix(state: 42)
        let journal = Array(try Samples.text("kubelet-journal-sample.log").utf8)
        for round in 0..<40 {
            var bytes = journal
            for _ in 0..<(round * 5) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: at)
                default: bytes.insert(UInt8(ascii: ["\n", "\"", "\\", "="].randomElement(using: &rng)!), at: at)
                }
            }
            var reports: [PodStartReport] = []
            let scanner = KubeletLogScanner(chunkSize: 512) { reports.append($0) }
            bytes.withUnsafeBufferPointer { scanner.feed($0) }
            scanner.finish()
            // Whatever survives must be one of the two real pods with their real E2E.
            for r in reports {
                let known: [Int64] = [7_944_317_690, 1_988_379_004]
                #expect(known.contains(r.observation.e2eNanoseconds) || r.pod.contains("web") || r.pod.contains("coredns"))
            }
            #expect(reports.count + scanner.counters.startupRejected <= 2 + round * 5)
        }
    }

    /// A damaged digit in a containerd timestamp must not silently change the pod's pull total:
    /// either the pull's begin/end still agree with containerd's stated duration (within its
    /// few-ms bookkeeping), or the pull total becomes unknown.
    @Test func damagedContainerdTimesNeverChangePullTotalsSilently() throws {
        let journal = try Samples.text("kubelet-journal-sample.log")
        let want: Int64 = 4_686_174_179
        var rng = SplitMix(state: 11)
        var unknown = 0, same = 0
        let lines = journal.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let pullLines = lines.indices.filter { i in
            ["msg=\"PullImage", "msg=\"CreateContainer", "msg=\"StartContainer", "msg=\"RunPodSandbox"].contains { lines[i].contains($0) }
        }
        for _ in 0..<600 {
            var copy = lines
            let li = pullLines.randomElement(using: &rng)!
            var bytes = Array(copy[li].utf8)
            // A digit of the seconds or sub-second part of time="…".
            let tIdx = bytes.indices.first { i in i + 6 < bytes.count && bytes[i..<i + 6].elementsEqual("time=\"".utf8) }! + 6
            let at = tIdx + [17, 18, 20, 21, 22].randomElement(using: &rng)!
            var d: UInt8
            repeat { d = UInt8(ascii: "0") + UInt8.random(in: 0...9, using: &rng) } while d == bytes[at]
            bytes[at] = d
            copy[li] = String(decoding: bytes, as: UTF8.self)
            var reports: [PodStartReport] = []
            let scanner = KubeletLogScanner { reports.append($0) }
            scanner.feed(copy.joined(separator: "\n"))
            scanner.finish()
            let web = try #require(reports.first { $0.pod.hasPrefix("shop/") })
            if let total = web.containerdPullNanoseconds {
                // Undetectable: a change within containerd's own bookkeeping slack.
                #expect(abs(total - want) <= 50_000_000 + want / 100, "pull total changed silently: \(total) after damaging \(copy[li])")
                same += 1
            } else {
                unknown += 1
            }
        }
        #expect(unknown > 0)
    }

    @Test func containerdLinesSurviveCorruption() throws {
        var rng = SplitMix(state: 7)
        let lines = try Samples.text("kubelet-journal-sample.log").split(separator: "\n").filter { $0.contains("containerd[") }.map { Array($0.utf8) }
        for line in lines {
            for _ in 0..<200 {
                var d = line
                d[Int.random(in: 0..<d.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                _ = d.withUnsafeBufferPointer { ContainerdLineParser.parse($0) }
                _ = d.withUnsafeBufferPointer { StartupLineParser.parse($0) }
            }
        }
    }
}
