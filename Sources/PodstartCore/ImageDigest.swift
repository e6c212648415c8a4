/// Image digests as podstart keys images by (state store, API paths, access profiles).
public enum ImageDigest {
    /// `^sha256:[a-f0-9]{64}$`, checked byte by byte.
    public static func isValid(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count == 71, text.hasPrefix("sha256:") else { return false }
        return b[7...].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
