#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 timestamps in UTC with nanoseconds (`2024-11-29T16:13:10.123456789Z`), the form of
/// every time in podstart's trace JSON.
public enum RFC3339 {
    public static func format(unixNs: Int64) -> String {
        var seconds = time_t(unixNs / 1_000_000_000)
        var nanos = unixNs % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; seconds -= 1 }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let fraction = String(nanos)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + "." + String(repeating: "0", count: 9 - fraction.count) + fraction + "Z"
    }
}
