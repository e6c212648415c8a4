import Foundation
import PodstartCore

/// Aggregates over pod start reports: percentiles of SLO and E2E per namespace and overall, the
/// slowest pods, and breaches of the Kubernetes pod startup SLO (p99 ≤ 5 s excluding image pulls).
///
/// Percentiles are nearest-rank over every pod (exact, not bucketed). SLO figures use
/// `correctedSloSeconds` where a quirk made the kubelet's value wrong.
public struct StartupSummary: Sendable {
    public struct Stats: Sendable, Equatable {
        public var count: Int
        public var sloP50: Double, sloP90: Double, sloP99: Double
        public var e2eP50: Double, e2eP90: Double, e2eP99: Double
        /// Pods whose SLO duration exceeds the threshold.
        public var sloBreaches: Int
    }

    public struct SlowPod: Sendable, Equatable {
        public var pod: String
        public var e2eSeconds: Double
        public var sloSeconds: Double
    }

    /// The Kubernetes pod startup SLO threshold, seconds (p99 ≤ 5 s, image pulls excluded).
    public static let sloThresholdSeconds = 5.0

    var slo: [String: [Double]] = [:]
    var e2e: [String: [Double]] = [:]
    public private(set) var slowest: [SlowPod] = []
    public private(set) var quirkCounts: [PodStartQuirk: Int] = [:]
    public private(set) var variantCounts: [KubeletStartupLineVariant: Int] = [:]
    public var slowestLimit = 10

    public init() {}

    public mutating func add(_ r: PodStartReport) {
        sorted = false
        let ns = r.observation.namespace
        let s = r.effectiveSloSeconds, e = r.e2eSeconds
        slo[ns, default: []].append(s)
        e2e[ns, default: []].append(e)
        for q in r.quirks { quirkCounts[q, default: 0] += 1 }
        variantCounts[r.observation.variant, default: 0] += 1
        if slowestLimit > 0, slowest.count < slowestLimit || e > (slowest.last?.e2eSeconds ?? -.infinity) {
            let item = SlowPod(pod: r.pod, e2eSeconds: e, sloSeconds: s)
            let i = slowest.firstIndex { $0.e2eSeconds < e } ?? slowest.count
            slowest.insert(item, at: i)
            if slowest.count > slowestLimit { slowest.removeLast() }
        }
    }

    public var namespaces: [String] { slo.keys.sorted() }

    /// Sorts the per-namespace values in place; percentiles are then read without copies
    /// (memory stays at 16 bytes per pod).
    var sorted = true

    mutating func sortIfNeeded() {
        guard !sorted else { return }
        for k in slo.keys { slo[k]!.sort() }
        for k in e2e.keys { e2e[k]!.sort() }
        sorted = true
    }

    public mutating func stats(namespace: String) -> Stats? {
        sortIfNeeded()
        guard let s = slo[namespace], let e = e2e[namespace] else { return nil }
        return Self.stats(slo: [s], e2e: [e])
    }

    /// The Kubernetes pod startup SLO: p99 of the SLO durations within the threshold (met with no pods).
    public var sloMet: Bool {
        mutating get {
            let o = overall
            return o.count == 0 || o.sloP99 <= Self.sloThresholdSeconds
        }
    }

    public var overall: Stats {
        mutating get {
            sortIfNeeded()
            return Self.stats(slo: Array(slo.values), e2e: Array(e2e.values))
        }
    }

    /// Stats over several sorted arrays taken together.
    static func stats(slo: [[Double]], e2e: [[Double]]) -> Stats {
        let n = slo.reduce(0) { $0 + $1.count }
        let ps = [0.50, 0.90, 0.99]
        let s = percentiles(sortedParts: slo, ps), e = percentiles(sortedParts: e2e, ps)
        return Stats(count: n, sloP50: s[0], sloP90: s[1], sloP99: s[2], e2eP50: e[0], e2eP90: e[1], e2eP99: e[2],
                     sloBreaches: slo.reduce(0) { total, part in
                         // Sorted: everything after the last value within the threshold breaches.
                         var lo = 0, hi = part.count
                         while lo < hi { let m = (lo + hi) / 2; if part[m] > sloThresholdSeconds { hi = m } else { lo = m + 1 } }
                         return total + part.count - lo
                     })
    }

    /// Nearest-rank percentiles over the union of sorted arrays (NaN when empty), found by one
    /// k-way merge walk with a heap of cursors: no merged copy, O(n log k).
    static func percentiles(sortedParts parts: [[Double]], _ ps: [Double]) -> [Double] {
        let n = parts.reduce(0) { $0 + $1.count }
        guard n > 0 else { return ps.map { _ in .nan } }
        if parts.count == 1 { return ps.map { percentile(parts[0], $0) } }
        let ranks = ps.map { min(max(Int(($0 * Double(n)).rounded(.up)), 1), n) }
        var out = [Double](repeating: .nan, count: ps.count)
        // Min-heap of (value, part, index).
        var heap: [(Double, Int, Int)] = parts.enumerated().compactMap { i, p in p.isEmpty ? nil : (p[0], i, 0) }
        func less(_ a: (Double, Int, Int), _ b: (Double, Int, Int)) -> Bool { a.0 < b.0 }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, less(heap[l], heap[m]) { m = l }
                if r < heap.count, less(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        var taken = 0
        let last = ranks.max()!
        while taken < last, !heap.isEmpty {
            let (v, part, idx) = heap[0]
            taken += 1
            for (j, r) in ranks.enumerated() where r == taken { out[j] = v }
            if idx + 1 < parts[part].count {
                heap[0] = (parts[part][idx + 1], part, idx + 1)
            } else {
                heap[0] = heap[heap.count - 1]
                heap.removeLast()
            }
            if !heap.isEmpty { siftDown(0) }
        }
        return out
    }

    /// Nearest-rank percentile of sorted values (NaN when empty).
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    // MARK: rendering

    public mutating func jsonLine(counters: ScanCounters) -> String {
        func statsJSON(_ s: Stats) -> String {
            "{\"count\":\(s.count),\"sloP50Seconds\":\(jsonNumber(s.sloP50)),\"sloP90Seconds\":\(jsonNumber(s.sloP90)),"
                + "\"sloP99Seconds\":\(jsonNumber(s.sloP99)),\"e2eP50Seconds\":\(jsonNumber(s.e2eP50)),"
                + "\"e2eP90Seconds\":\(jsonNumber(s.e2eP90)),\"e2eP99Seconds\":\(jsonNumber(s.e2eP99)),"
                + "\"sloBreaches\":\(s.sloBreaches)}"
        }
        let o = overall
        var out = "{\"summary\":true"
        out += ",\"pods\":\(o.count)"
        out += ",\"overall\":" + statsJSON(o)
        out += ",\"namespaces\":{" + namespaces.map { jsonString($0) + ":" + statsJSON(stats(namespace: $0)!) }.joined(separator: ",") + "}"
        out += ",\"slowest\":[" + slowest.map {
            "{\"pod\":\(jsonString($0.pod)),\"e2eSeconds\":\(jsonNumber($0.e2eSeconds)),\"sloSeconds\":\(jsonNumber($0.sloSeconds))}"
        }.joined(separator: ",") + "]"
        out += ",\"slo\":{\"thresholdSeconds\":\(jsonNumber(Self.sloThresholdSeconds)),\"percentile\":99"
        out += ",\"met\":\(sloMet),\"podsOverThreshold\":\(o.sloBreaches)}"
        out += ",\"quirks\":{" + quirkCounts.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\"\($0.key.rawValue)\":\($0.value)" }.joined(separator: ",") + "}"
        out += ",\"variants\":{" + variantCounts.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\"\($0.key.rawValue)\":\($0.value)" }.joined(separator: ",") + "}"
        out += ",\"containerdVersion\":" + (Self.containerdVersion(counters).map(jsonString) ?? "null")
        out += ",\"lines\":{\"bytes\":\(counters.bytes),\"startupLines\":\(counters.startupLines)"
        out += ",\"startupRejected\":\(counters.startupRejected),\"containerdEvents\":\(counters.containerdEvents)"
        out += ",\"containerdMalformed\":\(counters.containerdMalformed),\"kubeletEvents\":\(counters.kubeletEvents)"
        out += ",\"containerdMalformedReasons\":{" + counters.containerdMalformedReasons.sorted { $0.key < $1.key }
            .map { "\(jsonString($0.key)):\($0.value)" }.joined(separator: ",") + "}"
        out += ",\"containerdGenerations\":{" + counters.containerdGenerations.sorted { $0.key < $1.key }
            .map { "\"\($0.key.rawValue)\":\($0.value)" }.joined(separator: ",") + "}"
        out += ",\"kubeletMalformed\":\(counters.kubeletMalformed),\"oversizeLines\":\(counters.oversizeLines)"
        out += ",\"journalRecordsSkipped\":\(counters.journalRecordsSkipped)"
        out += ",\"rejections\":{" + counters.rejectionReasons.sorted { $0.key < $1.key }
            .map { "\(jsonString($0.key)):\($0.value)" }.joined(separator: ",") + "}}"
        out += "}"
        return out
    }

    public mutating func table(counters: ScanCounters) -> String {
        func f(_ d: Double) -> String { d.isNaN ? "-" : String(format: "%.3f", d) }
        var out = ""
        let header = ["NAMESPACE", "PODS", "SLO p50", "SLO p90", "SLO p99", "E2E p50", "E2E p90", "E2E p99", "SLO>5s"]
        var rows: [[String]] = [header]
        for ns in namespaces {
            let s = stats(namespace: ns)!
            rows.append([ns, "\(s.count)", f(s.sloP50), f(s.sloP90), f(s.sloP99), f(s.e2eP50), f(s.e2eP90), f(s.e2eP99), "\(s.sloBreaches)"])
        }
        let o = overall
        rows.append(["(all)", "\(o.count)", f(o.sloP50), f(o.sloP90), f(o.sloP99), f(o.e2eP50), f(o.e2eP90), f(o.e2eP99), "\(o.sloBreaches)"])
        out += renderTable(rows)
        if !quirkCounts.isEmpty {
            out += "(SLO figures use the corrected value for pods whose kubelet value a quirk made wrong.)\n"
        }
        out += "\nPod startup SLO (p99 ≤ 5 s excluding image pulls): "
        out += o.count == 0 ? "no pods\n" : (o.sloP99 <= Self.sloThresholdSeconds ? "met" : "BREACHED") + " (p99 \(f(o.sloP99)) s, \(o.sloBreaches) of \(o.count) pods over 5 s)\n"
        if !slowest.isEmpty {
            out += "\nSlowest pods (E2E):\n"
            out += renderTable([["POD", "E2E s", "SLO s"]] + slowest.map { [$0.pod, f($0.e2eSeconds), f($0.sloSeconds)] })
        }
        if !quirkCounts.isEmpty {
            out += "\nQuirks: " + quirkCounts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " ") + "\n"
        }
        out += "\nLines: \(counters.startupLines) startup lines (\(counters.startupRejected) rejected), "
            + "\(counters.containerdEvents) containerd CRI lines (\(counters.containerdMalformed) malformed), \(counters.bytes) bytes\n"
        if let v = Self.containerdVersion(counters) {
            let detail = counters.containerdGenerations.sorted { $0.key < $1.key }
                .map { "\($0.value) lines in the \($0.key.rawValue) shape" }.joined(separator: ", ")
            out += "containerd: the CRI lines look like \(v) (\(detail))\n"
        }
        if !counters.containerdMalformedReasons.isEmpty {
            out += "Malformed containerd lines: " + counters.containerdMalformedReasons.sorted { $0.key < $1.key }
                .map { "\($0.key) ×\($0.value)" }.joined(separator: "; ") + "\n"
        }
        return out
    }

    /// The containerd version the scanned CRI lines look like: `containerd 1.x` (gogo struct
    /// metadata, TaskExit), `containerd 2.x` (protobuf text metadata, `received container exit
    /// event`), both when the log holds both (an upgrade), nil when no line tells.
    public static func containerdVersion(_ counters: ScanCounters) -> String? {
        let seen = counters.containerdGenerations.filter { $0.value > 0 }.keys.sorted()
        guard !seen.isEmpty else { return nil }
        return "containerd " + seen.map(\.rawValue).joined(separator: " and ")
    }
}

func renderTable(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = first.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        r.enumerated().map { i, c in
            i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - c.count) + c
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}
