/// The two exposition formats `/metrics` speaks.
public enum ExpositionFormat: Sendable, Hashable {
    /// Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    case text
    /// OpenMetrics 1.0.0: counters' families drop `_total`, `podstart_build` is an `info`, `le`
    /// values are canonical floats, and the body ends with `# EOF`.
    case openMetrics

    public var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// Content negotiation as Prometheus does it: OpenMetrics only when the scraper asks for it.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept else { return .text }
        for part in accept.split(separator: ",") {
            let mediaType = part.split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
            if mediaType.lowercased() == "application/openmetrics-text" {
                // A quality of 0 means "not acceptable" (RFC 9110 §12.4.2).
                let q = part.split(separator: ";").dropFirst().compactMap { p -> Double? in
                    let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
                    return kv.count == 2 && kv[0] == "q" ? Double(kv[1]) : nil
                }.first ?? 1
                return q > 0 ? .openMetrics : .text
            }
        }
        return .text
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Number and label formatting shared by both formats. Kept apart so the golden tests pin it.
enum Exposition {
    /// A sample value: integers without a fraction (as Go's `FormatFloat(v, 'g', -1, 64)` does
    /// for the counts and byte totals that dominate the output), otherwise Swift's shortest
    /// round-tripping representation, which Prometheus' `ParseFloat` reads back exactly.
    static func value(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// An `le` bound. OpenMetrics wants canonical floats ("1.0"), the text format Go's short
    /// form ("1"), which is what the kubelet prints, so the two can be compared line by line.
    static func bound(_ v: Double, _ format: ExpositionFormat) -> String {
        if v.isInfinite { return "+Inf" }
        if v == v.rounded(), abs(v) < 1e15 {
            return format == .openMetrics ? String(Int64(v)) + ".0" : String(Int64(v))
        }
        return String(v)
    }

    /// Label values escape backslash, double quote and newline (both formats).
    static func escapeLabelValue(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return s }
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
