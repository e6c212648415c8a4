import Exporter
import Foundation
import PodstartTestSupport
import PodstartCore
import Testing

@Suite("Metrics exposition")
struct MetricsRegistryTests {
    /// A registry after a fixed set of observations: one start of each outcome, an image past
    /// the label limit, probe counters and a source error.
    static func populated() -> MetricsRegistry {
        let r = Fixtures.registry(imageLabelLimit: 1)
        r.register(probePrograms: ["exec", "read"], sources: ["containerd-log", "kubelet-log"])
        r.observe(trace: Fixtures.readyStart())
        r.observe(trace: Fixtures.failedStart())
        r.recordImagePull(image: "registry.local/app:1", bytes: 5_000_000)
        r.recordImagePull(image: "registry.local/other:2", bytes: 1000)
        r.setImageSize(image: "registry.local/app:1", unpackedBytes: 3_000_000)
        r.addProbeEvents(program: "exec", count: 42)
        r.addProbeEventsLost(program: "read", count: 3)
        r.recordSourceError(source: "kubelet-log")
        r.recordCRIConnectionClose(retried: true)
        r.recordCRIConnectionClose(retried: true)
        r.recordCRIConnectionClose(retried: false)
        r.setProbesEnabled(true)
        r.setProbeEventsDropped(total: 7)
        r.setProbeEventsDropped(total: 5)  // a smaller reading is no reset
        r.addProbeEventsRejected(reason: .unknownVersion, count: 2)
        r.recordStreamClose(source: "containerd-log")
        r.recordStoreSaveFailure()
        r.setStoreHealthy(false)
        r.recordAPIRefusal(.unauthenticated)
        r.recordAPIRefusal(.overloaded)
        r.recordAPIRefusal(.overloaded)
        r.recordAPIReloadError(file: "token")
        return r
    }

    /// Hand-derived: e2e 3 s lands in le="3" (buckets are inclusive); SLO = 3 − 2.5 s of pull
    /// = 0.5 s, in le="0.5"; 300,000 bytes read fall in le="1048576"; 300,000 / 3,000,000 = 0.1.
    static let golden = #"""
# HELP podstart_api_reload_errors_total Changed TLS certificate/key (tls) or API token (token) files the HTTP API could not use; it kept serving with the previous ones.
# TYPE podstart_api_reload_errors_total counter
podstart_api_reload_errors_total{file="tls"} 0
podstart_api_reload_errors_total{file="token"} 1
# HELP podstart_api_requests_refused_total Requests to /v1 the HTTP API turned away, by reason (unauthenticated 401, forbidden 403, unavailable 503: the API server could not review them, overloaded 429: too many at once).
# TYPE podstart_api_requests_refused_total counter
podstart_api_requests_refused_total{reason="forbidden"} 0
podstart_api_requests_refused_total{reason="overloaded"} 2
podstart_api_requests_refused_total{reason="unauthenticated"} 1
podstart_api_requests_refused_total{reason="unavailable"} 0
# HELP podstart_build_info Build information about the podstart binary; the value is always 1.
# TYPE podstart_build_info gauge
podstart_build_info{revision="abc123",version="0.1.0"} 1
# HELP podstart_cri_connection_closes_total Connections to the container runtime that closed under a call while the runtime ran, by outcome (retried: the call was repeated on a new connection; failed: it was not).
# TYPE podstart_cri_connection_closes_total counter
podstart_cri_connection_closes_total{outcome="failed"} 1
podstart_cri_connection_closes_total{outcome="retried"} 2
# HELP podstart_image_pull_bytes_total Bytes of image content pulled, by image (images without a label slot are summed as other).
# TYPE podstart_image_pull_bytes_total counter
podstart_image_pull_bytes_total{image="other"} 1000
podstart_image_pull_bytes_total{image="registry.local/app:1"} 5000000
# HELP podstart_image_startup_read_ratio Share of an image's unpacked bytes its containers read before ready, at the latest start (labelled images of known size only).
# TYPE podstart_image_startup_read_ratio gauge
podstart_image_startup_read_ratio{image="registry.local/app:1"} 0.1
# HELP podstart_phase_duration_seconds Seconds a pod start that reached ready spent in each phase; top-level phases add up to the end-to-end time, download, decompress and pull_other add up to pull; lazy_fetch is the time inside start and probe that container tasks waited on FUSE requests.
# TYPE podstart_phase_duration_seconds histogram
podstart_phase_duration_seconds_bucket{phase="download",le="0.5"} 0
podstart_phase_duration_seconds_bucket{phase="download",le="1"} 0
podstart_phase_duration_seconds_bucket{phase="download",le="2"} 0
podstart_phase_duration_seconds_bucket{phase="download",le="3"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="4"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="5"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="6"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="8"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="10"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="20"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="30"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="45"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="60"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="120"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="180"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="240"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="300"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="360"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="480"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="600"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="900"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="1200"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="1800"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="2700"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="3600"} 1
podstart_phase_duration_seconds_bucket{phase="download",le="+Inf"} 1
podstart_phase_duration_seconds_sum{phase="download"} 2.5
podstart_phase_duration_seconds_count{phase="download"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="0.5"} 0
podstart_phase_duration_seconds_bucket{phase="pull",le="1"} 0
podstart_phase_duration_seconds_bucket{phase="pull",le="2"} 0
podstart_phase_duration_seconds_bucket{phase="pull",le="3"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="4"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="5"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="6"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="8"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="10"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="20"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="30"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="45"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="60"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="120"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="180"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="240"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="300"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="360"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="480"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="600"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="900"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="1200"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="1800"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="2700"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="3600"} 1
podstart_phase_duration_seconds_bucket{phase="pull",le="+Inf"} 1
podstart_phase_duration_seconds_sum{phase="pull"} 2.5
podstart_phase_duration_seconds_count{phase="pull"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="0.5"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="1"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="2"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="3"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="4"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="5"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="6"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="8"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="10"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="20"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="30"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="45"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="60"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="120"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="180"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="240"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="300"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="360"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="480"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="600"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="900"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="1200"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="1800"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="2700"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="3600"} 1
podstart_phase_duration_seconds_bucket{phase="start",le="+Inf"} 1
podstart_phase_duration_seconds_sum{phase="start"} 0.5
podstart_phase_duration_seconds_count{phase="start"} 1
# HELP podstart_pod_start_duration_seconds Seconds from pod creation to ready, end to end, including image pulls and init containers (compare kubelet_pod_start_total_duration_seconds); starts that reached ready.
# TYPE podstart_pod_start_duration_seconds histogram
podstart_pod_start_duration_seconds_bucket{le="0.5"} 0
podstart_pod_start_duration_seconds_bucket{le="1"} 0
podstart_pod_start_duration_seconds_bucket{le="2"} 0
podstart_pod_start_duration_seconds_bucket{le="3"} 1
podstart_pod_start_duration_seconds_bucket{le="4"} 1
podstart_pod_start_duration_seconds_bucket{le="5"} 1
podstart_pod_start_duration_seconds_bucket{le="6"} 1
podstart_pod_start_duration_seconds_bucket{le="8"} 1
podstart_pod_start_duration_seconds_bucket{le="10"} 1
podstart_pod_start_duration_seconds_bucket{le="20"} 1
podstart_pod_start_duration_seconds_bucket{le="30"} 1
podstart_pod_start_duration_seconds_bucket{le="45"} 1
podstart_pod_start_duration_seconds_bucket{le="60"} 1
podstart_pod_start_duration_seconds_bucket{le="120"} 1
podstart_pod_start_duration_seconds_bucket{le="180"} 1
podstart_pod_start_duration_seconds_bucket{le="240"} 1
podstart_pod_start_duration_seconds_bucket{le="300"} 1
podstart_pod_start_duration_seconds_bucket{le="360"} 1
podstart_pod_start_duration_seconds_bucket{le="480"} 1
podstart_pod_start_duration_seconds_bucket{le="600"} 1
podstart_pod_start_duration_seconds_bucket{le="900"} 1
podstart_pod_start_duration_seconds_bucket{le="1200"} 1
podstart_pod_start_duration_seconds_bucket{le="1800"} 1
podstart_pod_start_duration_seconds_bucket{le="2700"} 1
podstart_pod_start_duration_seconds_bucket{le="3600"} 1
podstart_pod_start_duration_seconds_bucket{le="+Inf"} 1
podstart_pod_start_duration_seconds_sum 3
podstart_pod_start_duration_seconds_count 1
# HELP podstart_pod_start_slo_duration_seconds Seconds from pod creation (creationTimestamp) to the pod watch showing every container running, minus the window from the first image pull started to the last finished, as kubelet v1.28 measures kubelet_pod_start_sli_duration_seconds; starts that reached ready.
# TYPE podstart_pod_start_slo_duration_seconds histogram
podstart_pod_start_slo_duration_seconds_bucket{le="0.5"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="1"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="2"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="3"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="4"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="5"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="6"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="8"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="10"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="20"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="30"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="45"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="60"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="120"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="180"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="240"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="300"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="360"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="480"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="600"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="900"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="1200"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="1800"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="2700"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="3600"} 1
podstart_pod_start_slo_duration_seconds_bucket{le="+Inf"} 1
podstart_pod_start_slo_duration_seconds_sum 0.5
podstart_pod_start_slo_duration_seconds_count 1
# HELP podstart_pod_starts_total Pod starts recorded, by outcome (ready or failed).
# TYPE podstart_pod_starts_total counter
podstart_pod_starts_total{outcome="failed"} 1
podstart_pod_starts_total{outcome="ready"} 1
# HELP podstart_pod_starts_readiness_unknown_total Pod starts recorded ready with readiness unknown: no readiness source (API server, kubelet /pods) ran, so their end is when every container was running, not the Ready condition.
# TYPE podstart_pod_starts_readiness_unknown_total counter
podstart_pod_starts_readiness_unknown_total 0
# HELP podstart_probe_events_dropped_total Kernel probe records read from the ring buffer and dropped because the agent's queue was full (the agent fell behind).
# TYPE podstart_probe_events_dropped_total counter
podstart_probe_events_dropped_total 7
# HELP podstart_probe_events_lost_total Kernel probe events lost before podstart read them (ring buffer full), by program.
# TYPE podstart_probe_events_lost_total counter
podstart_probe_events_lost_total{program="exec"} 0
podstart_probe_events_lost_total{program="read"} 3
# HELP podstart_probe_events_rejected_total Kernel probe records skipped because they could not be decoded, by reason (truncated, unknown_kind, unknown_version).
# TYPE podstart_probe_events_rejected_total counter
podstart_probe_events_rejected_total{reason="truncated"} 0
podstart_probe_events_rejected_total{reason="unknown_kind"} 0
podstart_probe_events_rejected_total{reason="unknown_version"} 2
# HELP podstart_probe_events_total Kernel probe events received, by program.
# TYPE podstart_probe_events_total counter
podstart_probe_events_total{program="exec"} 42
podstart_probe_events_total{program="read"} 0
# HELP podstart_probes_enabled 1 while the kernel probes are loaded, 0 when podstart runs on logs and the runtime alone.
# TYPE podstart_probes_enabled gauge
podstart_probes_enabled 1
# HELP podstart_source_errors_total Errors reading an input source (malformed records, failed scrapes, lost connections), by source.
# TYPE podstart_source_errors_total counter
podstart_source_errors_total{source="containerd-log"} 0
podstart_source_errors_total{source="kubelet-log"} 1
# HELP podstart_source_stream_closes_total Inputs that worked and then ended (an event stream or connection closed, a log file went away), by source; the agent reconnects.
# TYPE podstart_source_stream_closes_total counter
podstart_source_stream_closes_total{source="containerd-log"} 1
podstart_source_stream_closes_total{source="kubelet-log"} 0
# HELP podstart_startup_read_bytes Bytes a container read from files before its pod was ready (containers whose accesses were recorded).
# TYPE podstart_startup_read_bytes histogram
podstart_startup_read_bytes_bucket{le="65536"} 0
podstart_startup_read_bytes_bucket{le="262144"} 0
podstart_startup_read_bytes_bucket{le="1048576"} 1
podstart_startup_read_bytes_bucket{le="4194304"} 1
podstart_startup_read_bytes_bucket{le="16777216"} 1
podstart_startup_read_bytes_bucket{le="67108864"} 1
podstart_startup_read_bytes_bucket{le="268435456"} 1
podstart_startup_read_bytes_bucket{le="1073741824"} 1
podstart_startup_read_bytes_bucket{le="4294967296"} 1
podstart_startup_read_bytes_bucket{le="+Inf"} 1
podstart_startup_read_bytes_sum 300000
podstart_startup_read_bytes_count 1
# HELP podstart_store_healthy 1 while the state store takes saves and its file is the one the agent opened; 0 while it does not (/readyz then answers 503 with the reason).
# TYPE podstart_store_healthy gauge
podstart_store_healthy 0
# HELP podstart_store_save_failures_total Finished pod starts the state store refused to save (disk full, database corrupt or gone, I/O error): in the metrics, missing from /v1.
# TYPE podstart_store_save_failures_total counter
podstart_store_save_failures_total 1
"""# + "\n"

    @Test func textExpositionMatchesGoldenForFixedObservations() {
        let text = Self.populated().render(format: .text)
        if text != Self.golden {
            let got = text.split(separator: "\n", omittingEmptySubsequences: false)
            let want = Self.golden.split(separator: "\n", omittingEmptySubsequences: false)
            let first = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
            Issue.record("first difference at line \(first + 1):\n got: \(first < got.count ? got[first] : "<end>")\nwant: \(first < want.count ? want[first] : "<end>")")
        }
    }

    @Test func openMetricsRenamesCounterFamiliesUsesInfoAndEndsWithEOF() {
        let om = Self.populated().render(format: .openMetrics)
        #expect(om.hasSuffix("\n# EOF\n"))
        #expect(om.components(separatedBy: "# EOF").count == 2)
        let lines = om.split(separator: "\n").map(String.init)
        #expect(lines.contains("# TYPE podstart_build info"))
        #expect(lines.contains(#"podstart_build_info{revision="abc123",version="0.1.0"} 1"#))
        #expect(lines.contains("# TYPE podstart_image_pull_bytes counter"))
        #expect(lines.contains("# TYPE podstart_cri_connection_closes counter"))
        #expect(lines.contains(#"podstart_cri_connection_closes_total{outcome="retried"} 2"#))
        #expect(lines.contains(#"podstart_image_pull_bytes_total{image="registry.local/app:1"} 5000000"#))
        #expect(lines.contains("# TYPE podstart_pod_starts counter"))
        #expect(lines.contains(#"podstart_pod_start_duration_seconds_bucket{le="3.0"} 1"#))
        #expect(lines.contains(#"podstart_pod_start_duration_seconds_bucket{le="0.5"} 0"#))
        #expect(lines.contains(#"podstart_startup_read_bytes_bucket{le="1048576.0"} 1"#))
        // Every sample belongs to the family declared last (OpenMetrics forbids interleaving).
        var family = ""
        for line in lines where line != "# EOF" {
            if line.hasPrefix("# TYPE ") { family = String(line.split(separator: " ")[2]); continue }
            if line.hasPrefix("#") { continue }
            #expect(line.hasPrefix(family + "_") || line.hasPrefix(family + " ") || line.hasPrefix(family + "{"), "\(line) outside \(family)")
        }
        // Same samples as the text format apart from `le` spelling.
        let text = Self.populated().render(format: .text).split(separator: "\n").filter { !$0.hasPrefix("#") }
        let omSamples = lines.filter { !$0.hasPrefix("#") }
        #expect(text.count == omSamples.count)
    }

    @Test func sloExcludesPullAndInitButNotOtherPhases() {
        var trace = Fixtures.readyStart()
        let t0 = trace.created, s = Fixtures.s
        trace.phases = [
            PhaseSpan(name: .sandbox, start: t0, end: t0 + s, parent: nil, source: .cri),
            PhaseSpan(name: .`init`, start: t0 + s, end: t0 + 3 * s / 2, parent: nil, source: .cri),
            PhaseSpan(name: .pull, start: t0 + 3 * s / 2, end: t0 + 5 * s / 2, parent: nil, source: .kernel),
            PhaseSpan(name: .download, start: t0 + 3 * s / 2, end: t0 + 5 * s / 2, parent: .pull, source: .kernel),
            PhaseSpan(name: .start, start: t0 + 5 * s / 2, end: t0 + 3 * s, parent: nil, source: .cri),
        ]
        #expect(MetricsRegistry.sloSeconds(of: trace) == 1.5)
    }

    @Test func imageLabelsStayBoundedWithAThousandDistinctImages() {
        let r = Fixtures.registry(imageLabelLimit: 20)
        for i in 0..<1000 {
            r.observe(trace: Fixtures.readyStart(uid: "uid-\(i)", name: "pod-\(i)", created: Fixtures.t0 + Int64(i), image: "registry.local/img-\(i):v1"))
            r.recordImagePull(image: "registry.local/img-\(i):v1", bytes: 10)
            r.recordSourceError(source: "source-\(i)")
            r.addProbeEvents(program: "prog-\(i)", count: 1)
        }
        #expect(r.seriesCount(family: "podstart_image_pull_bytes_total") == 21)
        #expect(r.seriesCount(family: "podstart_source_errors_total") == 33)
        #expect(r.seriesCount(family: "podstart_probe_events_total") == 33)
        let text = r.render(format: .text)
        let imageValues = Set(text.split(separator: "\n").filter { $0.hasPrefix("podstart_image_pull_bytes_total{") })
        #expect(imageValues.count == 21)
        #expect(text.contains(#"podstart_image_pull_bytes_total{image="other"} 9800"#))
        // The first 20 keep their slots; nothing about pods appears in any label.
        #expect(text.contains(#"image="registry.local/img-19:v1""#))
        #expect(!text.contains("img-20:"))
        #expect(!text.contains("pod-") && !text.contains("uid-"))
        #expect(text.utf8.count < 40_000)
    }

    @Test func allowListedImagesGetSlotsBeyondTheLimit() {
        let r = MetricsRegistry(configuration: .init(imageAllowList: ["vip:1"], imageLabelLimit: 1, buildInfo: BuildInfo(version: "t")))
        r.recordImagePull(image: "first:1", bytes: 1)
        r.recordImagePull(image: "second:1", bytes: 1)
        r.recordImagePull(image: "vip:1", bytes: 1)
        let text = r.render(format: .text)
        #expect(text.contains(#"{image="vip:1"} 1"#))
        #expect(text.contains(#"{image="first:1"} 1"#))
        #expect(text.contains(#"{image="other"} 1"#))
    }

    @Test func labelValuesAreEscaped() {
        let r = Fixtures.registry()
        r.recordImagePull(image: "odd\"name\\with\nnewline", bytes: 7)
        #expect(r.render(format: .text).contains(#"podstart_image_pull_bytes_total{image="odd\"name\\with\nnewline"} 7"#))
    }

    @Test func probeTotalsOnlyRise() {
        let r = Fixtures.registry()
        r.setProbeTotals(program: "exec", events: 100, lost: 5)
        r.setProbeTotals(program: "exec", events: 40, lost: 1)
        let text = r.render(format: .text)
        #expect(text.contains(#"podstart_probe_events_total{program="exec"} 100"#))
        #expect(text.contains(#"podstart_probe_events_lost_total{program="exec"} 5"#))
    }

    @Test func acceptHeaderNegotiation() {
        #expect(ExpositionFormat.negotiate(accept: nil) == .text)
        #expect(ExpositionFormat.negotiate(accept: "text/plain;version=0.0.4") == .text)
        #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1") == .openMetrics)
        #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text; q=0") == .text)
    }

    /// `promtool check metrics` parses the exposition and lints names, types, HELP and units;
    /// it prints nothing and exits 0 only when all is well.
    @Test func promtoolCheckMetricsReportsNothing() throws {
        guard let promtool = Command.which("promtool") else {
            Issue.record("promtool is not installed: run scripts/install-deps.sh (Debian package prometheus)")
            return
        }
        let r = Self.populated()
        r.recordImagePull(image: "odd\"name\\with\nnewline", bytes: 7)
        for i in 0..<50 { r.observe(trace: Fixtures.readyStart(uid: "u\(i)", created: Fixtures.t0 + Int64(i) * Fixtures.s, image: "img-\(i % 30)")) }
        let (status, output) = try Command.run(promtool, ["check", "metrics"], stdin: r.render(format: .text))
        #expect(status == 0, "promtool exited \(status): \(output)")
        #expect(output.isEmpty, "promtool reported: \(output)")
    }
}
