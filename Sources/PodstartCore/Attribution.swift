/// Turns measured, possibly overlapping stretches of work into the partition every output shows.
///
/// Rules (DESIGN.md): top-level phases partition [created, ready] exactly — an instant no
/// measurement claims is `unattributed`, so the parts always add up to the end-to-end time;
/// where measurements overlap, the instant goes to the one on the critical path, i.e. the one
/// that ends last (it is what the start was waiting for); `download`, `decompress` and
/// `pull_other` partition each `pull` span the same way. When two sources measured the same
/// work, the more precise one (kernel over CRI over logs) is used and the other dropped.
public enum PhaseAttribution {
    /// The whole attribution: top-level partition of `window`, then each pull split.
    public static func attribute(window: Interval, measurements: [PhaseMeasurement],
                                 download: [Interval] = [], decompress: [Interval] = [],
                                 pullPartSource: PhaseSource = .kernel) -> [PhaseSpan] {
        let top = partition(window: window, measurements: preferPrecise(measurements.filter { $0.phase.isTopLevel }))
        var spans = top
        for pull in top where pull.name == .pull {
            spans += splitPull(pull, download: download, decompress: decompress, source: pullPartSource)
        }
        return spans
    }

    /// Of measurements of the same phase and subject from several sources, keeps the most precise
    /// source's (kernel timing wins over log timing).
    public static func preferPrecise(_ measurements: [PhaseMeasurement]) -> [PhaseMeasurement] {
        var best: [String: PhaseSource] = [:]
        for m in measurements {
            let key = "\(m.phase.rawValue)\u{0}\(m.subject ?? "")"
            if let current = best[key], current >= m.source { continue }
            best[key] = m.source
        }
        return measurements.filter { best["\($0.phase.rawValue)\u{0}\($0.subject ?? "")"] == $0.source }
    }

    /// Partitions `window` among `measurements` (top-level phases); gaps become `unattributed`.
    public static func partition(window: Interval, measurements: [PhaseMeasurement]) -> [PhaseSpan] {
        guard window.duration > 0 else { return [] }
        let clipped = measurements.compactMap { m -> PhaseMeasurement? in
            guard let i = m.interval.clamped(to: window) else { return nil }
            var c = m
            c.interval = i
            return c
        }
        var boundaries = Set([window.start, window.end])
        for m in clipped {
            boundaries.insert(m.interval.start)
            boundaries.insert(m.interval.end)
        }
        let points = boundaries.sorted()
        var spans: [PhaseSpan] = []
        for (a, b) in zip(points, points.dropFirst()) {
            let covering = clipped.filter { $0.interval.start <= a && $0.interval.end >= b }
            let chosen = covering.max { x, y in
                if x.interval.end != y.interval.end { return x.interval.end < y.interval.end }
                if x.source != y.source { return x.source < y.source }
                return phaseOrder(x.phase) < phaseOrder(y.phase)
            }
            let name = chosen?.phase ?? .unattributed
            let source = chosen?.source ?? .derived
            append(PhaseSpan(name: name, start: a, end: b, parent: nil, source: source), to: &spans)
        }
        return spans
    }

    /// Splits one pull span into download (bytes arriving), decompress (unpacking while no
    /// download runs) and pull_other (the rest: resolving, metadata, waiting).
    public static func splitPull(_ pull: PhaseSpan, download: [Interval], decompress: [Interval],
                                 source: PhaseSource) -> [PhaseSpan] {
        let bounds = Interval(start: pull.start, end: pull.end)
        let d = download.compactMap { $0.clamped(to: bounds) }
        let u = decompress.compactMap { $0.clamped(to: bounds) }
        var boundaries = Set([bounds.start, bounds.end])
        for i in d + u {
            boundaries.insert(i.start)
            boundaries.insert(i.end)
        }
        let points = boundaries.sorted()
        var spans: [PhaseSpan] = []
        for (a, b) in zip(points, points.dropFirst()) {
            let covers: (Interval) -> Bool = { $0.start <= a && $0.end >= b }
            let name: PhaseName = d.contains(where: covers) ? .download : (u.contains(where: covers) ? .decompress : .pullOther)
            append(PhaseSpan(name: name, start: a, end: b, parent: .pull,
                             source: name == .pullOther ? pull.source : source), to: &spans)
        }
        return spans
    }

    /// The union of intervals, merged where they touch or overlap, sorted.
    public static func union(_ intervals: [Interval]) -> [Interval] {
        var merged: [Interval] = []
        for i in intervals.sorted(by: { $0.start < $1.start }) where i.duration > 0 {
            if let last = merged.last, i.start <= last.end {
                merged[merged.count - 1].end = max(last.end, i.end)
            } else {
                merged.append(i)
            }
        }
        return merged
    }

    private static func append(_ span: PhaseSpan, to spans: inout [PhaseSpan]) {
        if let last = spans.last, last.name == span.name, last.source == span.source, last.end == span.start {
            spans[spans.count - 1].end = span.end
        } else {
            spans.append(span)
        }
    }

    private static func phaseOrder(_ p: PhaseName) -> Int { PhaseName.allCases.firstIndex(of: p) ?? 0 }
}
