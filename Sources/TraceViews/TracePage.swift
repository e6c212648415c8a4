import Foundation
import PodstartCore

/// One pod start as a self-contained HTML page: the phase waterfall on a time axis from `created`,
/// the pull's download / decompress / pull_other parts under it, and each container's file
/// accesses as marks on the same axis (hover: path, layer, bytes), then the same data as tables.
///
/// Nothing is fetched: styles are inline, the drawing is inline SVG, there is no script, and a
/// Content-Security-Policy of `default-src 'none'` keeps a browser from loading anything even if a
/// value slipped through (every value from the trace is escaped). Every drawn phase and access
/// carries its values as `data-` attributes, so tools (and the tests) can read the page's DOM.
public enum TracePage {
    /// The page's content type, for HTTP responses.
    public static let contentType = "text/html; charset=utf-8"

    static let width = 1080.0
    static let labelWidth = 150.0
    static let valueWidth = 190.0
    static let rowHeight = 22.0
    static let axisHeight = 28.0
    static var plotWidth: Double { width - labelWidth - valueWidth }

    public static func render(_ trace: PodStartTrace) -> String {
        let e2e = max(trace.e2eNanoseconds, 1)
        func x(_ t: Int64) -> Double { labelWidth + min(max(Double(t.saturatingSubtract(trace.created)) / Double(e2e), 0), 1) * plotWidth }

        var rows: [String] = []
        var y = axisHeight
        for span in trace.phases where span.parent == nil {
            rows.append("<g class=\"row\">" + label(span.name.rawValue, y: y, indent: false)
                        + phaseBar(span, trace: trace, e2e: e2e, y: y, x: x)
                        + value("\(fixed(span.seconds, 3)) s · \(span.source.rawValue)", y: y) + "</g>")
            y += rowHeight
            if span.name == .pull {
                // the parts on one row under their pull: a pull can have thousands of them
                let parts = trace.parts(of: span)
                guard !parts.isEmpty else { continue }
                let totals = PhaseName.pullParts.compactMap { kind -> String? in
                    let ns = parts.filter { $0.name == kind }.saturatingSum { $0.nanoseconds }
                    return ns >= 500_000 ? "\(kind == .download ? "download" : kind == .decompress ? "unpack" : "other") \(fixed(Double(ns) / 1e9, 2))" : nil
                }
                rows.append("<g class=\"row\">" + label("download / decompress", y: y, indent: true)
                            + parts.map { phaseBar($0, trace: trace, e2e: e2e, y: y, x: x) }.joined()
                            + value(totals.joined(separator: " · "), y: y) + "</g>")
                y += rowHeight
            }
            let waits = trace.lazyFetchPieces(of: span)
            if !waits.isEmpty {
                rows.append("<g class=\"row\">" + label("lazy_fetch", y: y, indent: true)
                            + waits.map { phaseBar($0, trace: trace, e2e: e2e, y: y, x: x) }.joined()
                            + value("\(fixed(Double(waits.saturatingSum { $0.nanoseconds }) / 1e9, 3)) s · kernel", y: y) + "</g>")
                y += rowHeight
            }
        }
        for container in trace.containers where !container.accesses.isEmpty {
            let origin = accessOrigin(container, trace: trace)
            var marks = ""
            for access in container.accesses {
                // firstAccessMs is bounded on decoding (±10^12 ms), so the product fits Int64.
                let at = origin.saturatingAdd(Int64((access.firstAccessMs * 1e6).rounded()))
                let mx = x(at)
                let tip = "\(access.path)\nlayer \(access.layerDigest ?? "none (not from the image)")\n\(access.bytes) bytes read, \(access.opens) open\(access.opens == 1 ? "" : "s"), first at \(fixed(access.firstAccessMs, 2)) ms after the first exec"
                marks += """
                    <g class="access" data-container="\(esc(container.name))" data-path="\(esc(access.path))" data-layer="\(esc(access.layerDigest ?? ""))" data-bytes="\(access.bytes)" data-at-seconds="\(fixed(Double(at.saturatingSubtract(trace.created)) / 1e9, 6))"><title>\(esc(tip))</title><rect x="\(fixed(mx - 1, 1))" y="\(fixed(y + 3, 1))" width="2" height="\(fixed(rowHeight - 6, 1))"/></g>
                    """
            }
            let bytes = container.accesses.saturatingSum { $0.bytes }
            rows.append("<g class=\"accesses\">" + label("files: \(container.name)", y: y, indent: false) + marks
                        + value("\(container.accesses.count) files, \(byteText(bytes))", y: y) + "</g>")
            y += rowHeight
        }
        let height = y + 6
        let readyLine = trace.ready.map { r in
            "<line class=\"ready\" x1=\"\(fixed(x(r), 1))\" x2=\"\(fixed(x(r), 1))\" y1=\"\(fixed(axisHeight - 6, 1))\" y2=\"\(fixed(height, 1))\"><title>ready</title></line>"
        } ?? ""

        let title = trace.pod.name.isEmpty ? (trace.runtime?.containerID ?? trace.pod.uid) : "\(trace.pod.namespace)/\(trace.pod.name)"
        let images = trace.containers.map { "\(esc($0.name)): <code>\(esc($0.image))</code>" }.joined(separator: ", ")
        let outcome = trace.outcome == .ready
            ? "ready after <b>\(fixed(trace.e2eSeconds, 3)) s</b>"
            : "<b>failed</b> after \(fixed(trace.e2eSeconds, 3)) s: \(esc(trace.failureReason ?? "no reason recorded"))"

        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="generator" content="podstart">
            <title>\(esc(title)) — pod start</title>
            <style>\(style)</style></head>
            <body>
            <h1>\(esc(title))</h1>
            <p class="meta">created \(esc(Timestamp.rfc3339(unixNanoseconds: trace.created))) · \(outcome) · uid <code>\(esc(trace.pod.uid))</code></p>
            <p class="meta">\(images)</p>
            <svg id="waterfall" xmlns="http://www.w3.org/2000/svg" width="\(fixed(width, 0))" height="\(fixed(height, 0))" viewBox="0 0 \(fixed(width, 0)) \(fixed(height, 0))" role="img" aria-label="phases of the pod start">
            \(axis(e2e: e2e, height: height))
            \(rows.joined(separator: "\n"))
            \(readyLine)
            </svg>
            <p class="legend">Bars start at the phase's offset from <i>created</i>; top-level phases tile created → ready, and the pull's parts tile the pull. Marks: a file's first access (hover for path, layer, bytes).</p>
            \(phaseTable(trace, e2e: e2e))
            \(eventsTable(trace))
            \(accessTables(trace))
            </body></html>

            """
    }

    /// When the container's accesses' clock starts: its first exec, else (older traces) the end of
    /// the last `start` phase, which ends at a first exec.
    static func accessOrigin(_ container: PodStartTrace.Container, trace: PodStartTrace) -> Int64 {
        container.firstExec ?? trace.phases.last { $0.name == .start && $0.parent == nil }?.end ?? trace.created
    }

    static func label(_ text: String, y: Double, indent: Bool) -> String {
        "<text class=\"label\" x=\"\(indent ? 18 : 4)\" y=\"\(fixed(y + 15, 1))\">\(esc(text))</text>"
    }

    static func value(_ text: String, y: Double) -> String {
        "<text class=\"value\" x=\"\(fixed(width - valueWidth + 6, 1))\" y=\"\(fixed(y + 15, 1))\">\(esc(text))</text>"
    }

    /// One phase as a bar, its values as `data-` attributes and a hover title.
    static func phaseBar(_ span: PhaseSpan, trace: PodStartTrace, e2e: Int64, y: Double, x: (Int64) -> Double) -> String {
        let x0 = x(span.start), x1 = x(span.end)
        let share = Double(span.nanoseconds) / Double(e2e) * 100
        let name = span.name.rawValue
        let from = Double(span.start.saturatingSubtract(trace.created)) / 1e9
        let tip = "\(name) \(fixed(span.seconds, 3)) s (\(fixed(share, 1))%), \(fixed(from, 3)) → \(fixed(from + span.seconds, 3)) s, measured by \(span.source.rawValue)"
        return """
            <g class="phase" data-name="\(name)" data-parent="\(span.parent?.rawValue ?? "")" data-source="\(span.source.rawValue)" data-seconds="\(fixed(span.seconds, 9))" data-start-seconds="\(fixed(from, 9))"><title>\(esc(tip))</title><rect class="p-\(name)" x="\(fixed(x0, 2))" y="\(fixed(y + 3, 1))" width="\(fixed(max(x1 - x0, 1), 2))" height="\(fixed(rowHeight - 6, 1))"/></g>
            """
    }

    /// Tick marks at a round step: about eight over the axis.
    static func axis(e2e: Int64, height: Double) -> String {
        let seconds = Double(e2e) / 1e9
        let step = niceStep(seconds / 8)
        var out = "<g class=\"axis\">"
        var t = 0.0
        while t <= seconds + step * 1e-9 {
            let tx = labelWidth + t / seconds * plotWidth
            out += "<line x1=\"\(fixed(tx, 1))\" x2=\"\(fixed(tx, 1))\" y1=\"\(fixed(axisHeight - 6, 1))\" y2=\"\(fixed(height, 1))\"/>"
            out += "<text x=\"\(fixed(tx, 1))\" y=\"14\">\(axisLabel(t, step: step))</text>"
            t += step
        }
        return out + "</g>"
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 5, 10] where m * magnitude >= raw { return m * magnitude }
        return 10 * magnitude
    }

    static func axisLabel(_ t: Double, step: Double) -> String {
        if step >= 1 { return "\(fixed(t, 0)) s" }
        if step >= 0.001 { return "\(fixed(t * 1000, 0)) ms" }
        return "\(fixed(t * 1e6, 0)) µs"
    }

    static func phaseTable(_ trace: PodStartTrace, e2e: Int64) -> String {
        func row(_ name: String, from: Double?, ns: Int64, source: String) -> String {
            "<tr><td>\(name)</td><td class=\"n\">\(from.map { fixed($0, 3) } ?? "")</td><td class=\"n\">\(fixed(Double(ns) / 1e9, 3))</td><td class=\"n\">\(fixed(Double(ns) / Double(e2e) * 100, 1))%</td><td>\(source)</td></tr>"
        }
        var rows = ""
        for span in trace.phases where span.parent == nil {
            rows += row(span.name.rawValue, from: Double(span.start.saturatingSubtract(trace.created)) / 1e9, ns: span.nanoseconds, source: span.source.rawValue)
            let waits = trace.lazyFetchPieces(of: span)
            if !waits.isEmpty {
                rows += row("&nbsp;&nbsp;lazy_fetch\(waits.count > 1 ? " (\(waits.count) parts)" : "")", from: nil,
                            ns: waits.saturatingSum { $0.nanoseconds }, source: "kernel")
            }
            guard span.name == .pull else { continue }
            let parts = trace.parts(of: span)
            for kind in PhaseName.pullParts {
                let mine = parts.filter { $0.name == kind }
                guard !mine.isEmpty else { continue }
                let sources = Set(mine.map(\.source.rawValue)).sorted().joined(separator: ", ")
                rows += row("&nbsp;&nbsp;\(kind.rawValue)\(mine.count > 1 ? " (\(mine.count) parts)" : "")", from: nil,
                            ns: mine.saturatingSum { $0.nanoseconds }, source: sources)
            }
        }
        return "<h2>Phases</h2><table class=\"phases\"><thead><tr><th>phase</th><th>from (s)</th><th>seconds</th><th>share</th><th>source</th></tr></thead><tbody>\(rows)</tbody></table>"
    }

    /// The pod's events as listed when the start was recorded (nothing when they were not).
    static func eventsTable(_ trace: PodStartTrace) -> String {
        guard let events = trace.events else { return "" }
        if let error = events.error, events.items.isEmpty {
            return "<h2>Events</h2><p class=\"meta\">not listed: \(esc(error))</p>"
        }
        let createdSecond = trace.created / 1_000_000_000 - (trace.created % 1_000_000_000 < 0 ? 1 : 0)
        var rows = ""
        for e in events.items {
            let from = e.firstTimestamp.map { String($0 / 1_000_000_000 - createdSecond) } ?? ""
            rows += "<tr class=\"\(e.isWarning ? "warning" : "normal")\"><td class=\"n\">\(from)</td><td>\(esc(e.type))</td><td>\(esc(e.reason))</td><td class=\"n\">\(e.count)</td><td>\(esc(e.container ?? ""))</td><td>\(esc(e.component))</td><td>\(esc(e.message))</td></tr>"
        }
        let more = events.truncated ? "<p class=\"meta\">more events on the API server than the limit kept (Warnings first)</p>" : ""
        return "<h2>Events</h2><table class=\"events\"><thead><tr><th>from (s)</th><th>type</th><th>reason</th><th>count</th><th>container</th><th>by</th><th>message</th></tr></thead><tbody>\(rows)</tbody></table>\(more)"
    }

    static func accessTables(_ trace: PodStartTrace) -> String {
        var out = ""
        for container in trace.containers {
            out += "<h2>Files <code>\(esc(container.name))</code> read before ready</h2>"
            guard !container.accesses.isEmpty else {
                out += "<p class=\"meta\">none recorded (no kernel probes, or the container read no files)</p>"
                continue
            }
            var rows = ""
            for a in container.accesses {
                rows += "<tr><td class=\"n\">\(fixed(a.firstAccessMs, 2))</td><td class=\"n\">\(a.bytes)</td><td class=\"n\">\(a.opens)</td><td class=\"n\">\(a.sizeBytes.map(String.init) ?? "")</td><td><code>\(esc(shortDigest(a.layerDigest)))</code></td><td><code>\(esc(a.path))</code></td></tr>"
            }
            out += "<table class=\"accesses\"><thead><tr><th>first (ms)</th><th>bytes</th><th>opens</th><th>size</th><th>layer</th><th>path</th></tr></thead><tbody>\(rows)</tbody></table>"
        }
        return out
    }

    static func shortDigest(_ digest: String?) -> String {
        guard let digest else { return "—" }
        return digest.hasPrefix("sha256:") ? String(digest.prefix(19)) : digest
    }

    static func byteText(_ bytes: UInt64) -> String { TerminalProgress.byteText(bytes) }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "0"
    }

    /// Text and attribute values: the five characters HTML gives meaning to.
    static func esc(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // control characters other than newline and tab are shown, not passed through
                if ch.value < 0x20 && ch != "\n" && ch != "\t" || ch.value == 0x7F {
                    out += "\\u{\(String(ch.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        return out
    }

    static let style = """
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:20px;color:#222;background:#fff}
        h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}
        .meta{margin:2px 0;color:#555}code{font:12px ui-monospace,Menlo,Consolas,monospace}
        svg{display:block;margin:12px 0}
        .axis line{stroke:#e4e4e4}.axis text{font-size:11px;fill:#777;text-anchor:middle}
        .label{font-size:12px;fill:#333}.value{font-size:12px;fill:#555}
        .phase:hover rect{stroke:#000;stroke-width:1}.access rect{fill:#333}.access:hover rect{fill:#d00}
        .ready{stroke:#2a7;stroke-width:2;stroke-dasharray:4 3}
        .p-schedule{fill:#8d99ae}.p-sandbox{fill:#4e79a7}.p-pull{fill:#f28e2b}.p-download{fill:#edc948}
        .p-decompress{fill:#e15759}.p-pull_other{fill:#ff9da7}.p-init{fill:#76b7b2}.p-create{fill:#59a14f}
        .p-start{fill:#b07aa1}.p-probe{fill:#9c755f}.p-ready_report{fill:#d4a6c8}.p-unattributed{fill:#cfcfcf}.p-lazy_fetch{fill:#17becf}
        .legend{color:#666;font-size:12px;max-width:1040px}
        table{border-collapse:collapse;font-size:12px}th,td{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
        td.n{text-align:right;font-variant-numeric:tabular-nums}
        tr.warning td{color:#b00}
        """
}
