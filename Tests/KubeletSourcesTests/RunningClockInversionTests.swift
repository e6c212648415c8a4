import PodstartCore
import Testing
@testable import KubeletSources

/// Issue #18 item 2: the kubelet reads `observedRunningTime` and `watchObservedRunningTime` from
/// the clock separately, so a real line can have the watch time a few µs before the running time.
/// Such a line is accepted with its values and named as a quirk; a larger inversion is damage.
@Suite struct RunningClockInversionTests {
    /// The real v1.28.7 line of pod-e-burst-06 (kubelet.log of real-cluster-1.28): its watch time
    /// is 199.543 µs after its running time (monotonic readings) (wall and monotonic readings agree).
    static func realLine() throws -> String {
        let log = try Samples.text("real-cluster-1.28/kubelet.log")
        return try #require(log.split(separator: "\n").first { $0.contains("\"Observed pod startup duration\" pod=\"default/pod-e-burst-06\"") }).description
    }

    static let realObserved = #"observedRunningTime="2026-12-06 03:02:15.07419028 +0000 UTC m=+94.556619145""#

    /// The real line with `observedRunningTime` (wall and monotonic alike) moved to `micros` after
    /// the watch time: the inversion the issue reports, on otherwise real values.
    static func inverted(by micros: Int) throws -> String {
        let line = try realLine()
        #expect(line.contains(realObserved))
        // watch: 03:02:15.074389829, m=+94.556818688
        let wall = 74_389_829 + micros * 1000, mono = 556_818_688 + micros * 1000
        let moved = "observedRunningTime=\"2026-12-06 03:02:15.\(String(format: "%09d", wall)) +0000 UTC m=+94.\(String(format: "%09d", mono))\""
        return line.replacingOccurrences(of: realObserved, with: moved)
    }

    static func scan(_ line: String) -> (reports: [PodStartReport], counters: ScanCounters) {
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        scanner.feed(line + "\n")
        scanner.finish()
        return (reports, scanner.counters)
    }

    @Test func theRealLineIsAcceptedWithoutTheQuirk() throws {
        let (reports, counters) = Self.scan(try Self.realLine())
        #expect(counters.startupRejected == 0 && reports.count == 1)
        #expect(reports.first?.runningToWatchNanoseconds == 199_543) // Go subtracts the monotonic readings
        #expect(reports.first?.quirks.contains(.watchBeforeRunningClockReads) == false)
    }

    @Test func aFiftyMicrosecondInversionIsKeptAndNamed() throws {
        let line = try Self.inverted(by: 50)
        guard case .success(let o)? = StartupLineParser.parse(line) else {
            Issue.record("rejected: \(String(describing: StartupLineParser.parse(line)))")
            return
        }
        #expect(o.pod == "default/pod-e-burst-06")
        #expect(o.sloSeconds == 2.906654344)
        #expect(o.observedRunning!.nanosecondsSinceEpoch - o.watchObservedRunning!.nanosecondsSinceEpoch == 50_000)
        #expect(StartupLineParser.runningClockInversionNanoseconds(o) == 50_000)
        // analyze: same rule, and the quirk is named in the report and the summary.
        let (reports, counters) = Self.scan(line)
        #expect(counters.startupRejected == 0)
        let r = try #require(reports.first)
        #expect(r.quirks == [.watchBeforeRunningClockReads])
        #expect(r.runningToWatchNanoseconds == -50_000)
        #expect(r.pullNanoseconds == 167_735_485) // the kubelet's pull window is kept
        var summary = StartupSummary()
        summary.add(r)
        #expect(summary.jsonLine(counters: counters).contains("\"watchBeforeRunningClockReads\":1"))
    }

    @Test func anInversionBeyondAMillisecondIsStillRejected() throws {
        for micros in [1_001, 5_000, 400_000] {
            let line = try Self.inverted(by: micros)
            guard case .failure(.inconsistent(let why))? = StartupLineParser.parse(line) else {
                Issue.record("\(micros) µs inversion accepted")
                continue
            }
            #expect(why.contains("before running"))
            #expect(Self.scan(line).counters.rejectionReasons == ["inconsistent": 1])
        }
    }
}
