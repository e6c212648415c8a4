import PodstartCore

/// The prefetch-list formats lazy-pull image tools read as they are (docs/prefetch-formats.md).
public enum PrefetchFormat: String, CaseIterable, Sendable {
    /// JSON lines `{"path":"usr/bin/x"}` in first-access order, no leading slash:
    /// `ctr-remote image convert --estargz-record-in`, `nerdctl image convert --estargz-record-in`.
    case estargz
    /// Absolute paths, one a line, none covered by an earlier one: `nydus-image create
    /// --prefetch-policy fs` / `nydusify convert --prefetch-patterns` standard input.
    case nydus
    /// `{"version":"v1","files":[{"path":…,"ranges":[[offset,size],…]}]}`: `nydusify optimize
    /// --prefetch-files` (nydus ≥ 2.3.7).
    case nydusJSON = "nydus-json"
    /// overlaybd's text priority list: absolute paths, one a line.
    case overlaybd
    /// Absolute paths, one a line, for anything else (scripts, `xargs cat`).
    case paths
    /// podstart's own profile JSON (`ImageProfile.json()`, versioned).
    case json

    public var contentType: String {
        switch self {
        case .estargz: "application/jsonl; charset=utf-8"
        case .nydusJSON, .json: "application/json"
        case .nydus, .overlaybd, .paths: "text/plain; charset=utf-8"
        }
    }

    /// Whether the format carries byte ranges (the others prefetch whole files).
    public var carriesRanges: Bool { self == .nydusJSON }
}

/// A prefetch list that breaks its format's rules (`PrefetchExport.check`).
public struct FormatViolation: Error, CustomStringConvertible, Sendable, Hashable {
    public var format: PrefetchFormat
    /// 1-based line (0 for the whole document).
    public var line: Int
    public var detail: String
    public init(format: PrefetchFormat, line: Int, detail: String) {
        self.format = format
        self.line = line
        self.detail = detail
    }
    public var description: String {
        line > 0 ? "\(format.rawValue) list, line \(line): \(detail)" : "\(format.rawValue) list: \(detail)"
    }
}

/// A planned file a format could not carry, and why (overlaybd's limits).
public struct ExportOmission: Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(ProfilePath.quoted(path)): \(reason)" }
}

/// A list as a tool takes it, with what the format had to leave out of the plan.
public struct ExportDocument: Hashable, Sendable {
    public var text: String
    public var omitted: [ExportOmission]
}

/// Renders plans into the formats, and checks text against each format's rules.
public enum PrefetchExport {
    /// overlaybd refuses a whole priority list larger than this (`MAX_FILE_SIZE` in its
    /// src/prefetch.cpp: "prefetch list file too large").
    public static let overlaybdMaxBytes = 65_536

    /// overlaybd keeps a line only when every path component is made of `A-Z a-z 0-9 _ - .`
    /// (the regular expression in its src/prefetch.cpp); it skips the others silently.
    public static func overlaybdAccepts(_ path: String) -> Bool {
        path.split(separator: "/").allSatisfy { component in
            !component.isEmpty && component.utf8.allSatisfy { b in
                (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D || b == 0x2E
            }
        }
    }

    /// The plan in `format` (`.json` renders the whole profile the plan was made from).
    public static func render(_ plan: PrefetchPlan, format: PrefetchFormat) -> String {
        rendering(plan, format: format).text
    }

    /// Renders and checks, and says which planned files the format could not carry.
    public static func export(_ plan: PrefetchPlan, format: PrefetchFormat) throws -> ExportDocument {
        let document = rendering(plan, format: format)
        try check(document.text, format: format)
        return document
    }

    static func rendering(_ plan: PrefetchPlan, format: PrefetchFormat) -> ExportDocument {
        if format == .overlaybd {
            // in plan order, as long as the list stays within overlaybd's size limit
            var text = "", omitted: [ExportOmission] = [], full = false
            for file in plan.files {
                if !overlaybdAccepts(file.path) {
                    omitted.append(.init(path: file.path, reason: "a path component outside A-Z a-z 0-9 _ - . (overlaybd skips such lines)"))
                } else if full || text.utf8.count + file.path.utf8.count + 1 > overlaybdMaxBytes {
                    full = true
                    omitted.append(.init(path: file.path, reason: "past overlaybd's limit of \(overlaybdMaxBytes) bytes per list"))
                } else {
                    text += file.path + "\n"
                }
            }
            return ExportDocument(text: text, omitted: omitted)
        }
        return ExportDocument(text: renderAll(plan, format: format), omitted: [])
    }

    private static func renderAll(_ plan: PrefetchPlan, format: PrefetchFormat) -> String {
        switch format {
        case .estargz:
            var out = ""
            for file in plan.files {
                out += "{\"path\":"
                JSON.escape(String(file.path.dropFirst()), into: &out)
                out += "}\n"
            }
            return out
        case .nydus:
            var kept: [String] = []
            for file in plan.files where !kept.contains(where: { ProfilePath.covers($0, file.path) }) { kept.append(file.path) }
            return kept.map { $0 + "\n" }.joined()
        case .paths, .overlaybd:
            return plan.files.map { $0.path + "\n" }.joined()
        case .nydusJSON:
            let files: [JSON] = plan.files.map { f in
                var fields: [(String, JSON)] = [("path", .string(f.path))]
                // No ranges recorded (opened, never read): the whole file, as nydus reads an absent list.
                if !f.ranges.isEmpty {
                    fields.append(("ranges", .array(f.ranges.map { .array([.uint($0.offset), .uint($0.length)]) })))
                }
                return .object(fields)
            }
            return JSON.object([("version", .string("v1")), ("files", .array(files))]).rendered() + "\n"
        case .json:
            return plan.profile.json().rendered() + "\n"
        }
    }

    /// Renders and checks: what `export` writes and the API serves. Throws if the rendering
    /// broke its format — a bug, reported instead of handing a tool a list it would misread.
    public static func document(_ plan: PrefetchPlan, format: PrefetchFormat) throws -> String {
        try export(plan, format: format).text
    }

    /// Checks `text` against `format`'s rules (docs/prefetch-formats.md), and podstart's own on top: every
    /// path is one `ProfilePath` accepts (absolute in the file, normalised, no control
    /// characters, no surrounding white space) and no path repeats.
    public static func check(_ text: String, format: PrefetchFormat) throws {
        func fail(_ line: Int, _ detail: String) -> FormatViolation { FormatViolation(format: format, line: line, detail: detail) }
        switch format {
        case .estargz:
            var seen = Set<String>()
            for (n, line) in try lines(text, format).enumerated() {
                let value: JSON
                do { value = try JSON.parse(line) } catch { throw fail(n + 1, "not JSON: \(error)") }
                guard case .object(let fields) = value else { throw fail(n + 1, "not a JSON object") }
                for (key, v) in fields {
                    switch key {
                    case "path": break
                    case "manifestDigest": guard v.stringValue != nil else { throw fail(n + 1, "\"manifestDigest\" is not a string") }
                    case "layerIndex": guard let i = v.int64Value, i >= 0 else { throw fail(n + 1, "\"layerIndex\" is not an index") }
                    default: throw fail(n + 1, "unknown key \(ProfilePath.quoted(key))")
                    }
                }
                guard let path = value["path"]?.stringValue else { throw fail(n + 1, "no string \"path\"") }
                guard !path.hasPrefix("/") else { throw fail(n + 1, "path \(ProfilePath.quoted(path)) has a leading '/'") }
                if let why = ProfilePath.rejection("/" + path) { throw fail(n + 1, "path \(ProfilePath.quoted(path)) is \(why)") }
                guard seen.insert(path).inserted else { throw fail(n + 1, "path \(ProfilePath.quoted(path)) repeats") }
            }
        case .nydus:
            var earlier: [String] = []
            for (n, line) in try lines(text, format).enumerated() {
                let path = line
                try checkAbsolute(path, line: n + 1, format)
                if let cover = earlier.first(where: { ProfilePath.covers($0, path) }) {
                    throw fail(n + 1, "\(ProfilePath.quoted(path)) is covered by the earlier \(ProfilePath.quoted(cover)); nydus-image drops it")
                }
                earlier.append(path)
            }
        case .overlaybd, .paths:
            // overlaybd tells its binary trace by a magic whose first byte is a space: a list of
            // absolute paths can never be taken for one.
            if format == .overlaybd, text.utf8.count > overlaybdMaxBytes {
                throw fail(0, "\(text.utf8.count) bytes: overlaybd refuses a list over \(overlaybdMaxBytes) bytes")
            }
            var seen = Set<String>()
            for (n, line) in try lines(text, format).enumerated() {
                let path = line
                try checkAbsolute(path, line: n + 1, format)
                guard seen.insert(path).inserted else { throw fail(n + 1, "\(ProfilePath.quoted(path)) repeats") }
                if format == .overlaybd, !overlaybdAccepts(path) {
                    throw fail(n + 1, "\(ProfilePath.quoted(path)) has a component outside A-Z a-z 0-9 _ - .; overlaybd skips it")
                }
            }
        case .nydusJSON:
            let value: JSON
            do { value = try JSON.parse(text) } catch { throw fail(0, "not JSON: \(error)") }
            guard case .object(let top) = value else { throw fail(0, "not a JSON object") }
            if let extra = top.first(where: { $0.0 != "version" && $0.0 != "files" }) {
                throw fail(0, "unknown key \(ProfilePath.quoted(extra.0))")
            }
            guard value["version"]?.stringValue == "v1" else { throw fail(0, "\"version\" is not \"v1\"") }
            guard let files = value["files"]?.arrayValue else { throw fail(0, "no \"files\" array") }
            var seen = Set<String>()
            for (n, file) in files.enumerated() {
                guard case .object(let fields) = file else { throw fail(0, "files[\(n)] is not an object") }
                if let extra = fields.first(where: { $0.0 != "path" && $0.0 != "ranges" }) {
                    throw fail(0, "files[\(n)] has an unknown key \(ProfilePath.quoted(extra.0))")
                }
                guard let path = file["path"]?.stringValue else { throw fail(0, "files[\(n)] has no string \"path\"") }
                if let why = ProfilePath.rejection(path) { throw fail(0, "files[\(n)].path \(ProfilePath.quoted(path)) is \(why)") }
                guard seen.insert(path).inserted else { throw fail(0, "files[\(n)].path \(ProfilePath.quoted(path)) repeats") }
                guard let ranges = file["ranges"], !ranges.isNull else { continue }
                guard let list = ranges.arrayValue else { throw fail(0, "files[\(n)].ranges is neither null nor an array") }
                var lastEnd: Int64 = -1
                for r in list {
                    guard let pair = r.arrayValue, pair.count == 2, let offset = pair[0].int64Value, let size = pair[1].int64Value,
                          offset >= 0, size > 0 else {
                        throw fail(0, "files[\(n)].ranges holds something other than [offset ≥ 0, size > 0]")
                    }
                    guard offset > lastEnd else { throw fail(0, "files[\(n)].ranges are not sorted and disjoint") }
                    lastEnd = offset + size
                }
            }
        case .json:
            do { _ = try ImageProfile.parse(text) } catch { throw fail(0, "\(error)") }
        }
    }

    /// The lines of a line format: each ends with "\n" (an empty list is empty), none is empty,
    /// none holds a carriage return.
    private static func lines(_ text: String, _ format: PrefetchFormat) throws -> [String] {
        // By scalars: as Characters, "\r\n" is one grapheme and would not split at "\n".
        let scalars = text.unicodeScalars
        guard !scalars.isEmpty else { return [] }
        guard scalars.last == "\n" else { throw FormatViolation(format: format, line: 0, detail: "the last line has no newline") }
        let lines = scalars.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
        for (n, line) in lines.enumerated() where line.isEmpty {
            throw FormatViolation(format: format, line: n + 1, detail: "empty line")
        }
        return lines
    }

    private static func checkAbsolute(_ path: String, line: Int, _ format: PrefetchFormat) throws {
        if let why = ProfilePath.rejection(path) {
            throw FormatViolation(format: format, line: line, detail: "\(ProfilePath.quoted(path)) is \(why)")
        }
    }
}
