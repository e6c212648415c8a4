import PodstartCore
import Testing
@testable import KubeletSources

/// Real startup lines of kubelets 1.26–1.37 as they were written (public issues and node logs; the
/// field sets: docs/kubelet-startup-line.md#field-sets) and both sample journals, with exact expected values.
@Suite struct StartupLineParserTests {
    static let v1FailedPull = #"Dec 30 15:33:13.375379 e2e-022435249c-674b9-minion-group-gdj4 kubelet[8362]: I1230 15:33:13.375359    8362 pod_startup_latency_tracker.go:102] "Observed pod startup duration" pod="kube-system/konnectivity-agent-gnc9k" podStartSLOduration=-9.223372029479458e+09 pod.CreationTimestamp="2022-12-30 15:33:06 +0000 UTC" firstStartedPulling="2022-12-30 15:33:09.258791695 +0000 UTC m=+13.029631711" lastFinishedPulling="0001-01-01 00:00:00 +0000 UTC" observedRunningTime="2022-12-30 15:33:13.375009262 +0000 UTC m=+17.145849275" watchObservedRunningTime="2022-12-30 15:33:13.375317944 +0000 UTC m=+17.146157970""#
    static let v1NoPull = #"I1210 14:05:42.131364    3806 pod_startup_latency_tracker.go:102] "Observed pod startup duration" pod="cattle-system/cattle-cluster-agent-5cd5778bd5-5fhsz" podStartSLOduration=2.131321639 pod.CreationTimestamp="2024-12-10 14:05:40 +0000 UTC" firstStartedPulling="0001-01-01 00:00:00 +0000 UTC" lastFinishedPulling="0001-01-01 00:00:00 +0000 UTC" observedRunningTime="2024-12-10 14:05:42.128499715 +0000 UTC m=+685453.304479175" watchObservedRunningTime="2024-12-10 14:05:42.131321639 +0000 UTC m=+685453.307301089""#
    static let v2CDT = #"Jun 14 12:40:58 node0.test-thumb-util.ulambda-pg0.wisc.cloudlab.us kubelet[164755]: I0614 12:40:58.105976  164755 pod_startup_latency_tracker.go:102] "Observed pod startup duration" pod="default/thumbnail-benchrealm1-tp8gd" podStartSLOduration=1.849267303 podCreationTimestamp="2023-06-14 12:40:56 -0500 CDT" firstStartedPulling="2023-06-14 12:40:56.799351441 -0500 CDT m=+812.079319978" lastFinishedPulling="2023-06-14 12:40:57.056010141 -0500 CDT m=+812.335978677" observedRunningTime="2023-06-14 12:40:58.099206616 -0500 CDT m=+813.379175152" watchObservedRunningTime="2023-06-14 12:40:58.105926002 -0500 CDT m=+813.385894538""#
    static let v3AKS = #"Nov 29 18:13:11 aks-np2-39852331-vmss000000 kubelet[2775]: I1129 18:13:11.940322    2775 pod_startup_latency_tracker.go:102] "Observed pod startup duration" pod="default/nginx" podStartSLOduration=1.053410939 podStartE2EDuration="1.940293018s" podCreationTimestamp="2024-11-29 16:13:10 +0000 UTC" firstStartedPulling="2024-11-29 16:13:10.765063108 +0000 UTC m=+21817.014756659" lastFinishedPulling="2024-11-29 16:13:11.651945187 +0000 UTC m=+21817.901638738" observedRunningTime="2024-11-29 16:13:11.940258918 +0000 UTC m=+21818.189952569" watchObservedRunningTime="2024-11-29 16:13:11.940293018 +0000 UTC m=+21818.189986669""#
    static let v3Line104 = #"Feb 25 21:38:56 aks-userpool0-20459031-vmss000001 kubelet[3201]: I0225 21:38:56.323529    3201 pod_startup_latency_tracker.go:104] "Observed pod startup duration" pod="default/resource-consume-5fb68775dc-c74hl" podStartSLOduration=1.344002188 podStartE2EDuration="3.323519624s" podCreationTimestamp="2025-02-25 21:38:53 +0000 UTC" firstStartedPulling="2025-02-25 21:38:53.734807377 +0000 UTC m=+565.347657070" lastFinishedPulling="2025-02-25 21:38:55.714324713 +0000 UTC m=+567.327174506" observedRunningTime="2025-02-25 21:38:56.323492624 +0000 UTC m=+567.936342317" watchObservedRunningTime="2025-02-25 21:38:56.323519624 +0000 UTC m=+567.936369517""#
    static let v3NoPull = #"Sep 11 19:22:35 controlplane kubelet[3461]: I0911 19:22:35.744440    3461 pod_startup_latency_tracker.go:104] "Observed pod startup duration" pod="kube-flannel/kube-flannel-ds-b8hjs" podStartSLOduration=5.744415212 podStartE2EDuration="5.744415212s" podCreationTimestamp="2025-09-11 19:22:30 +0000 UTC" firstStartedPulling="0001-01-01 00:00:00 +0000 UTC" lastFinishedPulling="0001-01-01 00:00:00 +0000 UTC" observedRunningTime="2025-09-11 19:22:35.744322467 +0000 UTC m=+9.974335924" watchObservedRunningTime="2025-09-11 19:22:35.744415212 +0000 UTC m=+9.974428663""#
    static let v4Minikube = #"Oct 07 17:52:33 minikube kubelet[1400]: I1007 17:52:33.659806    1400 pod_startup_latency_tracker.go:144] "Observed pod startup duration" pod="final-app/final-app-8bb588d8d-qlhpr" podStartSLOduration=25.656615132 podStartE2EDuration="25.656615132s" totalImagesPullingTime="0s" totalInitContainerRuntime="0s" isStatefulPod=true podCreationTimestamp="2026-10-07 17:52:08 +0000 UTC" imagePullSessionsCount=0 imagePullSessionsStartsCount=0 observedRunningTime="2026-10-07 17:52:24.959399336 +0000 UTC m=+6099.653610162" watchObservedRunningTime="2026-10-07 17:52:33.656615132 +0000 UTC m=+6108.350826000""#
    static let v4Truncated = #"Sep 23 11:41:13 desktop-control-plane kubelet[471811]: I0923 11:41:13.979360  471811 pod_startup_latency_tracker.go:148] "Observed pod startup duration" pod="linux-mcp-daemon-by-claude/linux-mcp-daemon-8cdfd76f-mwwhz" podStartSLOduration=26.79312747 podStartE2EDuration="26.973310511s" totalImagesPullingTime="180.183041ms" totalInitContainerRuntime="0s" isStatefulPod=true podCreationTimestamp="2026-09-23 11:40:47 +0000 UTC" imagePullSessionsCount=1 imagePullSessionsStartsCount=0 observedRunningTime="2026-09-23 11:40:48.09362143 +0000 UTC m=+4208.644264215" watchObservedRunningTime="2026-09-23 11:41:13.973310511 +0000 UTC m=+42..."#
    static let jsonComposed = #"{"ts":1732896797944.352,"caller":"util/pod_startup_latency_tracker.go:102","msg":"Observed pod startup duration","v":0,"pod":{"name":"web-7d9f8c6b5-x2kqz","namespace":"shop"},"podStartSLOduration":1.409927554,"podStartE2EDuration":"7.94431769s"}"#

    static func ok(_ line: String) throws -> KubeletPodStartupObservation {
        let r = try #require(StartupLineParser.parse(line))
        switch r {
        case .success(let o): return o
        case .failure(let why): Issue.record("rejected: \(why)"); throw why
        }
    }

    static func utc(_ s: String) -> Int64 { GoTime.parseRFC3339(s)!.nanosecondsSinceEpoch }

    @Test func v1FailedPullIsParsedWithTheKubeletsSaturatedSLO() throws {
        let o = try Self.ok(Self.v1FailedPull)
        #expect(o.variant == .v1)
        #expect(o.pod == "kube-system/konnectivity-agent-gnc9k")
        #expect(o.sloSecondsText == "-9.223372029479458e+09")
        #expect(o.sloSeconds == -9.223372029479458e+09)
        #expect(o.created?.nanosecondsSinceEpoch == Self.utc("2022-12-30T15:33:06Z"))
        #expect(o.firstStartedPulling?.nanosecondsSinceEpoch == Self.utc("2022-12-30T15:33:09.258791695Z"))
        #expect(o.firstStartedPulling?.monotonicNanoseconds == 13_029_631_711)
        #expect(o.lastFinishedPulling == nil)
        #expect(o.e2eNanoseconds == 7_375_317_944)
    }

    @Test func v1WithoutPullHasNoPullWindow() throws {
        let o = try Self.ok(Self.v1NoPull)
        #expect(o.variant == .v1)
        #expect(o.firstStartedPulling == nil && o.lastFinishedPulling == nil)
        #expect(o.e2eNanoseconds == 2_131_321_639)
        #expect(o.sloSeconds == 2.131321639)
    }

    @Test func v2InCDTConvertsToUTC() throws {
        let o = try Self.ok(Self.v2CDT)
        #expect(o.variant == .v2)
        #expect(o.pod == "default/thumbnail-benchrealm1-tp8gd")
        #expect(o.created?.nanosecondsSinceEpoch == Self.utc("2023-06-14T17:40:56Z"))
        #expect(o.watchObservedRunning?.nanosecondsSinceEpoch == Self.utc("2023-06-14T17:40:58.105926002Z"))
        #expect(o.e2eNanoseconds == 2_105_926_002)
        let window = StartupLineParser.pullWindowNanoseconds(first: o.firstStartedPulling, last: o.lastFinishedPulling)
        #expect(window == 256_658_699) // on the monotonic clock: 812.335978677 − 812.079319978
    }

    @Test func v3LinesFromLines102And104() throws {
        let a = try Self.ok(Self.v3AKS)
        #expect(a.variant == .v3)
        #expect(a.e2eNanoseconds == 1_940_293_018)
        #expect(a.sloSeconds == 1.053410939)
        let b = try Self.ok(Self.v3Line104)
        #expect(b.variant == .v3)
        #expect(b.pod == "default/resource-consume-5fb68775dc-c74hl")
        #expect(b.e2eNanoseconds == 3_323_519_624)
        let c = try Self.ok(Self.v3NoPull)
        #expect(c.sloSeconds == 5.744415212)
        #expect(c.firstStartedPulling == nil)
    }

    @Test func v4LineCarriesPullAndInitTotals() throws {
        let o = try Self.ok(Self.v4Minikube)
        #expect(o.variant == .v4)
        #expect(o.totalImagesPullingNanoseconds == 0)
        #expect(o.totalInitContainerRuntimeNanoseconds == 0)
        #expect(o.isStatefulPod == true)
        #expect(o.imagePullSessionsCount == 0)
        #expect(o.e2eNanoseconds == 25_656_615_132)
        #expect(o.firstStartedPulling == nil)
    }

    @Test func truncatedRealLineIsRejectedNotGuessed() {
        let r = StartupLineParser.parse(Self.v4Truncated)
        guard case .failure = r else { Issue.record("truncated line accepted: \(String(describing: r))"); return }
    }

    @Test func jsonLoggingFormatKeepsTheNumberAsWritten() throws {
        let o = try Self.ok(Self.jsonComposed)
        #expect(o.pod == "shop/web-7d9f8c6b5-x2kqz")
        #expect(o.variant == .v3)
        #expect(o.sloSecondsText == "1.409927554")
        #expect(o.e2eNanoseconds == 7_944_317_690)
        #expect(o.created == nil) // time keys absent in JSON mode
    }

    @Test func jsonLineWithGoTimeStringsIsCrossChecked() throws {
        let good = #"{"ts":1,"msg":"Observed pod startup duration","v":0,"pod":{"name":"p","namespace":"ns"},"podStartSLOduration":1.5,"podStartE2EDuration":"2s","podCreationTimestamp":"2024-11-29 16:13:10 +0000 UTC","firstStartedPulling":"2024-11-29 16:13:10.5 +0000 UTC","lastFinishedPulling":"2024-11-29 16:13:11 +0000 UTC","observedRunningTime":"2024-11-29 16:13:11.9 +0000 UTC","watchObservedRunningTime":"2024-11-29 16:13:12 +0000 UTC"}"#
        let o = try Self.ok(good)
        #expect(o.created?.nanosecondsSinceEpoch == Self.utc("2024-11-29T16:13:10Z"))
        let bad = good.replacingOccurrences(of: "\"podStartSLOduration\":1.5", with: "\"podStartSLOduration\":1.6")
        guard case .failure(.inconsistent)? = StartupLineParser.parse(bad) else { Issue.record("inconsistent JSON accepted"); return }
    }

    @Test func sampleJournalsAgreeOnTheWebPod() throws {
        let v3 = try Samples.text("kubelet-journal-sample.log").split(separator: "\n").compactMap { StartupLineParser.parse(String($0)) }
        let v4 = try Samples.text("kubelet-journal-sample-v1.36.log").split(separator: "\n").compactMap { StartupLineParser.parse(String($0)) }
        #expect(v3.count == 2 && v4.count == 2)
        let w3 = try v3[0].get(), w4 = try v4[0].get()
        #expect(w3.variant == .v3 && w4.variant == .v4)
        #expect(w3.pod == "shop/web-7d9f8c6b5-x2kqz" && w4.pod == w3.pod)
        #expect(w3.sloSecondsText == "1.409927554")
        #expect(w4.sloSecondsText == "2.059399491")
        #expect(w3.e2eNanoseconds == 7_944_317_690 && w4.e2eNanoseconds == 7_944_317_690)
        #expect(w4.totalImagesPullingNanoseconds == 4_687_493_508)
        #expect(w4.totalInitContainerRuntimeNanoseconds == 1_197_424_691)
        #expect(w4.imagePullSessionsCount == 2)
        #expect(w3.created == w4.created)
        #expect(w3.watchObservedRunning == w4.watchObservedRunning)
        #expect(GoTime.formatRFC3339(w3.created!) == "2024-11-29T16:13:10Z")
        let c3 = try v3[1].get(), c4 = try v4[1].get()
        #expect(c3.pod == "kube-system/coredns-6f6b679f8f-5m7kq" && c4.pod == c3.pod)
        #expect(c3.sloSeconds == 1.988379004 && c4.sloSeconds == 1.988379004)
    }

    @Test(arguments: [
        ("+0800 CST", "2024-11-29T08:13:10Z"), ("+0200 CEST", "2024-11-29T14:13:10Z"),
        ("-0500 CDT", "2024-11-29T21:13:10Z"), ("+0530 +0530", "2024-11-29T10:43:10Z"),
    ])
    func nonUTCZonesAreHonoured(zone: String, utc: String) throws {
        let t = try #require(GoTime.parseTime("2024-11-29 16:13:10 \(zone)"))
        #expect(t == .time(KubeletTimestamp(nanosecondsSinceEpoch: Self.utc(utc))))
        // A whole line in that zone still cross-checks.
        let line = Self.v3AKS.replacingOccurrences(of: "+0000 UTC", with: zone)
        let o = try Self.ok(line)
        #expect(o.created?.nanosecondsSinceEpoch == Self.utc(utc))
    }

    @Test func goTimeEdgeCases() {
        #expect(GoTime.parseTime("0001-01-01 00:00:00 +0000 UTC") == .absent)
        #expect(GoTime.parseTime("2024-11-29 16:13:17.94431769 +0000 UTC m=+21824.194011241")
            == .time(KubeletTimestamp(nanosecondsSinceEpoch: Self.utc("2024-11-29T16:13:17.94431769Z"), monotonicNanoseconds: 21_824_194_011_241)))
        #expect(GoTime.parseTime("2024-11-29 16:13:17 +0000 UTC m=-1.5") != nil)
        #expect(GoTime.parseTime("2024-11-29 16:13:17 +0000") == nil)
        #expect(GoTime.parseTime("2024-11-29 16:13:17.1234567890 +0000 UTC") == nil)
        #expect(GoTime.parseTime("2024-13-29 16:13:17 +0000 UTC") == nil)
        // A monotonic reading too large for Int64 nanoseconds is rejected, not trapped on.
        #expect(GoTime.parseTime("2024-11-29 16:13:17 +0000 UTC m=+9999999999.999999999") == nil)
        #expect(GoTime.parseDuration("9999999999999999h") == nil)
    }

    @Test(arguments: [
        ("0s", 0), ("180.183041ms", 180_183_041), ("1.940293018s", 1_940_293_018), ("25.656615132s", 25_656_615_132),
        ("1m5.2s", 65_200_000_000), ("1h2m3s", 3_723_000_000_000), ("890ms", 890_000_000), ("1.5µs", 1_500), ("2us", 2_000),
        ("-1.5s", -1_500_000_000), ("7ns", 7),
    ] as [(String, Int64)])
    func goDurations(text: String, nanoseconds: Int64) {
        #expect(GoTime.parseDuration(text) == nanoseconds)
    }

    @Test func invalidDurations() {
        for s in ["", "s", "1", ".s", "1x", "1.2.3s", "--1s"] { #expect(GoTime.parseDuration(s) == nil, "\(s)") }
    }

    @Test func goEscapedPodValuesAndUnquotedValuesAreHandled() throws {
        // A quoted value with escapes elsewhere in the line must not confuse the splitter.
        let line = Self.v3AKS.replacingOccurrences(of: #" pod="default/nginx""#, with: #" pod="default/nginx" extra="a \"quoted\" \\ value\n""#)
        let o = try Self.ok(line)
        #expect(o.pod == "default/nginx")
        // Unknown unquoted keys (e.g. podUID=…) are tolerated.
        let withUID = Self.v3AKS + " podUID=29614ee5-0000-4000-8000-000000000000"
        #expect(try Self.ok(withUID).pod == "default/nginx")
    }

    @Test func matchesOnTheMessageNotFileLine() throws {
        let moved = Self.v3AKS.replacingOccurrences(of: "pod_startup_latency_tracker.go:102", with: "tracker.go:999")
        #expect(try Self.ok(moved).pod == "default/nginx")
        let noHeader = String(Self.v3AKS[Self.v3AKS.range(of: "\"Observed")!.lowerBound...])
        #expect(try Self.ok(noHeader).pod == "default/nginx")
    }

    @Test func damagedFieldsAreRejected() {
        let cases = [
            Self.v3AKS.replacingOccurrences(of: "podStartSLOduration=1.053410939", with: "podStartSLOduration=1.053410938"),
            Self.v3AKS.replacingOccurrences(of: "\"1.940293018s\"", with: "\"1.940293019s\""),
            Self.v3AKS.replacingOccurrences(of: "m=+21817.901638738", with: "m=+21817.901638737"),
            Self.v3AKS.replacingOccurrences(of: "16:13:11.651945187", with: "16:13:11.653945187"),
            Self.v3AKS.replacingOccurrences(of: " lastFinishedPulling=", with: " lastFinishedPuling="),
            Self.v3AKS.replacingOccurrences(of: "pod=\"default/nginx\"", with: "pod=\"default/nginx\" pod=\"x/y\""),
            Self.v3AKS.replacingOccurrences(of: "pod=\"default/nginx\"", with: "pod=\"nginx\""),
            Self.v3AKS.replacingOccurrences(of: "m=+21818.189952569", with: "m=+21819.189952569"),
        ]
        for c in cases {
            guard case .failure? = StartupLineParser.parse(c) else { Issue.record("accepted: \(c)"); continue }
        }
    }
}
