import PodstartCore

/// Parsers for the Go renderings of `time.Time` and `time.Duration` that the kubelet logs
/// (docs/inputs.md#kubelet-log-lines). They work on bytes and never allocate.
public enum GoTime {
    /// The outcome of parsing a Go `time.Time.String()` value.
    public enum Parsed: Sendable, Equatable {
        /// Go's zero time (`0001-01-01 00:00:00 +0000 UTC`): the kubelet's "never happened".
        case absent
        case time(KubeletTimestamp)
    }

    /// Parses `2006-01-02 15:04:05.999999999 -0700 MST` with an optional ` m=±<seconds>` suffix.
    /// The zone abbreviation is any run of non-space bytes (Go prints `+0530` when the zone has
    /// no name). Returns nil when the bytes are not such a value.
    public static func parseTime(_ s: UnsafeBufferPointer<UInt8>) -> Parsed? {
        parseTimeAndOffset(s)?.0
    }

    /// `parseTime`, plus the zone's offset from UTC in seconds (the kubelet's local zone).
    public static func parseTimeAndOffset(_ s: UnsafeBufferPointer<UInt8>) -> (Parsed, Int)? {
        var c = ByteCursor(s)
        guard let year = c.digits(4), c.eat(UInt8(ascii: "-")),
              let month = c.digits(2), c.eat(UInt8(ascii: "-")),
              let day = c.digits(2), c.eat(UInt8(ascii: " ")),
              let hour = c.digits(2), c.eat(UInt8(ascii: ":")),
              let minute = c.digits(2), c.eat(UInt8(ascii: ":")),
              let second = c.digits(2)
        else { return nil }
        var nanos: Int64 = 0
        if c.eat(UInt8(ascii: ".")) {
            guard let f = c.fraction() else { return nil }
            nanos = f
        }
        guard c.eat(UInt8(ascii: " ")) else { return nil }
        guard let sign = c.next(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"),
              let offH = c.digits(2), let offM = c.digits(2), c.eat(UInt8(ascii: " "))
        else { return nil }
        // Zone abbreviation: at least one byte, up to a space or the end.
        let zoneStart = c.index
        while let b = c.peek(), b != UInt8(ascii: " ") { c.index += 1 }
        guard c.index > zoneStart else { return nil }
        var monotonic: Int64?
        if c.eat(UInt8(ascii: " ")) {
            guard c.eat(UInt8(ascii: "m")), c.eat(UInt8(ascii: "=")),
                  let msign = c.next(), msign == UInt8(ascii: "+") || msign == UInt8(ascii: "-"),
                  let whole = c.unsignedInteger(maxDigits: 10)
            else { return nil }
            var frac: Int64 = 0
            if c.eat(UInt8(ascii: ".")) {
                guard let f = c.fraction() else { return nil }
                frac = f
            }
            // Go prints the whole Int64 range, from m=-9223372036.854775808 to
            // m=+9223372036.854775807: the magnitude of the minimum exceeds Int64.max.
            let (w, overflow) = UInt64(whole).multipliedReportingOverflow(by: 1_000_000_000)
            let (v, overflow2) = w.addingReportingOverflow(UInt64(frac))
            guard !overflow, !overflow2 else { return nil }
            if msign == UInt8(ascii: "-") {
                guard v <= Int64.max.magnitude + 1 else { return nil }
                monotonic = v == Int64.max.magnitude + 1 ? .min : -Int64(v)
            } else {
                guard v <= Int64.max.magnitude else { return nil }
                monotonic = Int64(v)
            }
        }
        guard c.atEnd else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61,
              offH < 24, offM < 60
        else { return nil }
        let offset = Int64(offH) * 3600 + Int64(offM) * 60
        let signedOffset = Int(sign == UInt8(ascii: "-") ? -offset : offset)
        if year == 1, month == 1, day == 1, hour == 0, minute == 0, second == 0, nanos == 0 {
            return (.absent, signedOffset)
        }
        // Int64 nanoseconds cover 1678…2261; anything else is not a kubelet timestamp.
        guard (1700...2200).contains(year) else { return nil }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        var secs = days * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
        secs -= Int64(signedOffset)
        return (.time(KubeletTimestamp(nanosecondsSinceEpoch: secs * 1_000_000_000 + nanos,
                                       monotonicNanoseconds: monotonic)), signedOffset)
    }

    /// Parses RFC 3339 with optional fraction and `Z` or `±hh:mm` (containerd's `time="…"`, API
    /// server timestamps).
    public static func parseRFC3339(_ s: UnsafeBufferPointer<UInt8>) -> KubeletTimestamp? {
        var c = ByteCursor(s)
        guard let year = c.digits(4), c.eat(UInt8(ascii: "-")),
              let month = c.digits(2), c.eat(UInt8(ascii: "-")),
              let day = c.digits(2), c.eatEither(UInt8(ascii: "T"), UInt8(ascii: "t")),
              let hour = c.digits(2), c.eat(UInt8(ascii: ":")),
              let minute = c.digits(2), c.eat(UInt8(ascii: ":")),
              let second = c.digits(2)
        else { return nil }
        var nanos: Int64 = 0
        if c.eat(UInt8(ascii: ".")) {
            guard let f = c.fraction() else { return nil }
            nanos = f
        }
        var offset: Int64 = 0
        if c.eatEither(UInt8(ascii: "Z"), UInt8(ascii: "z")) {
        } else if let sign = c.next(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"),
                  let oh = c.digits(2), c.eat(UInt8(ascii: ":")), let om = c.digits(2) {
            offset = Int64(oh) * 3600 + Int64(om) * 60
            if sign == UInt8(ascii: "-") { offset = -offset }
        } else {
            return nil
        }
        guard c.atEnd, (1700...2200).contains(year), (1...12).contains(month), (1...31).contains(day),
              hour < 24, minute < 60, second < 61
        else { return nil }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        let secs = days * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second) - offset
        return KubeletTimestamp(nanosecondsSinceEpoch: secs * 1_000_000_000 + nanos)
    }

    public static func parseRFC3339(_ s: String) -> KubeletTimestamp? {
        var s = s
        return s.withUTF8 { parseRFC3339($0) }
    }

    /// A klog header time (`Lmmdd hh:mm:ss.uuuuuu`): no year and no zone — the kubelet's local
    /// time. Resolved against a full timestamp from the same kubelet (`resolve`).
    public struct KlogLocalTime: Sendable, Hashable {
        public var month: Int
        public var day: Int
        /// Nanoseconds since local midnight.
        public var nanosecondsOfDay: Int64

        /// The UTC instant, taking the year from the nearest candidate to `reference` and the
        /// zone from `utcOffsetSeconds` (both from a line of the same kubelet).
        public func resolve(near reference: KubeletTimestamp, utcOffsetSeconds: Int) -> KubeletTimestamp? {
            let localRef = reference.nanosecondsSinceEpoch + Int64(utcOffsetSeconds) * 1_000_000_000
            let (year, _, _) = GoTime.civilFromDays(localRef / 86_400_000_000_000)
            var best: Int64?
            for y in [year - 1, year, year + 1] {
                let days = GoTime.daysFromCivil(year: y, month: Int64(month), day: Int64(day))
                let local = days * 86_400_000_000_000 + nanosecondsOfDay
                if best == nil || abs(local - localRef) < abs(best! - localRef) { best = local }
            }
            guard let local = best else { return nil }
            return KubeletTimestamp(nanosecondsSinceEpoch: local - Int64(utcOffsetSeconds) * 1_000_000_000)
        }
    }

    /// Parses `Lmmdd hh:mm:ss.uuuuuu` at the start of `s` (after any journald prefix is removed).
    public static func parseKlogHeaderTime(_ s: UnsafeBufferPointer<UInt8>) -> KlogLocalTime? {
        var c = ByteCursor(s)
        guard let level = c.next(), [UInt8(ascii: "I"), UInt8(ascii: "W"), UInt8(ascii: "E"), UInt8(ascii: "F")].contains(level),
              let month = c.digits(2), let day = c.digits(2), c.eat(UInt8(ascii: " ")),
              let h = c.digits(2), c.eat(UInt8(ascii: ":")), let m = c.digits(2), c.eat(UInt8(ascii: ":")),
              let sec = c.digits(2), c.eat(UInt8(ascii: ".")), let frac = c.fraction(), c.eat(UInt8(ascii: " ")),
              (1...12).contains(month), (1...31).contains(day), h < 24, m < 60, sec < 61
        else { return nil }
        return KlogLocalTime(month: month, day: day,
                             nanosecondsOfDay: (Int64(h) * 3600 + Int64(m) * 60 + Int64(sec)) * 1_000_000_000 + frac)
    }

    public static func parseTime(_ s: String) -> Parsed? {
        var s = s
        return s.withUTF8 { parseTime($0) }
    }

    /// Parses Go `time.Duration.String()` / `time.ParseDuration` input (`1m5.2s`, `180.183041ms`,
    /// `0s`, `1h2m3s`, `-1.5s`, `.5s`, `-9223372036854775808ns`) into nanoseconds, with Go's own
    /// algorithm (src/time/format.go): the same accepted inputs (a missing whole or fraction part,
    /// any number of fraction digits, `us`/`µs`/`μs`), the same float rounding of fractions, and
    /// nil where Go reports an error (overflow of the Int64 range included). Never traps.
    public static func parseDuration(_ s: UnsafeBufferPointer<UInt8>) -> Int64? {
        var c = ByteCursor(s)
        var negative = false
        if let b = c.peek(), b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
            negative = b == UInt8(ascii: "-")
            c.index += 1
        }
        if c.remaining == 1, c.peek() == UInt8(ascii: "0") { return 0 }
        guard !c.atEnd else { return nil }
        let limit: UInt64 = 1 << 63
        var total: UInt64 = 0
        while !c.atEnd {
            guard let first = c.peek(), first == UInt8(ascii: ".") || (first >= 48 && first <= 57) else { return nil }
            // [0-9]*: Go's leadingInt, an error past 1<<63.
            var whole: UInt64 = 0
            let wholeStart = c.index
            while let b = c.peek(), b >= 48, b <= 57 {
                guard whole <= limit / 10 else { return nil }
                whole = whole * 10 + UInt64(b - 48)
                guard whole <= limit else { return nil }
                c.index += 1
            }
            let sawWhole = c.index > wholeStart
            // (\.[0-9]*)?: Go's leadingFraction, which stops gaining precision on overflow.
            var fraction: UInt64 = 0
            var scale: Double = 1
            var sawFraction = false
            if c.eat(UInt8(ascii: ".")) {
                let fracStart = c.index
                var overflow = false
                while let b = c.peek(), b >= 48, b <= 57 {
                    c.index += 1
                    if overflow { continue }
                    guard fraction <= (limit - 1) / 10 else { overflow = true; continue }
                    let y = fraction * 10 + UInt64(b - 48)
                    guard y <= limit else { overflow = true; continue }
                    fraction = y
                    scale *= 10
                }
                sawFraction = c.index > fracStart
            }
            guard sawWhole || sawFraction else { return nil }
            guard let unit = c.durationUnit() else { return nil }
            let u = UInt64(unit)
            guard whole <= limit / u else { return nil }
            var v = whole * u
            if fraction > 0 {
                // float64 keeps fractions of hours nanosecond-accurate (Go's comment); the product
                // is at most an hour's nanoseconds, so the conversion cannot trap.
                v += UInt64(Double(fraction) * (Double(u) / scale))
                guard v <= limit else { return nil }
            }
            let (sum, overflow) = total.addingReportingOverflow(v)
            guard !overflow, sum <= limit else { return nil }
            total = sum
        }
        if negative { return total == limit ? .min : -Int64(total) }
        guard total < limit else { return nil }
        return Int64(total)
    }

    public static func parseDuration(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { parseDuration($0) }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (PodstartCore's Timestamp has the algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        Timestamp.days(fromCivil: year, month, day)
    }

    /// Civil date of a day count since 1970-01-01.
    static func civilFromDays(_ z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let (y, m, d) = Timestamp.civil(fromDays: z0)
        return (y, m, d)
    }

    /// RFC 3339 in UTC with as many fractional digits as needed (none for whole seconds).
    public static func formatRFC3339(_ t: KubeletTimestamp) -> String {
        let ns = t.nanosecondsSinceEpoch
        var secs = ns / 1_000_000_000
        var frac = ns % 1_000_000_000
        if frac < 0 { frac += 1_000_000_000; secs -= 1 }
        var days = secs / 86_400
        var sod = secs % 86_400
        if sod < 0 { sod += 86_400; days -= 1 }
        let (y, m, d) = civilFromDays(days)
        var out = pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T"
        out += pad(sod / 3600, 2) + ":" + pad(sod % 3600 / 60, 2) + ":" + pad(sod % 60, 2)
        if frac != 0 {
            var f = pad(frac, 9)
            while f.last == "0" { f.removeLast() }
            out += "." + f
        }
        return out + "Z"
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

/// Exact decimal rendering of a nanosecond count as seconds (`7944317690` → `7.94431769`).
public func secondsText(nanoseconds: Int64) -> String {
    let negative = nanoseconds < 0
    let mag = nanoseconds.magnitude
    let whole = mag / 1_000_000_000
    var frac = mag % 1_000_000_000
    var s = (negative ? "-" : "") + String(whole)
    if frac != 0 {
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: 9)
        var i = 8
        while frac > 0 { digits[i] = UInt8(ascii: "0") + UInt8(frac % 10); frac /= 10; i -= 1 }
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        s += "." + String(decoding: digits, as: UTF8.self)
    }
    return s
}

/// Appends `secondsText(nanoseconds:)` as UTF-8 bytes.
public func appendSecondsText(_ nanoseconds: Int64, to out: inout [UInt8]) {
    if nanoseconds < 0 { out.append(UInt8(ascii: "-")) }
    let mag = nanoseconds.magnitude
    var whole = mag / 1_000_000_000
    var frac = mag % 1_000_000_000
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &digits) { d in
        var n = 0
        repeat { d[n] = UInt8(ascii: "0") + UInt8(whole % 10); whole /= 10; n += 1 } while whole > 0
        while n > 0 { n -= 1; out.append(d[n]) }
    }
    if frac != 0 {
        out.append(UInt8(ascii: "."))
        var width = 9
        while frac % 10 == 0 { frac /= 10; width -= 1 }
        var div: UInt64 = 1
        for _ in 1..<width { div *= 10 }
        while div > 0 { out.append(UInt8(ascii: "0") + UInt8(frac / div % 10)); div /= 10 }
    }
}

/// Go's `time.Duration.Seconds()`: `float64(sec) + float64(nsec)/1e9`, so that our arithmetic
/// reproduces the kubelet's float artefacts (`1.2549581779999999`) bit for bit.
@inlinable
public func goSeconds(_ nanoseconds: Int64) -> Double {
    let sec = nanoseconds / 1_000_000_000
    let nsec = nanoseconds % 1_000_000_000
    return Double(sec) + Double(nsec) / 1e9
}

/// A forward-only reader over bytes used by the parsers in this module.
struct ByteCursor {
    let base: UnsafeBufferPointer<UInt8>
    var index: Int

    init(_ base: UnsafeBufferPointer<UInt8>, index: Int = 0) {
        self.base = base
        self.index = index
    }

    var atEnd: Bool { index >= base.count }
    var remaining: Int { base.count - index }

    @inline(__always) func peek() -> UInt8? { index < base.count ? base[index] : nil }

    @inline(__always) mutating func next() -> UInt8? {
        guard index < base.count else { return nil }
        defer { index += 1 }
        return base[index]
    }

    @inline(__always) mutating func eat(_ b: UInt8) -> Bool {
        guard index < base.count, base[index] == b else { return false }
        index += 1
        return true
    }

    mutating func eatEither(_ a: UInt8, _ b: UInt8) -> Bool {
        guard index < base.count, base[index] == a || base[index] == b else { return false }
        index += 1
        return true
    }

    mutating func eat(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard remaining >= n else { return false }
        let p = literal.utf8Start
        for i in 0..<n where base[index + i] != p[i] { return false }
        index += n
        return true
    }

    /// Exactly `n` decimal digits.
    mutating func digits(_ n: Int) -> Int? {
        guard remaining >= n else { return nil }
        var v = 0
        for i in 0..<n {
            let b = base[index + i]
            guard b >= 48, b <= 57 else { return nil }
            v = v * 10 + Int(b - 48)
        }
        index += n
        return v
    }

    /// 1…maxDigits decimal digits.
    mutating func unsignedInteger(maxDigits: Int) -> Int64? {
        var v: Int64 = 0
        var n = 0
        while let b = peek(), b >= 48, b <= 57 {
            guard n < maxDigits else { return nil }
            v = v * 10 + Int64(b - 48)
            n += 1
            index += 1
        }
        return n == 0 ? nil : v
    }

    /// 1…9 fractional digits after a dot, as nanoseconds.
    mutating func fraction() -> Int64? {
        var v: Int64 = 0
        var n = 0
        while let b = peek(), b >= 48, b <= 57 {
            guard n < 9 else { return nil }
            v = v * 10 + Int64(b - 48)
            n += 1
            index += 1
        }
        guard n > 0 else { return nil }
        for _ in n..<9 { v *= 10 }
        return v
    }

    /// A Go duration unit, in nanoseconds.
    mutating func durationUnit() -> Int64? {
        guard let b = next() else { return nil }
        switch b {
        case UInt8(ascii: "h"): return 3_600_000_000_000
        case UInt8(ascii: "s"): return 1_000_000_000
        case UInt8(ascii: "m"):
            if eat(UInt8(ascii: "s")) { return 1_000_000 }
            return 60_000_000_000
        case UInt8(ascii: "u"):
            return eat(UInt8(ascii: "s")) ? 1_000 : nil
        case UInt8(ascii: "n"):
            return eat(UInt8(ascii: "s")) ? 1 : nil
        case 0xC2, 0xCE: // µs: U+00B5 (C2 B5) or U+03BC (CE BC)
            guard let b2 = next(), b == 0xC2 ? b2 == 0xB5 : b2 == 0xBC, eat(UInt8(ascii: "s")) else { return nil }
            return 1_000
        default:
            return nil
        }
    }
}
