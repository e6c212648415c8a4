import PodstartCore

/// The paths a profile may carry into a prefetch list. Every format is line- or JSON-based and
/// is read by tools that trim, normalise or resolve `..` (docs/prefetch-formats.md), so a path that could
/// be read back as another file is refused rather than escaped: it never reaches an export.
public enum ProfilePath {
    /// Why a path cannot be exported.
    public enum Rejection: String, Sendable, Hashable, CustomStringConvertible {
        case notAbsolute = "not absolute"
        case empty = "the root or empty"
        case controlCharacter = "contains a newline or another control character"
        case dotComponent = "contains a '.' or '..' component"
        case emptyComponent = "contains '//' or ends with '/'"
        case surroundingSpace = "begins or ends with white space (line formats trim it)"
        case tooLong = "longer than 4096 bytes"

        public var description: String { rawValue }
    }

    /// nil when `path` is an absolute, normalised path that every export format carries intact.
    public static func rejection(_ path: String) -> Rejection? {
        guard path.hasPrefix("/") else { return .notAbsolute }
        guard path.count > 1 else { return .empty }
        guard path.utf8.count <= 4096 else { return .tooLong }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\u{2028}" || $0 == "\u{2029}" || $0 == "\u{85}" }) {
            return .controlCharacter
        }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if components.contains(where: { $0 == "." || $0 == ".." }) { return .dotComponent }
        if components.contains(where: \.isEmpty) { return .emptyComponent }
        if let first = path.unicodeScalars.dropFirst().first, let last = path.unicodeScalars.last,
           first.properties.isWhitespace || last.properties.isWhitespace {
            return .surroundingSpace
        }
        return nil
    }

    public static func isExportable(_ path: String) -> Bool { rejection(path) == nil }

    /// `path` is `ancestor` or lies under it (`/a` covers `/a` and `/a/b`, not `/ab`).
    public static func covers(_ ancestor: String, _ path: String) -> Bool {
        if path == ancestor { return true }
        if ancestor == "/" { return path.hasPrefix("/") }
        return path.hasPrefix(ancestor) && path.utf8.dropFirst(ancestor.utf8.count).first == UInt8(ascii: "/")
    }

    /// A path shown in an error message: escaped so that a newline in it cannot forge a line.
    public static func quoted(_ path: String) -> String {
        var out = ""
        JSON.escape(path.count > 200 ? String(path.prefix(200)) + "…" : path, into: &out)
        return out
    }
}
