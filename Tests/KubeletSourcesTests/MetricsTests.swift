import Foundation
import PodstartCore
import PodstartTestSupport
import Testing
@testable import KubeletSources

@Suite struct MetricsTests {
    static func sample() throws -> PrometheusText.Exposition {
        PrometheusText.parse(try Samples.text("kubelet-metrics-sample.prom"))
    }

    @Test func sampleExpositionParsesWithoutErrors() throws {
        let e = try Self.sample()
        #expect(e.errors.isEmpty)
        #expect(!e.openMetrics)
        let names = e.families.map(\.name)
        #expect(names == names.sorted())
        #expect(e.family("kubelet_pod_start_sli_duration_seconds")?.type == .histogram)
        #expect(e.family("kubelet_first_network_pod_start_sli_duration_seconds")?.type == .gauge)
        #expect(e.family("kubelet_pod_start_sli_duration_seconds")?.help?.hasPrefix("[ALPHA] Duration in seconds to start a pod, excluding time to pull images") == true)
        // Every sample line of the file landed in some family.
        let sampleLines = try Samples.text("kubelet-metrics-sample.prom").split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        #expect(e.families.map(\.samples.count).reduce(0, +) == sampleLines)
    }

    @Test func podStartMetricsAgreeWithTheLogAndEvents() throws {
        let m = KubeletPodStartMetrics(try Self.sample())
        let sli = try #require(m.sli)
        #expect(sli.count == 14 && sli.sum == 25.978512271)
        #expect(sli.buckets.map(\.upperBound) == [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600, .infinity])
        #expect(m.total?.count == 14 && m.total?.sum == 84.247769932)
        // The first network pod of the sample node is coredns: its logged SLO is the gauge.
        let log = try Samples.text("kubelet-journal-sample.log")
        let coredns = log.split(separator: "\n").compactMap { try? StartupLineParser.parse(String($0))?.get() }.first { $0.name.hasPrefix("coredns") }
        #expect(m.firstNetworkPodSLISeconds == coredns?.sloSeconds)
        // The web pod's two pulls (events: busybox 2152284 B in 1.327 s, nginx 72099400 B in 3.36 s)
        // fall in the buckets the kubelet's size labels put them in.
        let small = try #require(m.imagePull["0-10MB"]), medium = try #require(m.imagePull["10MB-100MB"])
        #expect(small.buckets.first { $0.upperBound == 5 }!.count >= 1)
        #expect(medium.buckets.first { $0.upperBound == 5 }!.count == 1)
        #expect(m.imagePull.keys.sorted() == ["0-10MB", "10MB-100MB", "500MB-1GB"])
        #expect(m.runtimeOperations["pull_image"]?.count == 9)
        #expect(m.runtimeOperationErrors["pull_image"] == 2)
        #expect(m.startedPods == 14 && m.startedPodsErrors == 0)
        #expect(m.startedContainers == ["container": 24, "init_container": 7])
        #expect(m.runPodSandbox[""]?.count == 14)
        #expect(m.podWorker["create"]?.count == 5 && m.podWorker["sync"]?.count == 48 && m.podWorker["update"]?.count == 3)
        #expect(m.runtimeOperationsTotal["run_podsandbox"] == 14 && m.runtimeOperationsTotal["pull_image"] == 9)
        // Consistency inside the sample: one sandbox per started pod, and every pull's runtime
        // operation counted in both the histogram and the counter.
        #expect(m.runtimeOperationsTotal["run_podsandbox"] == m.startedPods)
        #expect(m.runtimeOperations["pull_image"]?.count == m.runtimeOperationsTotal["pull_image"])
        #expect(m.imagePull.values.map(\.count).reduce(0, +) == 7) // 9 pulls − 2 errors
        #expect(m.podWorkerStart == nil && m.startedContainersErrors.isEmpty && m.runPodSandboxErrors.isEmpty)
    }

    @Test func quantilesInterpolateLikePrometheus() throws {
        let sli = try #require(KubeletPodStartMetrics(try Self.sample()).sli)
        // rank 7 of 14 lies in (1, 2] holding counts 3…11: 1 + (7 − 3)/8.
        #expect(sli.quantile(0.5) == 1.5)
        // rank 13.86 lies in (5, 6] (13 → 14): 5 + 0.86.
        #expect(abs(sli.quantile(0.99) - 5.86) < 1e-9)
    }

    @Test func successiveScrapesGiveIntervalPercentiles() throws {
        let text = try Samples.text("kubelet-metrics-sample.prom")
        let first = KubeletPodStartMetrics(PrometheusText.parse(text))
        // Three more pods, all between 3 and 4 seconds, and one more started pod.
        var next = text
        for (le, old) in [("4", 13), ("5", 13), ("6", 14), ("8", 14), ("10", 14), ("20", 14), ("30", 14), ("45", 14), ("60", 14), ("120", 14),
                          ("180", 14), ("240", 14), ("300", 14), ("360", 14), ("480", 14), ("600", 14), ("900", 14), ("1200", 14),
                          ("1800", 14), ("2700", 14), ("3600", 14), ("+Inf", 14)] {
            next = next.replacingOccurrences(of: "kubelet_pod_start_sli_duration_seconds_bucket{le=\"\(le)\"} \(old)\n",
                                             with: "kubelet_pod_start_sli_duration_seconds_bucket{le=\"\(le)\"} \(old + 3)\n")
        }
        next = next.replacingOccurrences(of: "kubelet_pod_start_sli_duration_seconds_sum 25.978512271", with: "kubelet_pod_start_sli_duration_seconds_sum 36.478512271")
            .replacingOccurrences(of: "kubelet_pod_start_sli_duration_seconds_count 14", with: "kubelet_pod_start_sli_duration_seconds_count 17")
            .replacingOccurrences(of: "kubelet_started_pods_total 14", with: "kubelet_started_pods_total 17")
        let second = KubeletPodStartMetrics(PrometheusText.parse(next))
        let interval = KubeletMetricsInterval(previous: first, current: second)
        let sli = try #require(interval.sli)
        #expect(sli.count == 3)
        #expect(sli.p50 == 3.5)
        #expect(abs(sli.meanSeconds - 3.5) < 1e-9)
        #expect(interval.startedPods == 3)
        // A kubelet restart (counters went down) starts over.
        let afterRestart = KubeletMetricsInterval(previous: second, current: first)
        #expect(afterRestart.sli?.count == 14)
        // Nothing happened → empty interval, NaN percentiles.
        let idle = KubeletMetricsInterval(previous: first, current: first)
        #expect(idle.sli?.count == 0 && idle.sli?.p99.isNaN == true)
    }

    @Test func openMetricsWithExemplarsTimestampsAndEscapes() {
        let text = """
            # HELP http_requests Requests \\\\ with "quotes"\\nand a newline.
            # TYPE http_requests counter
            # UNIT http_requests requests
            http_requests_total{path="/a\\"b\\\\c\\nd",code="200"} 1027 1395066363.123 # {trace_id="KOO5S4vxi0o"} 0.67 1395066363.000
            http_requests_created{path="/a\\"b\\\\c\\nd",code="200"} 1395066363.0
            # TYPE rpc_seconds summary
            rpc_seconds{quantile="0.5"} 0.0045
            rpc_seconds{quantile="0.99"} +Inf
            rpc_seconds_sum 17.5
            rpc_seconds_count 2
            # TYPE temp gauge
            temp NaN
            temp -Inf 1700000000000
            # EOF
            """
        let e = PrometheusText.parse(text)
        #expect(e.errors.isEmpty)
        #expect(e.openMetrics)
        let c = e.family("http_requests")!
        #expect(c.type == .counter && c.unit == "requests")
        #expect(c.help == "Requests \\ with \"quotes\"\nand a newline.")
        #expect(c.samples.count == 2)
        let s = c.samples[0]
        #expect(s.label("path") == "/a\"b\\c\nd" && s.value == 1027 && s.timestamp == 1395066363.123)
        #expect(s.exemplar == PrometheusText.Exemplar(labels: [.init("trace_id", "KOO5S4vxi0o")], value: 0.67, timestamp: 1395066363.0))
        let sum = e.family("rpc_seconds")!
        #expect(sum.type == .summary && sum.samples.count == 4)
        #expect(sum.samples[1].value == .infinity)
        let g = e.family("temp")!
        #expect(g.samples[0].value.isNaN && g.samples[1].value == -.infinity && g.samples[1].timestamp == 1_700_000_000_000)
    }

    @Test func malformedLinesAreCountedAndTheRestKept() {
        let text = """
            # TYPE a counter
            a_total 1
            a_total{x="unterminated} 2
            b{x="1",x="2"} 3
            c 1.2.3
            d{="v"} 1
            e 5 6 7
            f{x="ok"} 4
            """
        let e = PrometheusText.parse(text)
        #expect(e.errors.map(\.line) == [3, 4, 5, 6, 7])
        #expect(e.family("a")?.samples.count == 1)
        #expect(e.family("f")?.samples.first?.value == 4)
    }

    @Test func randomCorruptionNeverCrashesTheMetricsParser() throws {
        var rng = SplitMix(state: 99)
        let base = Array(try Samples.text("kubelet-metrics-sample.prom").utf8)
        for _ in 0..<60 {
            var b = base
            for _ in 0..<20 { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...127, using: &rng) }
            let e = PrometheusText.parse(String(decoding: b, as: UTF8.self))
            let m = KubeletPodStartMetrics(e)
            if let sli = m.sli { _ = sli.quantile(0.99) }
        }
    }
}
