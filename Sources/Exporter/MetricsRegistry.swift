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
/// Rendering is hand-written: every series' label text is rendered once when the series is made,
/// so `render` only appends those strings and formats numbers.
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
    private let state: Mutex<State>

    public init(configuration: Configuration) {
        self.configuration = configuration
        state = Mutex(State(configuration: configuration))
    }

    // MARK: recording

    /// Records one finished pod start. Durations go into the histograms only for starts that
    /// reached ready (the kubelet's SLI does the same); every start counts in
    /// `podstart_pod_starts_total{outcome}`.
    public func observe(trace: PodStartTrace) {
        let e2e = trace.e2eSeconds
        let slo = Self.sloSeconds(of: trace)
        var phaseSeconds: [(Int, Double)] = []
        for (i, phase) in State.phaseOrder.enumerated() where trace.phases.contains(where: { $0.name == phase }) {
            phaseSeconds.append((i, trace.seconds(of: phase)))
        }
        let reads: [(String, UInt64)] = trace.containers.compactMap { c in
            c.accesses.isEmpty ? nil : (c.image, c.accesses.reduce(UInt64(0)) { $0 &+ $1.bytes })
        }
        state.withLock { s in
            s.starts[trace.outcome == .ready ? State.readyIndex : State.failedIndex].value += 1
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
            .reduce(Int64(0)) { $0 + $1.nanoseconds }
        return Double(max(0, trace.e2eNanoseconds - excluded)) / 1e9
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
            for source in sources { _ = s.sourceErrors.slot(for: source, limit: configuration.otherLabelLimit) }
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

    // MARK: rendering

    /// The whole exposition. Families are sorted by name and series by label value, as the
    /// kubelet prints them.
    public func render(format: ExpositionFormat) -> String {
        let s = state.withLock { $0 }  // copy out; render without holding the lock
        var out = ""
        out.reserveCapacity(s.estimatedBytes)
        let om = format == .openMetrics

        // podstart_build_info
        family(&out, om ? "podstart_build" : "podstart_build_info", om ? "info" : "gauge",
               "Build information about the podstart binary; the value is always 1.", om)
        out += s.buildInfoLine

        family(&out, om ? "podstart_cri_connection_closes" : "podstart_cri_connection_closes_total", "counter",
               "Connections to the container runtime that closed under a call while the runtime ran, by outcome (retried: the call was repeated on a new connection; failed: it was not).", om)
        for c in s.criCloses { c.render(into: &out) }

        // podstart_image_pull_bytes_total
        if !s.images.isEmpty {
            family(&out, om ? "podstart_image_pull_bytes" : "podstart_image_pull_bytes_total", "counter",
                   "Bytes of image content pulled, by image (images without a label slot are summed as other).", om)
            for image in s.images {
                out += image.pullBytesPrefix
                out += String(image.pullBytes)
                out += "\n"
            }
        }

        // podstart_image_startup_read_ratio
        let ratios = s.images.compactMap { i -> (String, Double)? in
            guard let size = i.sizeBytes, size > 0, let read = i.lastReadBytes else { return nil }
            return (i.ratioPrefix, Double(read) / Double(size))
        }
        if !ratios.isEmpty {
            family(&out, "podstart_image_startup_read_ratio", "gauge",
                   "Share of an image's unpacked bytes its containers read before ready, at the latest start (labelled images of known size only).", om)
            for (prefix, ratio) in ratios {
                out += prefix
                out += Exposition.value(ratio)
                out += "\n"
            }
        }

        // A phase gets its series once a start has had it: eleven series of 28 lines each,
        // mostly zeros, would triple the scrape for phases (init, schedule) many nodes never see.
        if s.phases.contains(where: { $0.histogram.count > 0 }) {
            family(&out, "podstart_phase_duration_seconds", "histogram",
                   "Seconds a pod start that reached ready spent in each phase; top-level phases add up to the end-to-end time, download, decompress and pull_other add up to pull.", om)
            for series in s.phases where series.histogram.count > 0 { series.render(into: &out, format) }
        }

        if let k = s.kubeletSLI {
            family(&out, "podstart_kubelet_pod_start_sli_duration_seconds", "histogram",
                   "The kubelet's kubelet_pod_start_sli_duration_seconds as podstart last scraped it from the node's kubelet, beside podstart_pod_start_slo_duration_seconds.", om)
            for b in k.buckets {
                out += "podstart_kubelet_pod_start_sli_duration_seconds_bucket{le=\""
                out += Exposition.bound(b.upperBound, format)
                out += "\"} "
                out += Exposition.value(b.cumulativeCount)
                out += "\n"
            }
            out += "podstart_kubelet_pod_start_sli_duration_seconds_sum "
            out += Exposition.value(k.sum)
            out += "\npodstart_kubelet_pod_start_sli_duration_seconds_count "
            out += Exposition.value(k.count)
            out += "\n"
        }

        family(&out, "podstart_pod_start_duration_seconds", "histogram",
               "Seconds from pod creation to ready, end to end, including image pulls and init containers (compare kubelet_pod_start_total_duration_seconds); starts that reached ready.", om)
        s.e2e.render(into: &out, format)

        family(&out, "podstart_pod_start_slo_duration_seconds", "histogram",
               "Seconds from pod creation (creationTimestamp) to the pod watch showing every container running, minus the window from the first image pull started to the last finished, as kubelet v1.28 measures kubelet_pod_start_sli_duration_seconds; starts that reached ready.", om)
        s.slo.render(into: &out, format)

        family(&out, om ? "podstart_pod_starts" : "podstart_pod_starts_total", "counter",
               "Pod starts recorded, by outcome (ready or failed).", om)
        for c in s.starts { c.render(into: &out) }

        if !s.probeLost.series.isEmpty {
            family(&out, om ? "podstart_probe_events_lost" : "podstart_probe_events_lost_total", "counter",
                   "Kernel probe events lost before podstart read them (ring buffer full), by program.", om)
            for c in s.probeLost.series { c.render(into: &out) }
        }
        if !s.probeEvents.series.isEmpty {
            family(&out, om ? "podstart_probe_events" : "podstart_probe_events_total", "counter",
                   "Kernel probe events received, by program.", om)
            for c in s.probeEvents.series { c.render(into: &out) }
        }

        family(&out, "podstart_probes_enabled", "gauge",
               "1 while the kernel probes are loaded, 0 when podstart runs on logs and the runtime alone.", om)
        out += "podstart_probes_enabled "
        out += s.probesEnabled ? "1\n" : "0\n"

        if !s.sourceErrors.series.isEmpty {
            family(&out, om ? "podstart_source_errors" : "podstart_source_errors_total", "counter",
                   "Errors reading an input source (malformed records, failed scrapes, lost connections), by source.", om)
            for c in s.sourceErrors.series { c.render(into: &out) }
        }

        family(&out, "podstart_startup_read_bytes", "histogram",
               "Bytes a container read from files before its pod was ready (containers whose accesses were recorded).", om)
        s.readBytes.render(into: &out, format)

        if om { out += "# EOF\n" }
        return out
    }

    private func family(_ out: inout String, _ name: String, _ type: String, _ help: String, _ om: Bool) {
        out += "# HELP "
        out += name
        out += " "
        out += help
        out += "\n# TYPE "
        out += name
        out += " "
        out += type
        out += "\n"
    }

    /// How many series each family has now (for tests of the label bounds).
    public func seriesCount(family: String) -> Int {
        state.withLock { s in
            switch family {
            case "podstart_image_pull_bytes_total": s.images.count
            case "podstart_probe_events_total": s.probeEvents.series.count
            case "podstart_probe_events_lost_total": s.probeLost.series.count
            case "podstart_source_errors_total": s.sourceErrors.series.count
            case "podstart_phase_duration_seconds": s.phases.count
            default: 0
            }
        }
    }
}

// MARK: state

/// A histogram's numbers: per-bucket counts (not cumulative; cumulated while rendering).
struct Histogram: Sendable {
    let upperBounds: [Double]
    var bucketCounts: [UInt64]
    var sum: Double = 0
    var count: UInt64 = 0

    init(upperBounds: [Double]) {
        self.upperBounds = upperBounds
        bucketCounts = Array(repeating: 0, count: upperBounds.count)
    }

    mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        // First bound >= value (`le` is inclusive); past the last bound only +Inf counts it.
        var lo = 0, hi = upperBounds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if upperBounds[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        if lo < bucketCounts.count { bucketCounts[lo] += 1 }
        sum += value
        count += 1
    }
}

/// A histogram series with its label text rendered once for each format.
struct HistogramSeries: Sendable {
    var histogram: Histogram
    let textBucketPrefixes: [String]
    let openMetricsBucketPrefixes: [String]
    let sumPrefix: String
    let countPrefix: String

    /// `labels` is the rendered label list without braces (`phase="pull"`), or empty.
    init(name: String, labels: String, upperBounds: [Double]) {
        histogram = Histogram(upperBounds: upperBounds)
        func prefixes(_ format: ExpositionFormat) -> [String] {
            (upperBounds + [.infinity]).map { bound in
                "\(name)_bucket{\(labels.isEmpty ? "" : labels + ",")le=\"\(Exposition.bound(bound, format))\"} "
            }
        }
        textBucketPrefixes = prefixes(.text)
        openMetricsBucketPrefixes = prefixes(.openMetrics)
        sumPrefix = labels.isEmpty ? "\(name)_sum " : "\(name)_sum{\(labels)} "
        countPrefix = labels.isEmpty ? "\(name)_count " : "\(name)_count{\(labels)} "
    }

    func render(into out: inout String, _ format: ExpositionFormat) {
        let prefixes = format == .openMetrics ? openMetricsBucketPrefixes : textBucketPrefixes
        var cumulative: UInt64 = 0
        for (i, count) in histogram.bucketCounts.enumerated() {
            cumulative += count
            out += prefixes[i]
            out += String(cumulative)
            out += "\n"
        }
        out += prefixes[prefixes.count - 1]
        out += String(histogram.count)
        out += "\n"
        out += sumPrefix
        out += Exposition.value(histogram.sum)
        out += "\n"
        out += countPrefix
        out += String(histogram.count)
        out += "\n"
    }
}

/// The kubelet's SLI histogram as scraped (cumulative counts).
struct KubeletSLI: Sendable {
    var buckets: [(upperBound: Double, cumulativeCount: Double)]
    var sum: Double
    var count: Double
}

struct CounterSeries: Sendable {
    let label: String
    let prefix: String
    var value: UInt64 = 0

    func render(into out: inout String) {
        out += prefix
        out += String(value)
        out += "\n"
    }
}

/// A counter family with one label whose values are admitted while slots last.
struct BoundedCounters: Sendable {
    let sampleName: String
    let labelName: String
    var series: [CounterSeries] = []
    var index: [String: Int] = [:]

    init(sampleName: String, labelName: String) {
        self.sampleName = sampleName
        self.labelName = labelName
    }

    mutating func slot(for label: String, limit: Int) -> Int {
        if let i = index[label] { return i }
        let own = series.count - (index[MetricsRegistry.otherLabel] == nil ? 0 : 1) < limit
        let name = own ? label : MetricsRegistry.otherLabel
        if let i = index[name] { return i }
        let new = CounterSeries(label: name, prefix: "\(sampleName){\(labelName)=\"\(Exposition.escapeLabelValue(name))\"} ")
        let at = series.firstIndex { $0.label > name } ?? series.count
        series.insert(new, at: at)
        index = Dictionary(uniqueKeysWithValues: series.enumerated().map { ($1.label, $0) })
        return at
    }

    mutating func add(_ n: UInt64, to label: String, limit: Int) {
        let i = slot(for: label, limit: limit)
        series[i].value &+= n
    }

    mutating func raise(to total: UInt64, for label: String, limit: Int) {
        let i = slot(for: label, limit: limit)
        if series[i].label == label { series[i].value = max(series[i].value, total) }
    }
}

struct ImageSeries: Sendable {
    let label: String
    let pullBytesPrefix: String
    let ratioPrefix: String
    var pullBytes: UInt64 = 0
    var lastReadBytes: UInt64?
    var sizeBytes: UInt64?

    init(label: String) {
        self.label = label
        let escaped = Exposition.escapeLabelValue(label)
        pullBytesPrefix = "podstart_image_pull_bytes_total{image=\"\(escaped)\"} "
        ratioPrefix = "podstart_image_startup_read_ratio{image=\"\(escaped)\"} "
    }
}

struct State: Sendable {
    /// Phase series in label order (sorted by phase name).
    static let phaseOrder: [PhaseName] = PhaseName.allCases.sorted { $0.rawValue < $1.rawValue }

    var e2e = HistogramSeries(name: "podstart_pod_start_duration_seconds", labels: "",
                              upperBounds: MetricsRegistry.podStartupDurationBuckets)
    var slo = HistogramSeries(name: "podstart_pod_start_slo_duration_seconds", labels: "",
                              upperBounds: MetricsRegistry.podStartupDurationBuckets)
    var phases: [HistogramSeries] = State.phaseOrder.map {
        HistogramSeries(name: "podstart_phase_duration_seconds", labels: "phase=\"\($0.rawValue)\"",
                        upperBounds: MetricsRegistry.podStartupDurationBuckets)
    }
    var readBytes = HistogramSeries(name: "podstart_startup_read_bytes", labels: "",
                                    upperBounds: MetricsRegistry.startupReadBytesBuckets)
    /// Sorted by label value: failed before ready.
    var starts = [CounterSeries(label: "failed", prefix: "podstart_pod_starts_total{outcome=\"failed\"} "),
                  CounterSeries(label: "ready", prefix: "podstart_pod_starts_total{outcome=\"ready\"} ")]
    static let failedIndex = 0, readyIndex = 1
    /// Sorted by label value: failed before retried.
    var criCloses = [CounterSeries(label: "failed", prefix: "podstart_cri_connection_closes_total{outcome=\"failed\"} "),
                     CounterSeries(label: "retried", prefix: "podstart_cri_connection_closes_total{outcome=\"retried\"} ")]
    static let retriedIndex = 1
    var images: [ImageSeries] = []
    var imageIndex: [String: Int] = [:]
    var ownImageSlots = 0
    var probeEvents = BoundedCounters(sampleName: "podstart_probe_events_total", labelName: "program")
    var probeLost = BoundedCounters(sampleName: "podstart_probe_events_lost_total", labelName: "program")
    var sourceErrors = BoundedCounters(sampleName: "podstart_source_errors_total", labelName: "source")
    var probesEnabled = false
    var kubeletSLI: KubeletSLI?
    let buildInfoLine: String

    init(configuration: MetricsRegistry.Configuration) {
        let b = configuration.buildInfo
        buildInfoLine = "podstart_build_info{revision=\"\(Exposition.escapeLabelValue(b.revision))\",version=\"\(Exposition.escapeLabelValue(b.version))\"} 1\n"
    }

    /// A generous guess of the rendered size, so rendering appends without regrowing.
    var estimatedBytes: Int { 96 * (30 * (phases.count + 3) + images.count * 2 + probeEvents.series.count * 2 + sourceErrors.series.count + 20) }

    mutating func imageSlot(for image: String, configuration: MetricsRegistry.Configuration) -> Int {
        if let i = imageIndex[image] { return i }
        let own = image != MetricsRegistry.otherLabel
            && (ownImageSlots < configuration.imageLabelLimit || configuration.imageAllowList.contains(image))
        if own { ownImageSlots += 1 }
        let label = own ? image : MetricsRegistry.otherLabel
        if let i = imageIndex[label] { return i }
        let at = images.firstIndex { $0.label > label } ?? images.count
        images.insert(ImageSeries(label: label), at: at)
        imageIndex = Dictionary(uniqueKeysWithValues: images.enumerated().map { ($1.label, $0) })
        return at
    }
}
