import PodstartCore

// The series the registry keeps: counts, sums and histogram buckets, with the label text each
// sample line starts with, made once when the series is.

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
}

struct CounterSeries: Sendable {
    let label: String
    let prefix: String
    var value: UInt64 = 0
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
    /// Starts recorded ready with readiness unknown (no readiness source).
    var readinessUnknown: UInt64 = 0
    /// FUSE requests the containers of finished starts waited on, and the bytes their replies
    /// carried (a lazy-pull snapshotter's on-demand fetches); rendered once a start had one.
    var lazyFetchRequests = CounterSeries(label: "", prefix: "podstart_lazy_fetch_requests_total ")
    var lazyFetchBytes = CounterSeries(label: "", prefix: "podstart_lazy_fetch_bytes_total ")
    /// Sorted by label value: failed before retried.
    var criCloses = [CounterSeries(label: "failed", prefix: "podstart_cri_connection_closes_total{outcome=\"failed\"} "),
                     CounterSeries(label: "retried", prefix: "podstart_cri_connection_closes_total{outcome=\"retried\"} ")]
    static let retriedIndex = 1
    /// `podstart_api_requests_refused_total{reason}`, sorted by label value.
    static let apiRefusalReasons = ["forbidden", "overloaded", "unauthenticated", "unavailable"]
    var apiRefusals = State.apiRefusalReasons.map {
        CounterSeries(label: $0, prefix: "podstart_api_requests_refused_total{reason=\"\($0)\"} ")
    }
    /// `podstart_api_reload_errors_total{file}`, sorted by label value.
    static let apiReloadFiles = ["tls", "token"]
    var apiReloadErrors = State.apiReloadFiles.map {
        CounterSeries(label: $0, prefix: "podstart_api_reload_errors_total{file=\"\($0)\"} ")
    }
    /// `podstart_pod_start_warning_events_total{reason}`: the closed vocabulary and `other`,
    /// sorted by label value.
    static let warningEventReasons = (PodEvents.warningReasons + [MetricsRegistry.otherLabel]).sorted()
    var warningEvents = State.warningEventReasons.map {
        CounterSeries(label: $0, prefix: "podstart_pod_start_warning_events_total{reason=\"\($0)\"} ")
    }
    /// Whether the agent lists events (or some were counted): the family is rendered then only.
    var warningEventsShown = false
    var images: [ImageSeries] = []
    var imageIndex: [String: Int] = [:]
    var ownImageSlots = 0
    var probeEvents = BoundedCounters(sampleName: "podstart_probe_events_total", labelName: "program")
    var probeLost = BoundedCounters(sampleName: "podstart_probe_events_lost_total", labelName: "program")
    var sourceErrors = BoundedCounters(sampleName: "podstart_source_errors_total", labelName: "source")
    /// Inputs that worked and then ended (a stream or connection closed, a file went away).
    var streamCloses = BoundedCounters(sampleName: "podstart_source_stream_closes_total", labelName: "source")
    /// Records the ring-buffer reader read but the agent's queue had no room for.
    var probeDropped = CounterSeries(label: "", prefix: "podstart_probe_events_dropped_total ")
    /// Records skipped by the decoder, by reason (sorted by label value).
    var probeRejected = MetricsRegistry.ProbeRejection.allCases.map {
        CounterSeries(label: $0.rawValue, prefix: "podstart_probe_events_rejected_total{reason=\"\($0.rawValue)\"} ")
    }
    var storeSaveFailures = CounterSeries(label: "", prefix: "podstart_store_save_failures_total ")
    /// nil until the agent has a store to speak of.
    var storeHealthy: Bool?
    var probesEnabled = false
    var runtimeInfoLine: String?
    var kubeletSLI: KubeletSLI?
    let buildInfoLine: String

    init(configuration: MetricsRegistry.Configuration) {
        let b = configuration.buildInfo
        buildInfoLine = "podstart_build_info{revision=\"\(Exposition.escapeLabelValue(b.revision))\",version=\"\(Exposition.escapeLabelValue(b.version))\"} 1\n"
    }

    /// A generous guess of the rendered size, so rendering appends without regrowing.
    var estimatedBytes: Int { 96 * (30 * (phases.count + 3) + images.count * 2 + probeEvents.series.count * 2 + sourceErrors.series.count + streamCloses.series.count + warningEvents.count + 30) }

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

/// The kubelet's SLI histogram as scraped (cumulative counts).
struct KubeletSLI: Sendable {
    var buckets: [(upperBound: Double, cumulativeCount: Double)]
    var sum: Double
    var count: Double
}
