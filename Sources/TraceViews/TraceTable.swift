import Foundation
import PodstartCore

/// The waterfall: one bar per phase on the pod's timeline, with seconds and share of the total.
public enum TraceTable {
    public static let barWidth = 48

    public static func render(_ trace: PodStartTrace, run: Int?) -> String {
        let e2e = max(trace.e2eNanoseconds, 1)
        var out = ""
        if let run { out += "run \(run)\n" }
        out += "pod \(trace.pod.namespace)/\(trace.pod.name)  \(trace.containers.first?.image ?? "")\n"
        let end = trace.readiness == .unknown ? "running after" : "ready after"
        out += "created \(Timestamp.rfc3339(unixNanoseconds: trace.created))  \(end) \(format(trace.e2eSeconds)) s"
        out += trace.readiness == .unknown ? "  (readiness unknown: no API server or kubelet /pods)\n\n" : "\n\n"
        let top = trace.phases.filter { $0.parent == nil }
        for span in top {
            out += line(span, trace: trace, e2e: e2e, indent: "")
            if span.name == .pull {
                for part in trace.parts(of: span) {
                    out += line(part, trace: trace, e2e: e2e, indent: "  ")
                }
            }
            let waits = trace.lazyFetchPieces(of: span)
            if !waits.isEmpty { out += lazyFetchLine(waits, trace: trace, e2e: e2e) }
        }
        out += "\(pad("total", 16)) \(String(repeating: " ", count: barWidth + 2)) \(lpad(format(trace.e2eSeconds), 8)) s  100.0%\n"
        for container in trace.containers {
            let bytes = container.accesses.saturatingSum { $0.bytes }
            out += "\ncontainer \(container.name): \(container.accesses.count) files read at start, \(bytes) bytes"
            if let code = container.exitCode { out += ", exited \(code)" }
            out += "\n"
            if !container.lazyFetches.isEmpty {
                let requests = container.lazyFetches.saturatingSum { $0.requests }
                let fetched = container.lazyFetches.saturatingSum { $0.bytes }
                let files = container.lazyFetches.filter { $0.path != nil }
                out += "  lazy fetch: \(requests) FUSE requests, \(fetched) bytes, \(files.count) files read on demand\n"
                for f in files.sorted(by: { $0.waitSeconds > $1.waitSeconds }).prefix(5) {
                    out += "    \(lpad(format(f.waitSeconds), 8)) s  \(lpad(String(f.bytes), 10)) B  \(f.path ?? "")\n"
                }
            }
        }
        if let events = trace.events { out += eventLines(events, trace: trace) }
        return out + "\n"
    }

    /// The pod's events under the waterfall: one line each (Warnings stand out by their type and
    /// count), offsets in the API's whole seconds, and the kubelet's own pull time beside
    /// podstart's `pull` when the kubelet's `Pulled` events gave one.
    static func eventLines(_ events: PodEvents, trace: PodStartTrace) -> String {
        if let error = events.error, events.items.isEmpty { return "\nevents: not listed (\(error))\n" }
        let warnings = events.items.filter(\.isWarning).count
        var out = "\nevents (\(events.items.count), \(warnings) warning\(warnings == 1 ? "" : "s"); seconds after created, whole seconds as the API stores them):\n"
        let createdSecond = trace.created / 1_000_000_000 - (trace.created % 1_000_000_000 < 0 ? 1 : 0)
        func offset(_ t: Int64?) -> String {
            guard let t else { return "?" }
            return "+\(t / 1_000_000_000 - createdSecond)"
        }
        let reasonWidth = min(24, events.items.map(\.reason.count).max() ?? 0)
        for e in events.items {
            var when = offset(e.firstTimestamp)
            if e.count > 1, e.lastTimestamp != e.firstTimestamp { when += "…" + offset(e.lastTimestamp) }
            var text = e.message.split(whereSeparator: \.isNewline).joined(separator: " ")
            if text.count > 140 { text = String(text.prefix(139)) + "…" }
            let count = e.count > 1 ? " ×\(e.count)" : ""
            let container = e.container.map { " [\($0)]" } ?? ""
            out += "  \(pad(when, 8)) \(pad(e.type, 7)) \(pad(e.reason, reasonWidth))\(count)\(container)  \(text)\n"
        }
        if events.truncated { out += "  … more events on the API server than the limit kept (--pod-events-limit; Warnings first)\n" }
        let pulled = events.items.compactMap(\.pullSeconds)
        if !pulled.isEmpty {
            let waiting = events.items.compactMap(\.pullIncludingWaitingSeconds)
            var line = "  kubelet's Pulled events: \(format(pulled.reduce(0, +))) s pulling"
            if waiting.count == pulled.count { line += " (\(format(waiting.reduce(0, +))) s including waiting)" }
            if trace.phases.contains(where: { $0.name == .pull && $0.parent == nil }) {
                line += " · podstart's pull phase: \(format(trace.seconds(of: .pull))) s"
            }
            out += line + "\n"
        }
        return out
    }

    static func line(_ span: PhaseSpan, trace: PodStartTrace, e2e: Int64, indent: String) -> String {
        // Clamped before converting: a trace read from a file may hold spans far outside its e2e.
        func columns(_ share: Double) -> Int { share.isFinite ? Int(min(max(share, 0), Double(barWidth))) : 0 }
        let offset = columns((Double(span.start.saturatingSubtract(trace.created)) / Double(e2e) * Double(barWidth)).rounded(.down))
        var length = columns((Double(span.nanoseconds) / Double(e2e) * Double(barWidth)).rounded())
        length = max(1, min(length, barWidth - min(offset, barWidth - 1)))
        let bar = String(repeating: " ", count: min(offset, barWidth - 1)) + String(repeating: "█", count: length)
        let share = Double(span.nanoseconds) / Double(e2e) * 100
        return "\(pad(indent + span.name.rawValue, 16)) |\(pad(bar, barWidth))| \(lpad(format(span.seconds), 8)) s \(lpad(String(format: "%5.1f", share), 6))%  \(span.source.rawValue)\n"
    }

    /// The `lazy_fetch` pieces inside one top-level phase: one row, a mark at each piece, their
    /// seconds added up (a sub-phase that overlaps its parent, not a part of a partition).
    static func lazyFetchLine(_ pieces: [PhaseSpan], trace: PodStartTrace, e2e: Int64) -> String {
        var bar = [Character](repeating: " ", count: barWidth)
        func column(_ t: Int64) -> Int {
            let share = Double(t.saturatingSubtract(trace.created)) / Double(e2e) * Double(barWidth)
            return share.isFinite ? Int(min(max(share, 0), Double(barWidth - 1))) : 0
        }
        for piece in pieces {
            for c in column(piece.start)...max(column(piece.start), column(piece.end)) { bar[c] = "▒" }
        }
        let total = pieces.saturatingSum { $0.nanoseconds }
        let share = Double(total) / Double(e2e) * 100
        return "\(pad("  lazy_fetch", 16)) |\(String(bar))| \(lpad(format(Double(total) / 1e9), 8)) s \(lpad(String(format: "%5.1f", share), 6))%  kernel\n"
    }

    public static func format(_ seconds: Double) -> String { String(format: "%.3f", seconds) }
    public static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    public static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
}
