/// The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0 text: families with HELP,
/// TYPE and UNIT, samples with escaped label values, optional timestamps and exemplars.
public enum PrometheusText {
    public enum MetricType: String, Sendable, Hashable {
        case counter, gauge, histogram, summary, untyped, unknown, info, stateset, gaugehistogram
    }

    public struct Exemplar: Sendable, Hashable {
        public var labels: [Label]
        public var value: Double
        public var timestamp: Double?
    }

    public struct Label: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    public struct Sample: Sendable, Hashable {
        public var name: String
        public var labels: [Label]
        public var value: Double
        /// As written: milliseconds in the Prometheus text format, seconds in OpenMetrics.
        public var timestamp: Double?
        public var exemplar: Exemplar?

        public func label(_ name: String) -> String? { labels.first { $0.name == name }?.value }
    }

    public struct Family: Sendable, Hashable {
        public var name: String
        public var type: MetricType
        public var help: String?
        public var unit: String?
        public var samples: [Sample]
    }

    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    public struct Exposition: Sendable {
        public var families: [Family]
        /// Lines that were not valid and were skipped (line number, reason).
        public var errors: [ParseError]
        /// True when the text ended with `# EOF` (OpenMetrics).
        public var openMetrics: Bool

        public func family(_ name: String) -> Family? { families.first { $0.name == name } }
    }

    /// Parses a whole exposition. Invalid lines are skipped and reported in `errors`; the rest
    /// is kept.
    public static func parse(_ text: String) -> Exposition {
        var families: [Family] = []
        var index: [String: Int] = [:]
        var errors: [ParseError] = []
        var sawEOF = false
        var lineNo = 0

        func familyIndex(for name: String, declared: Bool) -> Int {
            if let i = index[name] { return i }
            families.append(Family(name: name, type: .untyped, help: nil, unit: nil, samples: []))
            index[name] = families.count - 1
            return families.count - 1
        }

        /// The family a sample belongs to: histogram/summary/counter suffixes map to the
        /// declared family name.
        func owner(of sampleName: String) -> Int {
            for suffix in ["_bucket", "_sum", "_count", "_created", "_total", "_gsum", "_gcount", "_info"] where sampleName.hasSuffix(suffix) {
                let base = String(sampleName.dropLast(suffix.count))
                if let i = index[base], families[i].type != .untyped && families[i].type != .gauge { return i }
            }
            return familyIndex(for: sampleName, declared: false)
        }

        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            if sawEOF { errors.append(ParseError(line: lineNo, reason: "text after # EOF")); continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
                if parts.count == 2, parts[1] == "EOF" { sawEOF = true; continue }
                guard parts.count >= 3 else { continue } // a comment
                let name = String(parts[2])
                switch parts[1] {
                case "HELP":
                    let i = familyIndex(for: name, declared: true)
                    families[i].help = parts.count > 3 ? unescapeHelp(parts[3]) : ""
                case "TYPE":
                    guard parts.count == 4, let t = MetricType(rawValue: String(parts[3])) else {
                        errors.append(ParseError(line: lineNo, reason: "bad TYPE")); continue
                    }
                    let i = familyIndex(for: name, declared: true)
                    if !families[i].samples.isEmpty { errors.append(ParseError(line: lineNo, reason: "TYPE after samples")) }
                    families[i].type = t
                case "UNIT":
                    let i = familyIndex(for: name, declared: true)
                    families[i].unit = parts.count > 3 ? String(parts[3]) : ""
                default:
                    continue
                }
                continue
            }
            do {
                let s = try parseSample(line)
                families[owner(of: s.name)].samples.append(s)
            } catch let e as Bad {
                errors.append(ParseError(line: lineNo, reason: e.reason))
            } catch {
                errors.append(ParseError(line: lineNo, reason: "\(error)"))
            }
        }
        return Exposition(families: families, errors: errors, openMetrics: sawEOF)
    }

    static func unescapeHelp(_ s: Substring) -> String {
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            if c == "\\", let n = it.next() {
                switch n {
                case "n": out.append("\n")
                case "\\": out.append("\\")
                case "\"": out.append("\"")
                default: out.append("\\"); out.append(n)
                }
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// `name{l="v",…} value [timestamp] [# {l="v"} value [timestamp]]`
    static func parseSample(_ line: Substring) throws -> Sample {
        let u = Array(line.utf8)
        var i = 0
        func isNameByte(_ b: UInt8, first: Bool) -> Bool {
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || b == 95 || b == 58 || (!first && b >= 48 && b <= 57)
        }
        let nameStart = i
        while i < u.count, isNameByte(u[i], first: i == nameStart) { i += 1 }
        guard i > nameStart else { throw Bad("bad metric name") }
        let name = String(decoding: u[nameStart..<i], as: UTF8.self)
        var labels: [Label] = []
        if i < u.count, u[i] == UInt8(ascii: "{") {
            (labels, i) = try parseLabels(u, at: i)
        }
        guard i < u.count, u[i] == UInt8(ascii: " ") || u[i] == UInt8(ascii: "\t") else { throw Bad("no value") }
        while i < u.count, u[i] == UInt8(ascii: " ") || u[i] == UInt8(ascii: "\t") { i += 1 }
        let (value, afterValue) = try parseNumber(u, at: i)
        i = afterValue
        var timestamp: Double?
        var exemplar: Exemplar?
        while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
        if i < u.count, u[i] != UInt8(ascii: "#") {
            let (t, after) = try parseNumber(u, at: i)
            timestamp = t
            i = after
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
        }
        if i < u.count, u[i] == UInt8(ascii: "#") {
            i += 1
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            guard i < u.count, u[i] == UInt8(ascii: "{") else { throw Bad("bad exemplar") }
            let (el, after) = try parseLabels(u, at: i)
            i = after
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            let (ev, afterV) = try parseNumber(u, at: i)
            i = afterV
            var et: Double?
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            if i < u.count {
                let (t, afterT) = try parseNumber(u, at: i)
                et = t
                i = afterT
            }
            exemplar = Exemplar(labels: el, value: ev, timestamp: et)
        }
        while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
        guard i == u.count else { throw Bad("trailing bytes") }
        return Sample(name: name, labels: labels, value: value, timestamp: timestamp, exemplar: exemplar)
    }

    static func parseLabels(_ u: [UInt8], at start: Int) throws -> ([Label], Int) {
        var i = start + 1
        var labels: [Label] = []
        while true {
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            guard i < u.count else { throw Bad("unterminated labels") }
            if u[i] == UInt8(ascii: "}") { return (labels, i + 1) }
            let ns = i
            while i < u.count, u[i] != UInt8(ascii: "="), u[i] != UInt8(ascii: " ") { i += 1 }
            guard i > ns else { throw Bad("empty label name") }
            let name = String(decoding: u[ns..<i], as: UTF8.self)
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            guard i < u.count, u[i] == UInt8(ascii: "=") else { throw Bad("label without =") }
            i += 1
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            guard i < u.count, u[i] == UInt8(ascii: "\"") else { throw Bad("label value not quoted") }
            i += 1
            var v: [UInt8] = []
            var closed = false
            while i < u.count {
                let b = u[i]
                if b == UInt8(ascii: "\"") { closed = true; i += 1; break }
                if b == UInt8(ascii: "\\") {
                    guard i + 1 < u.count else { throw Bad("bad escape") }
                    switch u[i + 1] {
                    case UInt8(ascii: "n"): v.append(10)
                    case UInt8(ascii: "\\"): v.append(UInt8(ascii: "\\"))
                    case UInt8(ascii: "\""): v.append(UInt8(ascii: "\""))
                    default: throw Bad("bad escape")
                    }
                    i += 2
                    continue
                }
                v.append(b)
                i += 1
            }
            guard closed else { throw Bad("unterminated label value") }
            if labels.contains(where: { $0.name == name }) { throw Bad("duplicate label \(name)") }
            labels.append(Label(name, String(decoding: v, as: UTF8.self)))
            while i < u.count, u[i] == UInt8(ascii: " ") { i += 1 }
            if i < u.count, u[i] == UInt8(ascii: ",") { i += 1 }
        }
    }

    static func parseNumber(_ u: [UInt8], at start: Int) throws -> (Double, Int) {
        var i = start
        while i < u.count, u[i] != UInt8(ascii: " "), u[i] != UInt8(ascii: "\t") { i += 1 }
        let text = String(decoding: u[start..<i], as: UTF8.self)
        switch text {
        case "+Inf", "Inf", "+inf", "inf": return (.infinity, i)
        case "-Inf", "-inf": return (-.infinity, i)
        case "NaN", "nan": return (.nan, i)
        default:
            guard !text.isEmpty, let d = Double(text), text.allSatisfy({ "0123456789+-.eE".contains($0) }) else {
                throw Bad("bad number '\(text)'")
            }
            return (d, i)
        }
    }
}

/// A line-level parse failure.
struct Bad: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
