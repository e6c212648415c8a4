/// Durations as people write them: `100ms`, `1.5s`, `2m`, `1h`, or bare seconds.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value.isFinite, value >= 0 else { return nil }
            return .nanoseconds(Int64(value * scale * 1e9))
        }
        guard let value = Double(text), value.isFinite, value >= 0 else { return nil }
        return .nanoseconds(Int64(value * 1e9))
    }
}

extension Duration {
    public var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// podstart's version, as `--version` and `podstart_build_info` give it.
public enum PodstartVersion {
    public static let string = "0.1.0"
}
