/// A cumulative Prometheus histogram (one label set), as scraped.
public struct CumulativeHistogram: Sendable, Hashable {
    /// Labels other than `le`, sorted by name.
    public var labels: [PrometheusText.Label]
    /// (upper bound, cumulative count), ascending, ending with +Inf.
    public var buckets: [(upperBound: Double, count: Double)]
    public var sum: Double
    public var count: Double

    public static func == (a: Self, b: Self) -> Bool {
        a.labels == b.labels && a.sum == b.sum && a.count == b.count
            && a.buckets.elementsEqual(b.buckets) { $0.upperBound == $1.upperBound && $0.count == $1.count }
    }

    public func hash(into h: inout Hasher) {
        h.combine(labels); h.combine(sum); h.combine(count)
    }

    public func label(_ name: String) -> String? { labels.first { $0.name == name }?.value }

    /// What happened between `previous` and `self`. A counter reset (count went down, or bucket
    /// bounds changed) means the process restarted: everything in `self` is new.
    public func delta(since previous: CumulativeHistogram?) -> CumulativeHistogram {
        guard let p = previous, p.count <= count,
              p.buckets.map(\.upperBound) == buckets.map(\.upperBound),
              zip(p.buckets, buckets).allSatisfy({ $0.count <= $1.count })
        else { return self }
        return CumulativeHistogram(labels: labels,
                                   buckets: zip(buckets, p.buckets).map { ($0.upperBound, $0.count - $1.count) },
                                   sum: sum - p.sum, count: count - p.count)
    }

    /// Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding the rank;
    /// the lowest bucket starts at 0; a rank in the +Inf bucket yields the highest finite bound.
    /// NaN when empty.
    public func quantile(_ q: Double) -> Double {
        guard count > 0, let total = buckets.last?.count, total > 0 else { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        let rank = q * total
        var prevBound = 0.0, prevCount = 0.0
        for (i, b) in buckets.enumerated() {
            if b.count >= rank {
                if b.upperBound == .infinity {
                    return i > 0 ? buckets[i - 1].upperBound : .nan
                }
                if i == 0 && b.upperBound <= 0 { return b.upperBound }
                let inBucket = b.count - prevCount
                if inBucket == 0 { return b.upperBound }
                return prevBound + (b.upperBound - prevBound) * (rank - prevCount) / inBucket
            }
            prevBound = b.upperBound
            prevCount = b.count
        }
        return buckets.last!.upperBound
    }

    /// Every histogram (per label set) of a family.
    public static func all(in family: PrometheusText.Family) -> [CumulativeHistogram] {
        var byLabels: [[PrometheusText.Label]: (buckets: [(Double, Double)], sum: Double?, count: Double?)] = [:]
        var order: [[PrometheusText.Label]] = []
        for s in family.samples {
            let key = s.labels.filter { $0.name != "le" }.sorted { $0.name < $1.name }
            if byLabels[key] == nil { byLabels[key] = ([], nil, nil); order.append(key) }
            if s.name == family.name + "_bucket", let le = s.label("le") {
                let bound: Double = le == "+Inf" ? .infinity : (Double(le) ?? .nan)
                byLabels[key]!.buckets.append((bound, s.value))
            } else if s.name == family.name + "_sum" {
                byLabels[key]!.sum = s.value
            } else if s.name == family.name + "_count" {
                byLabels[key]!.count = s.value
            }
        }
        return order.compactMap { key in
            let v = byLabels[key]!
            let buckets = v.buckets.filter { !$0.0.isNaN }.sorted { $0.0 < $1.0 }
            guard let count = v.count ?? buckets.last?.1 else { return nil }
            return CumulativeHistogram(labels: key, buckets: buckets.map { (upperBound: $0.0, count: $0.1) }, sum: v.sum ?? .nan, count: count)
        }
    }
}

/// The pod-start metrics of a kubelet's `/metrics` (docs/inputs.md#kubelet-metrics), one scrape.
public struct KubeletPodStartMetrics: Sendable {
    /// `kubelet_pod_start_sli_duration_seconds` (excludes pulls; V4 also init and stateful pods).
    public var sli: CumulativeHistogram?
    /// `kubelet_pod_start_total_duration_seconds` (1.29+).
    public var total: CumulativeHistogram?
    /// `kubelet_pod_start_duration_seconds` (first seen → running).
    public var podStart: CumulativeHistogram?
    /// `kubelet_first_network_pod_start_sli_duration_seconds` (gauge).
    public var firstNetworkPodSLISeconds: Double?
    /// `kubelet_image_pull_duration_seconds` by `image_size_in_bytes`.
    public var imagePull: [String: CumulativeHistogram] = [:]
    /// `kubelet_runtime_operations_duration_seconds` by `operation_type`.
    public var runtimeOperations: [String: CumulativeHistogram] = [:]
    /// `kubelet_runtime_operations_errors_total` by `operation_type`.
    public var runtimeOperationErrors: [String: Double] = [:]
    /// `kubelet_run_podsandbox_duration_seconds` by `runtime_handler`.
    public var runPodSandbox: [String: CumulativeHistogram] = [:]
    /// `kubelet_started_pods_total`, `kubelet_started_pods_errors_total`.
    public var startedPods: Double?
    public var startedPodsErrors: Double?
    /// `kubelet_started_containers_total` by `container_type`.
    public var startedContainers: [String: Double] = [:]
    /// `kubelet_started_containers_errors_total` by `container_type` + "/" + `code`.
    public var startedContainersErrors: [String: Double] = [:]
    /// `kubelet_runtime_operations_total` by `operation_type`.
    public var runtimeOperationsTotal: [String: Double] = [:]
    /// `kubelet_pod_worker_duration_seconds` by `operation_type` (create, update, sync, …).
    public var podWorker: [String: CumulativeHistogram] = [:]
    /// `kubelet_pod_worker_start_duration_seconds`.
    public var podWorkerStart: CumulativeHistogram?
    /// `kubelet_run_podsandbox_errors_total` by `runtime_handler`.
    public var runPodSandboxErrors: [String: Double] = [:]

    public init(_ e: PrometheusText.Exposition) {
        func h(_ name: String) -> CumulativeHistogram? { e.family(name).flatMap { CumulativeHistogram.all(in: $0).first } }
        func byLabel(_ name: String, _ label: String) -> [String: CumulativeHistogram] {
            guard let f = e.family(name) else { return [:] }
            var out: [String: CumulativeHistogram] = [:]
            for x in CumulativeHistogram.all(in: f) { out[x.label(label) ?? ""] = x }
            return out
        }
        func counter(_ name: String, _ label: String) -> [String: Double] {
            guard let f = e.family(name) else { return [:] }
            var out: [String: Double] = [:]
            for s in f.samples { out[s.label(label) ?? ""] = s.value }
            return out
        }
        sli = h("kubelet_pod_start_sli_duration_seconds")
        total = h("kubelet_pod_start_total_duration_seconds")
        podStart = h("kubelet_pod_start_duration_seconds")
        firstNetworkPodSLISeconds = e.family("kubelet_first_network_pod_start_sli_duration_seconds")?.samples.first?.value
        imagePull = byLabel("kubelet_image_pull_duration_seconds", "image_size_in_bytes")
        runtimeOperations = byLabel("kubelet_runtime_operations_duration_seconds", "operation_type")
        runtimeOperationErrors = counter("kubelet_runtime_operations_errors_total", "operation_type")
        runPodSandbox = byLabel("kubelet_run_podsandbox_duration_seconds", "runtime_handler")
        startedPods = e.family("kubelet_started_pods_total")?.samples.first?.value
        startedPodsErrors = e.family("kubelet_started_pods_errors_total")?.samples.first?.value
        startedContainers = counter("kubelet_started_containers_total", "container_type")
        if let f = e.family("kubelet_started_containers_errors_total") {
            for x in f.samples { startedContainersErrors[(x.label("container_type") ?? "") + "/" + (x.label("code") ?? "")] = x.value }
        }
        runtimeOperationsTotal = counter("kubelet_runtime_operations_total", "operation_type")
        podWorker = byLabel("kubelet_pod_worker_duration_seconds", "operation_type")
        podWorkerStart = h("kubelet_pod_worker_start_duration_seconds")
        runPodSandboxErrors = counter("kubelet_run_podsandbox_errors_total", "runtime_handler")
    }
}

/// Pod-start figures for the interval between two scrapes: what the kubelet observed in that
/// interval only, not since it started.
public struct KubeletMetricsInterval: Sendable {
    public struct Quantiles: Sendable, Equatable {
        public var count: Double
        public var p50: Double, p90: Double, p99: Double
        public var meanSeconds: Double
        init(_ h: CumulativeHistogram) {
            count = h.count
            p50 = h.quantile(0.5); p90 = h.quantile(0.9); p99 = h.quantile(0.99)
            meanSeconds = h.count > 0 ? h.sum / h.count : .nan
        }
    }

    public var sli: Quantiles?
    public var total: Quantiles?
    public var imagePull: [String: Quantiles] = [:]
    public var runPodSandbox: Quantiles?
    public var pullImageOperation: Quantiles?
    public var startedPods: Double?
    public var pullErrors: Double?

    /// `previous` nil: everything since the kubelet started.
    public init(previous: KubeletPodStartMetrics?, current: KubeletPodStartMetrics) {
        if let c = current.sli { sli = Quantiles(c.delta(since: previous?.sli)) }
        if let c = current.total { total = Quantiles(c.delta(since: previous?.total)) }
        for (k, c) in current.imagePull { imagePull[k] = Quantiles(c.delta(since: previous?.imagePull[k])) }
        if let c = current.runtimeOperations["run_podsandbox"] {
            runPodSandbox = Quantiles(c.delta(since: previous?.runtimeOperations["run_podsandbox"]))
        }
        if let c = current.runtimeOperations["pull_image"] {
            pullImageOperation = Quantiles(c.delta(since: previous?.runtimeOperations["pull_image"]))
        }
        if let c = current.startedPods {
            let p = previous?.startedPods ?? 0
            startedPods = c >= p ? c - p : c
        }
        if let c = current.runtimeOperationErrors["pull_image"] {
            let p = previous?.runtimeOperationErrors["pull_image"] ?? 0
            pullErrors = c >= p ? c - p : c
        }
    }
}
