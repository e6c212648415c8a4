import Foundation
import PodstartCore
import PodstartTestSupport
import Testing
@testable import KubeletSources
import PodstartBenchKit

/// The log → report pipeline of `podstart analyze`, on the recorded journals.
@Suite struct AnalyzeTests {
    static func analyze(_ text: String, chunkSize: Int = 1 << 20, feedStep: Int? = nil) -> ([PodStartReport], KubeletLogScanner) {
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner(chunkSize: chunkSize) { reports.append($0) }
        var bytes = Array(text.utf8)
        if let step = feedStep {
            var i = 0
            while i < bytes.count {
                let j = min(bytes.count, i + step)
                bytes[i..<j].withUnsafeBufferPointer { scanner.feed($0) }
                i = j
            }
        } else {
            bytes.withUnsafeMutableBufferPointer { scanner.feed(UnsafeBufferPointer($0)) }
        }
        scanner.finish()
        return (reports, scanner)
    }

    @Test func sampleJournalYieldsPerPodPullsInitAndTheCorrectedSLO() throws {
        let (reports, scanner) = Self.analyze(try Samples.text("kubelet-journal-sample.log"))
        #expect(reports.count == 2)
        let web = reports[0]
        #expect(web.pod == "shop/web-7d9f8c6b5-x2kqz")
        #expect(web.pulls.map(\.image) == ["busybox:1.36", "nginx:1.27.3"])
        #expect(web.pulls.map { $0.end.goSub($0.begin) } == [1_325_729_361, 3_360_444_818])
        #expect(web.pulls.map(\.sizeBytes) == [2_152_284, 72_099_400])
        #expect(web.containerdPullNanoseconds == 4_686_174_179)
        #expect(web.pullNanoseconds == 6_534_390_136)
        #expect(web.containerdInitNanoseconds == 1_171_406_138) // init-config: start returned → shim gone
        #expect(web.sandboxNanoseconds == 128_130_302)
        // The kubelet's first sync (16:13:10.314355, klog header in the kubelet's zone) → containerd's
        // RunPodSandbox (16:13:10.635911406): volume mounts.
        #expect(web.kubeletSyncToSandboxNanoseconds == 321_556_406)
        #expect(scanner.counters.kubeletEvents == 3 && scanner.counters.kubeletMalformed == 0)
        #expect(web.runningToWatchNanoseconds == 13_296_915)
        // The kubelet's window includes the init container's run: its SLO is too small.
        #expect(web.quirks == [.pullWindowCoversNonPullTime])
        #expect(web.correctedSloNanoseconds == Int64(3_258_143_511)) // 7.94431769 − 4.686174179
        #expect(web.jsonLine().hasPrefix(#"{"pod":"shop/web-7d9f8c6b5-x2kqz","sloSeconds":1.409927554,"e2eSeconds":7.94431769,"pullSeconds":6.534390136,"initSeconds":1.171406138,"runningToWatchSeconds":0.013296915,"created":"2024-11-29T16:13:10Z","variant":"V3","quirks":["pullWindowCoversNonPullTime"],"correctedSloSeconds":3.258143511,"#))
        let dns = reports[1]
        #expect(dns.quirks.isEmpty && dns.correctedSloNanoseconds == nil && dns.pulls.isEmpty)
        #expect(scanner.counters.startupRejected == 0 && scanner.counters.containerdMalformed == 0)
        #expect(scanner.counters.containerdEvents == 17)
    }

    @Test func v4JournalReportsKubeletTotals() throws {
        let (reports, _) = Self.analyze(try Samples.text("kubelet-journal-sample-v1.36.log"))
        #expect(reports.count == 2)
        #expect(reports[0].pullNanoseconds == 4_687_493_508)
        #expect(reports[0].initNanoseconds == 1_197_424_691)
        #expect(reports[0].quirks.isEmpty)
        #expect(reports[0].jsonLine().contains(#""sloSeconds":2.059399491,"e2eSeconds":7.94431769,"pullSeconds":4.687493508,"initSeconds":1.197424691,"#))
    }

    /// The kubelet (V4) and containerd agree on how long the pulls took, within the kubelet's
    /// own bookkeeping around each CRI call.
    @Test func containerdPullsAgreeWithTheV4PullTotal() throws {
        let (v3, _) = Self.analyze(try Samples.text("kubelet-journal-sample.log"))
        let (v4, _) = Self.analyze(try Samples.text("kubelet-journal-sample-v1.36.log"))
        let measured = try #require(v3[0].containerdPullNanoseconds)
        let kubelet = try #require(v4[0].observation.totalImagesPullingNanoseconds)
        #expect(abs(kubelet - measured) < 5_000_000)
    }

    @Test(arguments: [1, 7, 100, 4096])
    func resultsDoNotDependOnHowBytesArrive(step: Int) throws {
        let text = try Samples.text("kubelet-journal-sample.log")
        let (whole, _) = Self.analyze(text)
        let (pieces, _) = Self.analyze(text, chunkSize: 256, feedStep: step)
        #expect(whole == pieces)
    }

    /// The pipelined file reader (read + search on a second thread) gives what the in-memory
    /// path gives, for chunks smaller than a line, around an overlong line and an empty file.
    @Test(arguments: [64, 1000, 1 << 20])
    func fileScanMatchesInMemoryScan(chunkSize: Int) throws {
        let text = try Samples.text("kubelet-journal-sample.log") + String(repeating: "x", count: 3 << 20) + "\n"
            + (try Samples.text("kubelet-journal-sample-v1.36.log")) + "\n" + StartupLineParserTests.v1NoPull
        let (expected, _) = Self.analyze(text)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-scan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var got: [PodStartReport] = []
        let scanner = KubeletLogScanner(chunkSize: chunkSize) { got.append($0) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        try scanner.scan(fd: fd)
        #expect(got == expected)
        #expect(got.count == 5)
        #expect(scanner.counters.bytes == Int64(text.utf8.count))
        #expect(scanner.counters.oversizeLines >= 1)
        // An empty input ends cleanly.
        let empty = KubeletLogScanner { _ in Issue.record("report from nothing") }
        try "".write(toFile: path, atomically: false, encoding: .utf8)
        let nothing = open(path, O_RDONLY)
        defer { close(nothing) }
        try empty.scan(fd: nothing)
        #expect(empty.counters.bytes == 0)
    }

    @Test func failedPullGivesNegativeSLOQuirkAndACorrection() throws {
        let v1 = StartupLineParserTests.v1FailedPull
        let journal = """
            Dec 30 15:33:07 n containerd[1]: time="2022-12-30T15:33:07.000000000Z" level=info msg="RunPodSandbox for &PodSandboxMetadata{Name:konnectivity-agent-gnc9k,Uid:u1,Namespace:kube-system,Attempt:0,}"
            Dec 30 15:33:07 n containerd[1]: time="2022-12-30T15:33:07.100000000Z" level=info msg="RunPodSandbox for &PodSandboxMetadata{Name:konnectivity-agent-gnc9k,Uid:u1,Namespace:kube-system,Attempt:0,} returns sandbox id \\"sb1\\""
            Dec 30 15:33:09 n containerd[1]: time="2022-12-30T15:33:09.259000000Z" level=info msg="PullImage \\"registry.k8s.io/kas-network-proxy/proxy-agent:v0.1.1\\""
            Dec 30 15:33:10 n containerd[1]: time="2022-12-30T15:33:10.259000000Z" level=error msg="PullImage \\"registry.k8s.io/kas-network-proxy/proxy-agent:v0.1.1\\" failed" error="rpc error: code = Unknown"
            Dec 30 15:33:12 n containerd[1]: time="2022-12-30T15:33:12.000000000Z" level=info msg="CreateContainer within sandbox \\"sb1\\" for container &ContainerMetadata{Name:agent,Attempt:0,}"
            \(v1)
            """
        let (reports, scanner) = Self.analyze(journal)
        #expect(scanner.counters.containerdMalformed == 0)
        let r = try #require(reports.first)
        #expect(r.quirks == [.negativeSloAfterFailedPull])
        #expect(r.pulls.count == 1 && r.pulls[0].failed)
        #expect(r.containerdPullNanoseconds == 1_000_000_000)
        #expect(r.correctedSloNanoseconds == Int64(6_375_317_944)) // E2E 7.375317944 − failed pull 1 s
        #expect(r.pullNanoseconds == nil)
        #expect(r.jsonLine().contains(#""sloSeconds":-9.223372029479458e+09,"#))
        #expect(r.jsonLine().contains(#""correctedSloSeconds":6.375317944"#))
        // Without containerd lines the correction is E2E (no pull could be measured).
        let (alone, _) = Self.analyze(v1)
        #expect(alone.first?.correctedSloNanoseconds == 7_375_317_944)
        #expect(alone.first?.effectiveSloSeconds == 7.375317944)
    }

    @Test func klogHeaderTimesResolveAcrossYearsAndZones() throws {
        let t = try #require(GoTime.parseKlogHeaderTime(Array("I1231 23:59:59.500000    1 util.go:30] x".utf8).withUnsafeBufferPointer { $0 }))
        // Referenced by a time in the next year, in UTC: the line belongs to the year before.
        let ref = GoTime.parseRFC3339("2025-01-01T00:00:01Z")!
        #expect(t.resolve(near: ref, utcOffsetSeconds: 0) == GoTime.parseRFC3339("2024-12-31T23:59:59.5Z"))
        // The same wall time in CDT (−05:00).
        #expect(t.resolve(near: GoTime.parseRFC3339("2025-01-01T05:00:10Z")!, utcOffsetSeconds: -5 * 3600) == GoTime.parseRFC3339("2025-01-01T04:59:59.5Z"))
        #expect(GoTime.parseKlogHeaderTime(Array("X1231 23:59:59.5 ".utf8).withUnsafeBufferPointer { $0 }) == nil)
        // JSON logging format: `ts` is UTC epoch milliseconds.
        let json = #"{"ts":1732896790314.355,"caller":"util/util.go:30","msg":"No sandbox for pod can be found. Need to start a new one","v":0,"pod":{"name":"p","namespace":"ns"}}"#
        guard case .success(let e)? = KubeletLineParser.parseSandboxNeeded(json) else { Issue.record("JSON line not parsed"); return }
        #expect(e.pod == "ns/p")
        #expect(e.time == .utc(KubeletTimestamp(nanosecondsSinceEpoch: 1_732_896_790_314_355_000)))
        // Damaged: no header, or no pod.
        guard case .failure? = KubeletLineParser.parseSandboxNeeded(#""No sandbox for pod can be found. Need to start a new one" pod="a/b""#) else { Issue.record("headerless line accepted"); return }
        guard case .failure? = KubeletLineParser.parseSandboxNeeded(#"I1129 16:13:10.314355    1 util.go:30] "No sandbox for pod can be found. Need to start a new one" podx="a/b""#) else { Issue.record("podless line accepted"); return }
    }

    static func cd(_ t: String, _ msg: String) -> String {
        #"Nov 29 16:13:10 n containerd[1]: time="2024-11-29T16:13:\#(t)Z" level=info msg="\#(msg)""#
    }

    static func v3(pod: String, first: String, last: String, e2e: String, slo: String, watch: String) -> String {
        #"I1129 16:13:20.000000    1 pod_startup_latency_tracker.go:104] "Observed pod startup duration" pod="\#(pod)" podStartSLOduration=\#(slo) podStartE2EDuration="\#(e2e)s" podCreationTimestamp="2024-11-29 16:13:10 +0000 UTC" firstStartedPulling="2024-11-29 16:13:\#(first) +0000 UTC" lastFinishedPulling="2024-11-29 16:13:\#(last) +0000 UTC" observedRunningTime="2024-11-29 16:13:\#(watch) +0000 UTC" watchObservedRunningTime="2024-11-29 16:13:\#(watch) +0000 UTC""#
    }

    /// Parallel pulls (serializeImagePulls=false): two images pulled at once for one pod; the
    /// kubelet's window is their union here, so no quirk — and the union counts overlap once.
    @Test func parallelPullsOfOnePodAreCountedOnce() throws {
        let log = [
            Self.cd("10.000000000", #"RunPodSandbox for &PodSandboxMetadata{Name:p,Uid:u,Namespace:ns,Attempt:0,}"#),
            Self.cd("10.100000000", #"RunPodSandbox for &PodSandboxMetadata{Name:p,Uid:u,Namespace:ns,Attempt:0,} returns sandbox id \"s1\""#),
            Self.cd("10.200000000", #"PullImage \"a:1\""#),
            Self.cd("10.300000000", #"PullImage \"b:1\""#),
            Self.cd("12.200000000", #"PullImage \"a:1\" returns image reference \"sha256:aa\""#),
            Self.cd("13.300000000", #"PullImage \"b:1\" returns image reference \"sha256:bb\""#),
            Self.cd("13.400000000", #"CreateContainer within sandbox \"s1\" for container &ContainerMetadata{Name:c,Attempt:0,}"#),
            // E2E 5 s, window 10.2 → 13.3 = 3.1 s, SLO 1.9 s.
            Self.v3(pod: "ns/p", first: "10.2", last: "13.3", e2e: "5", slo: "1.9", watch: "15"),
        ].joined(separator: "\n")
        let (reports, scanner) = Self.analyze(log)
        #expect(scanner.counters.startupRejected == 0)
        let r = try #require(reports.first)
        #expect(r.pulls.count == 2)
        #expect(r.containerdPullNanoseconds == 3_100_000_000)
        #expect(r.quirks.isEmpty && r.correctedSloNanoseconds == nil)
    }

    /// Two pods waiting for containers while an image is pulled: containerd's line does not say
    /// for whom, so the pull is left out (and counted) instead of guessed.
    @Test func ambiguousPullsAreLeftOut() throws {
        let log = [
            Self.cd("10.000000000", #"RunPodSandbox for &PodSandboxMetadata{Name:p,Uid:u,Namespace:ns,Attempt:0,}"#),
            Self.cd("10.100000000", #"RunPodSandbox for &PodSandboxMetadata{Name:p,Uid:u,Namespace:ns,Attempt:0,} returns sandbox id \"s1\""#),
            Self.cd("10.050000000", #"RunPodSandbox for &PodSandboxMetadata{Name:q,Uid:v,Namespace:ns,Attempt:0,}"#),
            Self.cd("10.150000000", #"RunPodSandbox for &PodSandboxMetadata{Name:q,Uid:v,Namespace:ns,Attempt:0,} returns sandbox id \"s2\""#),
            Self.cd("10.200000000", #"PullImage \"a:1\""#),
            Self.cd("12.200000000", #"PullImage \"a:1\" returns image reference \"sha256:aa\""#),
            Self.cd("12.300000000", #"CreateContainer within sandbox \"s1\" for container &ContainerMetadata{Name:c,Attempt:0,}"#),
            Self.v3(pod: "ns/p", first: "10.2", last: "12.2", e2e: "5", slo: "3", watch: "15"),
        ].joined(separator: "\n")
        var reports: [PodStartReport] = []
        let scanner = KubeletLogScanner { reports.append($0) }
        scanner.feed(log)
        scanner.finish()
        let r = try #require(reports.first)
        #expect(r.pulls.isEmpty)
        #expect(r.containerdPullNanoseconds == nil) // unknown, not zero
        #expect(scanner.assembler.unattributedPulls == 1)
        #expect(r.quirks.isEmpty) // no measured pulls: the kubelet's value is not second-guessed
    }

    @Test func summaryPercentilesAndSLOBreaches() throws {
        var summary = StartupSummary()
        for (i, e2e) in [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10].enumerated() {
            let ns = Int64(e2e * 1e9)
            let o = KubeletPodStartupObservation(
                namespace: i % 2 == 0 ? "a" : "b", name: "p\(i)", variant: .v3, sloSecondsText: "\(e2e)",
                sloSeconds: e2e, e2eNanoseconds: ns, created: nil, watchObservedRunning: nil)
            summary.add(PodStartReport(observation: o))
        }
        let all = summary.overall
        #expect(all.count == 10 && all.sloP50 == 5 && all.sloP90 == 9 && all.sloP99 == 10)
        #expect(all.sloBreaches == 5)
        #expect(summary.stats(namespace: "a")?.count == 5)
        #expect(summary.slowest.first?.pod == "b/p9")
        let json = summary.jsonLine(counters: ScanCounters())
        #expect(json.contains(#""slo":{"thresholdSeconds":5.0,"percentile":99,"met":false,"podsOverThreshold":5}"#))
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(parsed?["pods"] as? Int == 10)
        // --top 0 lists no slow pods (and does not trap).
        var none = StartupSummary()
        none.slowestLimit = 0
        none.add(PodStartReport(observation: KubeletPodStartupObservation(
            namespace: "a", name: "p", variant: .v3, sloSecondsText: "1", sloSeconds: 1, e2eNanoseconds: 1,
            created: nil, watchObservedRunning: nil)))
        #expect(none.slowest.isEmpty && none.overall.count == 1)
    }

    /// Overall percentiles come from a merge walk over the per-namespace arrays; they must equal
    /// nearest-rank over one merged array.
    @Test func mergedPercentilesEqualPercentilesOfTheUnion() {
        var rng = SplitMix(state: 5)
        for _ in 0..<200 {
            let k = Int.random(in: 1...12, using: &rng)
            let parts = (0..<k).map { _ in
                (0..<Int.random(in: 0...40, using: &rng)).map { _ in Double(Int.random(in: 0...30, using: &rng)) / 3 }.sorted()
            }
            let union = parts.flatMap { $0 }.sorted()
            let ps = [0.5, 0.9, 0.99, 0.01, 1.0]
            let got = StartupSummary.percentiles(sortedParts: parts, ps)
            let want = ps.map { StartupSummary.percentile(union, $0) }
            #expect(got.elementsEqual(want) { $0 == $1 || ($0.isNaN && $1.isNaN) })
        }
    }

    @Test func everyReportLineIsValidJSONWithTheContractKeys() throws {
        let (reports, _) = Self.analyze(try Samples.text("kubelet-journal-sample.log") + "\n" + StartupLineParserTests.v2CDT + "\n" + StartupLineParserTests.v4Minikube)
        #expect(reports.count == 4)
        for r in reports {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonLine().utf8)) as? [String: Any])
            for k in ["pod", "sloSeconds", "e2eSeconds", "pullSeconds", "initSeconds", "runningToWatchSeconds", "created", "variant", "quirks"] {
                #expect(obj.keys.contains(k), "\(k) missing")
            }
        }
        #expect(reports[3].quirks == [.statefulPodNotInSli])
    }

    @Test func generatedJournalIsAnalysedCompletely() throws {
        let gen = BenchJournalGenerator(sampleJournal: try Samples.text("kubelet-journal-sample.log"), noiseLinesPerPod: 50)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-gen-\(getpid()).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let pods = try gen.write(to: path, bytes: 2 << 20)
        var reports = 0, corrected = 0
        let scanner = KubeletLogScanner(chunkSize: 64 << 10) { r in
            reports += 1
            if r.correctedSloNanoseconds == 3_258_143_511 { corrected += 1 }
        }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        try scanner.scan(fd: fd)
        #expect(reports == pods)
        #expect(corrected == pods / 2) // every web pod gets the same correction as the sample
        #expect(scanner.counters.startupRejected == 0)
    }
}
