import Foundation
import PodstartCore

/// Parses `--since` values: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), `YYYY-MM-DD`, or a Go-style
/// duration ago (`90m`, `2h`, `1h30m`).
public enum SinceParser {
    public static func parse(_ s: String, now: Date) -> KubeletTimestamp? {
        if let t = GoTime.parseRFC3339(s) { return t }
        if s.count == 19, let t = GoTime.parseRFC3339(s.replacingOccurrences(of: " ", with: "T") + "Z") { return t }
        if s.count == 10, let t = GoTime.parseRFC3339(s + "T00:00:00Z") { return t }
        if let d = GoTime.parseDuration(s), d >= 0 {
            // A duration reaching before 1970 (e.g. 2562047h) is not a time a log holds.
            let nowNs = Int64(now.timeIntervalSince1970 * 1e9)
            let t = nowNs.saturatingSubtract(d)
            return t >= 0 ? KubeletTimestamp(nanosecondsSinceEpoch: t) : nil
        }
        return nil
    }

    /// journalctl's `--since` syntax (`YYYY-MM-DD HH:MM:SS`, UTC).
    public static func journalctlArgument(_ t: KubeletTimestamp) -> String {
        let iso = GoTime.formatRFC3339(KubeletTimestamp(nanosecondsSinceEpoch: t.nanosecondsSinceEpoch / 1_000_000_000 * 1_000_000_000))
        return String(iso.dropLast().replacingOccurrences(of: "T", with: " ")) + " UTC"
    }
}
