import PodstartCore

// The profile's own JSON (`export --format json`, the state a registry artifact carries). A
// contract like the trace JSON: fields are only ever added; `schemaVersion` changes if one has
// to change meaning. Derived fields (`starts` per file, `share`, `medianFirstAccessMs`, `bytes`,
// `readBytes`, `readShare`) are written for readers and recomputed, not trusted, on reading.
extension ImageProfile {
    public func json() -> JSON {
        func opt(_ v: UInt64?) -> JSON { v.map { .uint($0) } ?? .null }
        let total = max(starts, 1)
        return .object([
            ("schemaVersion", .string(Self.schemaVersion)),
            ("imageDigest", .string(imageDigest)),
            ("references", .array(references.map { .string($0) })),
            ("starts", .int(Int64(starts))),
            ("startKeys", .array(startKeys.map { .string($0) })),
            ("imageBytes", opt(imageBytes)),
            ("readBytes", .uint(readBytes)),
            ("readShare", readShare.map { .double($0) } ?? .null),
            ("files", .array(files.map { f in
                .object([
                    ("path", .string(f.path)),
                    ("layerDigest", f.layerDigest.map { .string($0) } ?? .null),
                    ("starts", .int(Int64(f.starts))),
                    ("share", .double(Double(f.starts) / Double(total))),
                    ("medianFirstAccessMs", .double(f.medianFirstAccessMs)),
                    ("opens", .uint(f.opens)),
                    ("bytes", .uint(f.bytes)),
                    ("sizeBytes", opt(f.sizeBytes)),
                    ("ranges", .array(f.ranges.map { .array([.uint($0.offset), .uint($0.length)]) })),
                    // [start index into startKeys, first access ms, opens] per start that read it
                    ("samples", .array(f.samples.map { .array([.int(Int64($0.start)), .double($0.firstAccessMs), .uint($0.opens)]) })),
                ])
            })),
        ])
    }

    /// Why a profile JSON was refused.
    public struct DecodeError: Error, CustomStringConvertible, Sendable {
        public var detail: String
        public var description: String { "not a podstart profile: \(detail)" }
    }

    /// Reads a profile back from `json()`. Refuses other schema versions, paths no export could
    /// carry, sample indices outside `startKeys`, and a `starts` that disagrees with `startKeys`.
    public init(json: JSON) throws {
        func fail(_ detail: String) -> DecodeError { DecodeError(detail: detail) }
        guard case .object = json else { throw fail("not a JSON object") }
        guard let version = json["schemaVersion"]?.stringValue else { throw fail("no \"schemaVersion\"") }
        guard version == Self.schemaVersion else {
            throw fail("schemaVersion \(ProfilePath.quoted(version)) is not \"\(Self.schemaVersion)\"")
        }
        guard let digest = json["imageDigest"]?.stringValue, ImageDigest.isValid(digest) else {
            throw fail("\"imageDigest\" is not sha256:<64 hex digits>")
        }
        self.init(imageDigest: digest)
        references = try (json["references"]?.arrayValue ?? []).map {
            guard let s = $0.stringValue else { throw fail("\"references\" holds a non-string") }
            return s
        }
        references = Array(Set(references)).sorted()
        guard let keys = json["startKeys"]?.arrayValue else { throw fail("no \"startKeys\" array") }
        let keyStrings = try keys.map {
            guard let s = $0.stringValue else { throw fail("\"startKeys\" holds a non-string") }
            return s
        }
        guard Set(keyStrings).count == keyStrings.count else { throw fail("\"startKeys\" repeats a start") }
        if let starts = json["starts"]?.int64Value, starts != Int64(keyStrings.count) {
            throw fail("\"starts\" is \(starts) but \"startKeys\" holds \(keyStrings.count)")
        }
        if let size = json["imageBytes"], !size.isNull {
            guard let v = size.int64Value, v >= 0, v <= PodStartTrace.maxByteCount else { throw fail("\"imageBytes\" is not a byte count from 0 to 2^53") }
            imageBytes = UInt64(v)
        }
        // Keys are stored sorted; sort them here too and carry the sample indices along.
        let order = keyStrings.enumerated().sorted { $0.element < $1.element }
        var newIndex = [Int](repeating: 0, count: keyStrings.count)
        for (position, entry) in order.enumerated() { newIndex[entry.offset] = position }
        startKeys = order.map(\.element)
        guard let fileArray = json["files"]?.arrayValue else { throw fail("no \"files\" array") }
        var seen = Set<String>()
        var decoded: [FileProfile] = []
        for (n, f) in fileArray.enumerated() {
            guard let path = f["path"]?.stringValue else { throw fail("files[\(n)] has no \"path\"") }
            if let why = ProfilePath.rejection(path) { throw fail("files[\(n)].path \(ProfilePath.quoted(path)) is \(why)") }
            guard seen.insert(path).inserted else { throw fail("files[\(n)].path \(ProfilePath.quoted(path)) repeats") }
            var size: UInt64?
            if let s = f["sizeBytes"], !s.isNull {
                guard let v = s.int64Value, v >= 0, v <= PodStartTrace.maxByteCount else { throw fail("files[\(n)].sizeBytes is not a byte count from 0 to 2^53") }
                size = UInt64(v)
            }
            let ranges = try (f["ranges"]?.arrayValue ?? []).map { r -> ByteRange in
                guard let pair = r.arrayValue, pair.count == 2, let o = pair[0].int64Value, let l = pair[1].int64Value,
                      o >= 0, l > 0, o <= PodStartTrace.maxByteCount, l <= PodStartTrace.maxByteCount - o
                else { throw fail("files[\(n)].ranges holds something other than [offset, length > 0] ending by 2^53") }
                return ByteRange(offset: UInt64(o), length: UInt64(l))
            }
            var starts = Set<Int>()
            let samples = try (f["samples"]?.arrayValue ?? []).map { s -> FileProfile.Sample in
                guard let t = s.arrayValue, t.count == 3, let i = t[0].int64Value, let ms = t[1].doubleValue,
                      ms.magnitude <= PodStartTrace.maxAccessMilliseconds,
                      let opens = t[2].int64Value, opens >= 0, opens <= PodStartTrace.maxByteCount else {
                    throw fail("files[\(n)].samples holds something other than [start, firstAccessMs, opens]")
                }
                guard i >= 0, i < Int64(keyStrings.count), starts.insert(Int(i)).inserted else {
                    throw fail("files[\(n)].samples names start \(i), which \"startKeys\" lacks or another sample has")
                }
                return FileProfile.Sample(start: newIndex[Int(i)], firstAccessMs: ms, opens: UInt64(opens))
            }
            guard !samples.isEmpty else { throw fail("files[\(n)] has no samples") }
            decoded.append(FileProfile(path: path, layerDigest: f["layerDigest"]?.stringValue, sizeBytes: size,
                                       samples: samples.sorted { $0.start < $1.start }, ranges: ByteRange.union(ranges)))
        }
        var profile = ImageProfile(imageDigest: digest)
        profile.references = references
        profile.imageBytes = imageBytes
        profile.startKeys = startKeys
        profile.files = decoded
        profile.sortFiles()
        self = profile
    }

    /// Parses and decodes a profile from its JSON text.
    public static func parse(_ text: String) throws -> ImageProfile {
        let value: JSON
        do { value = try JSON.parse(text) } catch { throw DecodeError(detail: "\(error)") }
        return try ImageProfile(json: value)
    }
}
