/// Durations as people write them: `100ms`, `1.5s`, `2m`, `1h`, or bare seconds. Nil for
/// anything else, negative values, and values past `maximum` (so no caller's arithmetic on the
/// result can overflow); flags check their own, narrower ranges (`validate()`).
public enum DurationText {
    /// The longest duration accepted: 100 years.
    public static let maximum: Duration = .seconds(100 * 365 * 86_400)

    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, s) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = s
            break
        }
        // Double() also reads "nan", "inf" and hex floats: only decimal digits, one dot, an exponent.
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "." || $0 == "e" || $0 == "E" || $0 == "-" || $0 == "+") }),
              let value = Double(number), value.isFinite, value >= 0
        else { return nil }
        let nanoseconds = value * scale * 1e9
        guard nanoseconds <= Double(maximum.nanoseconds) else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }

    /// `parse`, also requiring `range`; the error names the flag and says what fits.
    public static func parse(_ text: String, flag: String, in range: ClosedRange<Duration>) throws(FlagError) -> Duration {
        guard let d = parse(text) else {
            throw FlagError(message: "\(flag): '\(text)' is not a duration like 200ms, 10s or 5m")
        }
        guard range.contains(d) else {
            throw FlagError(message: "\(flag): \(text) is outside \(describe(range.lowerBound))…\(describe(range.upperBound))")
        }
        return d
    }

    /// A flag value that does not fit; `message` says which and why.
    public struct FlagError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// `250ms`, `10s`, `5m`, `24h`: the largest unit that divides the duration.
    public static func describe(_ d: Duration) -> String {
        let ns = d.nanoseconds
        for (unit, size) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)]
        where ns >= size && ns % size == 0 {
            return "\(ns / size)\(unit)"
        }
        return "\(ns)ns"
    }
}

extension Duration {
    public var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// podstart's version, as `--version` and `podstart_build_info` give it.
public enum PodstartVersion {
    public static let string = "0.1.0"
}
