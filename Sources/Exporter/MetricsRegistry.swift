import PodstartCore
import Synchronization

/// What `podstart_build_info` says about this binary.
public struct BuildInfo: Sendable, Hashable {
    public var version: String
    /// The git commit the binary was built from ("unknown" when not known).
    public var revision: String
    public init(version: String, revision: String = "unknown") {
        self.version = version
        self.revision = revision
    }
}

/// podstart's Prometheus metrics: made once, updated from any thread, rendered by `/metrics`.
///
/// Label sets are bounded by construction: phases and outcomes are closed vocabularies; images,
/// probe programs and sources get their own label value only while a fixed number of slots lasts
/// (plus an allow-list of images), everything after that is folded into `"other"`. Slots are
/// sticky: a counter that moved between label values would look like a reset to `rate()`, so an
/// image that gets a slot keeps it for the life of the process. Never a pod name or UID.
///
/// This file holds what is measured; MetricsSeries.swift the series that hold it, and
/// MetricsRegistry+Exposition.swift how it is rendered. Rendering is hand-written: every series'
/// label text is rendered once when the series is made, so `render` only appends those strings
/// and formats numbers.
public final class MetricsRegistry: Sendable {
    /// The kubelet's `podStartupDurationBuckets` (pkg/kubelet/metrics), so podstart's histograms
    /// can be compared bucket for bucket with `kubelet_pod_start_sli_duration_seconds`.
    public static let podStartupDurationBuckets: [Double] = [
        0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
    ]
    /// 64 KiB to 4 GiB in powers of four: start-up reads range from a static binary's few hundred
    /// KiB to a JVM's or Python's hundreds of MiB; nine buckets keep the histogram small.
    public static let startupReadBytesBuckets: [Double] = (0..<9).map { Double(UInt64(65_536) << (2 * UInt64($0))) }
    /// The label value that collects everything without a slot of its own.
    public static let otherLabel = "other"

    public struct Configuration: Sendable {
        /// Images (by reference, as the pod spec names them) that get a label slot of their
        /// own beyond the first `imageLabelLimit` seen.
        public var imageAllowList: Set<String>
        /// How many images, in order of first sighting, get their own `image` label value.
        public var imageLabelLimit: Int
        /// How many distinct probe programs and sources get their own label value each.
        public var otherLabelLimit: Int
        public var buildInfo: BuildInfo
        public init(imageAllowList: Set<String> = [], imageLabelLimit: Int = 20, otherLabelLimit: Int = 32,
                    buildInfo: BuildInfo) {
            self.imageAllowList = imageAllowList
            self.imageLabelLimit = max(0, imageLabelLimit)
            self.otherLabelLimit = max(0, otherLabelLimit)
            self.buildInfo = buildInfo
        }
    }

    let configuration: Configuration
    /// What is measured so far; `render` copies it out (MetricsRegistry+Exposition.swift).
    let state: Mutex<State>

    public init(configuration: Configuration) {
        self.configuration = configuration
        state = Mutex(State(configuration: configuration))
    }

    // MARK: recording

    /// Records one finished pod start. Durations go into the histograms only for starts that
    /// reached ready (the kubelet's SLI does the same); every start counts in
    /// `podstart_pod_starts_total{outcome}`; those recorded without a readiness source also in
    /// `podstart_pod_starts_readiness_unknown_total`.
    public func observe(trace: PodStartTrace) {
        let e2e = trace.e2eSeconds
        let slo = Self.sloSeconds(of: trace)
        var phaseSeconds: [(Int, Double)] = []
        for (i, phase) in State.phaseOrder.enumerated() where trace.phases.contains(where: { $0.name == phase }) {
            phaseSeconds.append((i, trace.seconds(of: phase)))
        }
        let lazyRequests = trace.containers.reduce(UInt64(0)) { $0 &+ $1.lazyFetches.reduce(UInt64(0)) { $0 &+ $1.requests } }
        let lazyBytes = trace.containers.reduce(UInt64(0)) { $0 &+ $1.lazyFetches.reduce(UInt64(0)) { $0 &+ $1.bytes } }
        let reads: [(String, UInt64)] = trace.containers.compactMap { c in
            c.accesses.isEmpty ? nil : (c.image, c.accesses.reduce(UInt64(0)) { $0 &+ $1.bytes })
        }
        state.withLock { s in
            s.starts[trace.outcome == .ready ? State.readyIndex : State.failedIndex].value += 1
            if trace.outcome == .ready, trace.readiness == .unknown { s.readinessUnknown += 1 }
            s.lazyFetchRequests.value &+= lazyRequests
            s.lazyFetchBytes.value &+= lazyBytes
            if trace.outcome == .ready {
                s.e2e.histogram.observe(e2e)
                s.slo.histogram.observe(slo)
                for (i, seconds) in phaseSeconds { s.phases[i].histogram.observe(seconds) }
            }
            for (image, bytes) in reads {
                s.readBytes.histogram.observe(Double(bytes))
                let slot = s.imageSlot(for: image, configuration: configuration)
                if s.images[slot].label != Self.otherLabel { s.images[slot].lastReadBytes = bytes }
            }
        }
    }

    /// The SLO duration of a start: the kubelet v1.28 SLI (`trace.sli`: creationTimestamp → the
    /// watch showing every container running, minus the first-pull-to-last-pull window), so it
    /// falls in the same bucket as kubelet_pod_start_sli_duration_seconds for the same pod. A start
    /// without those instants (no pod record) falls back to end to end minus the top-level `pull`
    /// and `init` phases.
    public static func sloSeconds(of trace: PodStartTrace) -> Double {
        if let sli = trace.sli { return max(0, sli.seconds) }
        let excluded = trace.phases.filter { $0.parent == nil && ($0.name == .pull || $0.name == .`init`) }
            .saturatingSum { $0.nanoseconds }
        return Double(max(0, trace.e2eNanoseconds.saturatingSubtract(excluded))) / 1e9
    }

    /// Adds bytes of image content pulled for `image` (a reference as the pod spec names it).
    public func recordImagePull(image: String, bytes: UInt64) {
        state.withLock { s in
            let slot = s.imageSlot(for: image, configuration: configuration)
            s.images[slot].pullBytes &+= bytes
        }
    }

    /// The unpacked size of an image's file system, for `podstart_image_startup_read_ratio`.
    public func setImageSize(image: String, unpackedBytes: UInt64) {
        state.withLock { s in
            let slot = s.imageSlot(for: image, configuration: configuration)
            if s.images[slot].label != Self.otherLabel { s.images[slot].sizeBytes = unpackedBytes }
        }
    }

    /// Makes these probe programs and sources appear with zero counts before anything happens
    /// (a series that is absent until its first error hides that error from `rate()`).
    public func register(probePrograms: [String] = [], sources: [String] = []) {
        state.withLock { s in
            for p in probePrograms {
                _ = s.probeEvents.slot(for: p, limit: configuration.otherLabelLimit)
                _ = s.probeLost.slot(for: p, limit: configuration.otherLabelLimit)
            }
            for source in sources {
                _ = s.sourceErrors.slot(for: source, limit: configuration.otherLabelLimit)
                _ = s.streamCloses.slot(for: source, limit: configuration.otherLabelLimit)
            }
        }
    }

    public func addProbeEvents(program: String, count: UInt64) {
        state.withLock { s in s.probeEvents.add(count, to: program, limit: configuration.otherLabelLimit) }
    }

    public func addProbeEventsLost(program: String, count: UInt64) {
        state.withLock { s in s.probeLost.add(count, to: program, limit: configuration.otherLabelLimit) }
    }

    /// Sets the totals from a cumulative kernel-side counter. Counters only rise: a smaller
    /// reading (a reloaded program) is ignored rather than shown as a reset.
    public func setProbeTotals(program: String, events: UInt64, lost: UInt64) {
        state.withLock { s in
            s.probeEvents.raise(to: events, for: program, limit: configuration.otherLabelLimit)
            s.probeLost.raise(to: lost, for: program, limit: configuration.otherLabelLimit)
        }
    }

    /// A connection to the container runtime closed under a call while the runtime was running
    /// (ContainerRuntime's `CRIConnection` reports them): `retried` when the call was repeated on
    /// a new connection, else the call failed (it was not safe to repeat, or closed again).
    public func recordCRIConnectionClose(retried: Bool) {
        state.withLock { s in s.criCloses[retried ? State.retriedIndex : State.failedIndex].value &+= 1 }
    }

    /// Why the decoder skipped a kernel record (`podstart_probe_events_rejected_total{reason}`).
    public enum ProbeRejection: String, Sendable, CaseIterable {
        /// Shorter than its kind's fixed part (or than the strings it announces).
        case truncated
        /// A kind this build does not know.
        case unknownKind = "unknown_kind"
        /// A record layout version this build does not know.
        case unknownVersion = "unknown_version"
    }

    public func addProbeEventsRejected(reason: ProbeRejection, count: UInt64 = 1) {
        state.withLock { s in s.probeRejected[ProbeRejection.allCases.firstIndex(of: reason)!].value &+= count }
    }

    /// Sets the ring reader's cumulative count of records its queue had to drop (only rises).
    public func setProbeEventsDropped(total: UInt64) {
        state.withLock { s in s.probeDropped.value = max(s.probeDropped.value, total) }
    }

    /// A finished start the state store refused to save (it is in the metrics, not in `/v1`).
    public func recordStoreSaveFailure() {
        state.withLock { s in s.storeSaveFailures.value &+= 1 }
    }

    /// `podstart_store_healthy`: 1 while the state store takes saves and its file is the one open.
    public func setStoreHealthy(_ healthy: Bool) {
        state.withLock { s in s.storeHealthy = healthy }
    }

    /// An input that worked and then ended (a stream or connection closed under the source).
    public func recordStreamClose(source: String) {
        state.withLock { s in s.streamCloses.add(1, to: source, limit: configuration.otherLabelLimit) }
    }

    /// Why the HTTP API turned a /v1 request away: `unauthenticated` (401), `forbidden` (403),
    /// `unavailable` (503: the API server could not be asked), `overloaded` (429: too many
    /// requests at once).
    public enum APIRefusal: String, Sendable, CaseIterable {
        case forbidden, overloaded, unauthenticated, unavailable
    }

    public func recordAPIRefusal(_ reason: APIRefusal) {
        guard let i = State.apiRefusalReasons.firstIndex(of: reason.rawValue) else { return }
        state.withLock { s in s.apiRefusals[i].value &+= 1 }
    }

    /// A changed TLS certificate/key (`file: "tls"`) or API token file (`"token"`) that could not
    /// be used: the previous one stays in service.
    public func recordAPIReloadError(file: String) {
        guard let i = State.apiReloadFiles.firstIndex(of: file) else { return }
        state.withLock { s in s.apiReloadErrors[i].value &+= 1 }
    }

    /// Warning events of a recorded pod start (its events, listed once), `count` occurrences of
    /// `reason`: `podstart_pod_start_warning_events_total{reason}`, reasons outside
    /// `PodEvents.warningReasons` counted as `other`.
    public func recordPodStartWarningEvents(reason: String, count: UInt64) {
        let i = State.warningEventReasons.firstIndex(of: reason) ?? State.warningEventReasons.firstIndex(of: Self.otherLabel)!
        state.withLock { s in
            s.warningEvents[i].value &+= count
            s.warningEventsShown = true
        }
    }

    /// Shows `podstart_pod_start_warning_events_total` with every reason at 0 (the agent lists
    /// the pods' events): a series absent until its first event would hide it from `rate()`.
    public func registerPodStartWarningEvents() {
        state.withLock { s in s.warningEventsShown = true }
    }

    public func recordSourceError(source: String, count: UInt64 = 1) {
        state.withLock { s in s.sourceErrors.add(count, to: source, limit: configuration.otherLabelLimit) }
    }

    /// The kubelet's own `kubelet_pod_start_sli_duration_seconds` as last scraped (cumulative
    /// `(le, count)` pairs ending with +Inf), re-exported as
    /// `podstart_kubelet_pod_start_sli_duration_seconds` so one panel shows both histograms.
    public func setKubeletSLI(buckets: [(upperBound: Double, cumulativeCount: Double)], sum: Double, count: Double) {
        state.withLock { s in s.kubeletSLI = KubeletSLI(buckets: buckets, sum: sum, count: count) }
    }

    public func setProbesEnabled(_ enabled: Bool) {
        state.withLock { s in s.probesEnabled = enabled }
    }

    /// `podstart_runtime_info`: the runtime's root, state and snapshotter ("unknown" when not
    /// reported) and the propagation of its state directory's mount.
    public func setRuntimeInfo(containerdRoot: String?, containerdState: String?, snapshotter: String?, mountPropagation: String) {
        let labels = [("containerd_root", containerdRoot), ("containerd_state", containerdState),
                      ("mount_propagation", mountPropagation), ("snapshotter", snapshotter)]
            .map { "\($0.0)=\"\(Exposition.escapeLabelValue($0.1 ?? "unknown"))\"" }.joined(separator: ",")
        state.withLock { s in s.runtimeInfoLine = "podstart_runtime_info{\(labels)} 1\n" }
    }

    /// How many series each family has now (for tests of the label bounds).
    public func seriesCount(family: String) -> Int {
        state.withLock { s in
            switch family {
            case "podstart_image_pull_bytes_total": s.images.count
            case "podstart_probe_events_total": s.probeEvents.series.count
            case "podstart_probe_events_lost_total": s.probeLost.series.count
            case "podstart_source_errors_total": s.sourceErrors.series.count
            case "podstart_source_stream_closes_total": s.streamCloses.series.count
            case "podstart_phase_duration_seconds": s.phases.count
            default: 0
            }
        }
    }
}
