import PodstartCore

/// A CRI step containerd logged at info level (FORMATS.md §5.2), with containerd's timestamp.
public struct ContainerdCRIEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// `RunPodSandbox for &PodSandboxMetadata{…}`
        case sandboxRequested(pod: String, uid: String, attempt: Int)
        /// `… returns sandbox id "…"`
        case sandboxReady(pod: String, uid: String, sandboxID: String)
        /// `RunPodSandbox for … failed`
        case sandboxFailed(pod: String)
        /// `PullImage "<image>"`
        case pullStarted(image: String)
        /// `PullImage "<image>" returns image reference "<ref>"`
        case pullFinished(image: String, imageRef: String)
        /// `PullImage "<image>" failed`
        case pullFailed(image: String)
        /// `Pulled image "<image>" with image id …, size "<bytes>" in <duration>`
        case pulled(image: String, sizeBytes: Int64?, durationNanoseconds: Int64?)
        /// `CreateContainer within sandbox "<id>" for container &ContainerMetadata{Name:…}`
        case containerCreateRequested(sandboxID: String, name: String)
        /// `… returns container id "<id>"`
        case containerCreated(sandboxID: String, name: String, containerID: String)
        /// `StartContainer for "<id>"`
        case containerStartRequested(containerID: String)
        /// `StartContainer for "<id>" returns successfully`
        case containerStarted(containerID: String)
        /// `shim disconnected` id=<id>, or a `TaskExit` event: the container's process ended.
        case containerExited(containerID: String)
    }

    /// containerd's own timestamp (`time="…"`, RFC 3339 with zone).
    public var time: KubeletTimestamp
    public var kind: Kind
}

/// Parses containerd's logrus lines (`time="…" level=… msg="…" k=v…`), with or without a
/// journald prefix, into the CRI steps that matter for a pod start; everything else is nil.
public enum ContainerdLineParser {
    static let msgNeedle = Needle("msg=\"")
    static let timeNeedle = Needle("time=\"")
    static let idFieldNeedle = Needle(" id=")

    /// Bytes that must follow `msg="` for the line to be worth decoding.
    private static let prefixes: [[UInt8]] = [
        "RunPodSandbox for ", "PullImage \\\"", "Pulled image \\\"", "CreateContainer within sandbox \\\"",
        "StartContainer for \\\"", "shim disconnected", "TaskExit event",
    ].map { Array($0.utf8) }

    /// The cheap first-byte screen of `parse`, usable on a whole chunk.
    @inline(__always)
    static func mayBeCRIMessage(_ b: UnsafeBufferPointer<UInt8>, bodyAt i: Int) -> Bool {
        guard i < b.count else { return false }
        switch b[i] {
        case UInt8(ascii: "R"), UInt8(ascii: "P"), UInt8(ascii: "C"), UInt8(ascii: "S"), UInt8(ascii: "s"), UInt8(ascii: "T"): return true
        default: return false
        }
    }

    public enum Outcome: Sendable, Equatable {
        case event(ContainerdCRIEvent)
        /// A line with one of the CRI messages whose shape was not understood (counted).
        case malformed
    }

    /// `msgAt` is the index of `msg="` in `line` when the caller already knows it.
    public static func parse(_ line: UnsafeBufferPointer<UInt8>, msgAt known: Int? = nil) -> Outcome? {
        guard let msgAt = known ?? findBytes(line, msgNeedle.buffer) else { return nil }
        let bodyStart = msgAt + msgNeedle.count
        guard bodyStart < line.count else { return nil }
        // Cheap first-byte screen before anything else.
        let first = line[bodyStart]
        guard first == UInt8(ascii: "R") || first == UInt8(ascii: "P") || first == UInt8(ascii: "C")
            || first == UInt8(ascii: "S") || first == UInt8(ascii: "s") || first == UInt8(ascii: "T") else { return nil }
        var matched = false
        for p in prefixes where p[0] == first && line.count - bodyStart >= p.count {
            if memcmpEqual(line, bodyStart, p) { matched = true; break }
        }
        guard matched else { return nil }
        // From here on the line is one we care about: failures are counted, not ignored.
        guard let t = timestamp(line, before: msgAt) else { return .malformed }
        guard let (msg, msgEnd) = try? KlogValues.unquote(line, at: bodyStart - 1) else { return .malformed }
        guard let kind = classify(msg, line: line, after: msgEnd) else {
            // Known prefix, unknown continuation (e.g. a different debug form): not malformed
            // unless it is one of the shapes we rely on.
            return nil
        }
        switch kind {
        case .some(let k): return .event(ContainerdCRIEvent(time: t, kind: k))
        case .none: return .malformed
        }
    }

    public static func parse(_ line: String) -> Outcome? {
        var line = line
        return line.withUTF8 { parse($0) }
    }

    private static func memcmpEqual(_ line: UnsafeBufferPointer<UInt8>, _ at: Int, _ p: [UInt8]) -> Bool {
        for i in 0..<p.count where line[at + i] != p[i] { return false }
        return true
    }

    private static func timestamp(_ line: UnsafeBufferPointer<UInt8>, before: Int) -> KubeletTimestamp? {
        guard let at = findBytes(UnsafeBufferPointer(rebasing: line[..<before]), timeNeedle.buffer) else { return nil }
        let start = at + timeNeedle.count
        guard let end = findByte(line, UInt8(ascii: "\""), from: start), end < before else { return nil }
        return GoTime.parseRFC3339(UnsafeBufferPointer(rebasing: line[start..<end]))
    }

    /// nil: not a shape we track; .some(nil): a tracked shape that is damaged. Works on bytes:
    /// this runs for every CRI line of a busy node.
    private static func classify(_ m: [UInt8], line: UnsafeBufferPointer<UInt8>, after: Int) -> ContainerdCRIEvent.Kind?? {
        m.withUnsafeBufferPointer { b in classifyBytes(ByteText(b), line: line, after: after) }
    }

    private static func classifyBytes(_ s: ByteText, line: UnsafeBufferPointer<UInt8>, after: Int) -> ContainerdCRIEvent.Kind?? {
        if s.hasPrefix("RunPodSandbox for ") {
            guard let meta = s.structFields(after: "&PodSandboxMetadata{"),
                  let name = meta.name, let ns = meta.namespace, let uid = meta.uid
            else { return .some(nil) }
            let pod = ns + "/" + name
            if let r = s.find("} returns sandbox id \"") {
                guard let id = s.quoted(from: r) else { return .some(nil) }
                return .some(.sandboxReady(pod: pod, uid: uid, sandboxID: id))
            }
            if s.find("} failed") != nil || s.find(" failed, error") != nil { return .some(.sandboxFailed(pod: pod)) }
            guard s.hasSuffix("}") else { return nil }
            return .some(.sandboxRequested(pod: pod, uid: uid, attempt: meta.attempt ?? 0))
        }
        if s.hasPrefix("PullImage \"") {
            let from = "PullImage \"".utf8.count
            guard let (image, end) = s.quotedWithEnd(from: from) else { return .some(nil) }
            if end == s.count { return .some(.pullStarted(image: image)) }
            if s.hasPrefix(" returns image reference \"", at: end) {
                guard let ref = s.quoted(from: end + " returns image reference \"".utf8.count) else { return .some(nil) }
                return .some(.pullFinished(image: image, imageRef: ref))
            }
            if s.hasPrefix(" failed", at: end) { return .some(.pullFailed(image: image)) }
            return nil // "… with snapshotter …" debug forms
        }
        if s.hasPrefix("Pulled image \"") {
            guard let image = s.quoted(from: "Pulled image \"".utf8.count) else { return .some(nil) }
            var size: Int64?
            if let r = s.find(", size \"") {
                guard let v = s.quoted(from: r), let n = Int64(v) else { return .some(nil) }
                size = n
            }
            var duration: Int64?
            if let r = s.findLast("\" in ") {
                guard let d = GoTime.parseDuration(UnsafeBufferPointer(rebasing: s.b[r...])) else { return .some(nil) }
                duration = d
            }
            return .some(.pulled(image: image, sizeBytes: size, durationNanoseconds: duration))
        }
        if s.hasPrefix("CreateContainer within sandbox \"") {
            guard let sandbox = s.quoted(from: "CreateContainer within sandbox \"".utf8.count),
                  let meta = s.structFields(after: "&ContainerMetadata{"), let name = meta.name
            else { return .some(nil) }
            if let r = s.find("} returns container id \"") {
                guard let id = s.quoted(from: r) else { return .some(nil) }
                return .some(.containerCreated(sandboxID: sandbox, name: name, containerID: id))
            }
            guard s.hasSuffix("}"), s.find(" for container &") != nil else { return nil }
            return .some(.containerCreateRequested(sandboxID: sandbox, name: name))
        }
        if s.hasPrefix("StartContainer for \"") {
            guard let (id, end) = s.quotedWithEnd(from: "StartContainer for \"".utf8.count) else { return .some(nil) }
            if end == s.count { return .some(.containerStartRequested(containerID: id)) }
            if s.hasPrefix(" returns successfully", at: end), end + " returns successfully".utf8.count == s.count {
                return .some(.containerStarted(containerID: id))
            }
            return nil
        }
        if s.count == "shim disconnected".utf8.count, s.hasPrefix("shim disconnected") {
            // The id is a logrus field after the message: ` id=<hex>`.
            let fields = UnsafeBufferPointer(rebasing: line[after...])
            guard let at = findBytes(fields, idFieldNeedle.buffer) else { return .some(nil) }
            var i = at + 4
            let start = i
            while i < fields.count, fields[i] != UInt8(ascii: " ") { i += 1 }
            guard i > start else { return .some(nil) }
            return .some(.containerExited(containerID: String(decoding: UnsafeBufferPointer(rebasing: fields[start..<i]), as: UTF8.self)))
        }
        if s.hasPrefix("TaskExit event") {
            for key: StaticString in ["ContainerID:", "container_id:\""] {
                if var i = s.find(key) {
                    let start = i
                    while i < s.count, s.b[i] != UInt8(ascii: ","), s.b[i] != UInt8(ascii: "\""),
                          s.b[i] != UInt8(ascii: " "), s.b[i] != UInt8(ascii: "}") { i += 1 }
                    if i > start { return .some(.containerExited(containerID: s.string(start, i))) }
                }
            }
            return nil
        }
        return nil
    }

}

/// Byte-level string helpers for the containerd message text.
struct ByteText {
    let b: UnsafeBufferPointer<UInt8>
    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }
    var count: Int { b.count }

    func hasPrefix(_ p: StaticString, at: Int = 0) -> Bool {
        let n = p.utf8CodeUnitCount
        guard at + n <= b.count else { return false }
        let q = p.utf8Start
        for i in 0..<n where b[at + i] != q[i] { return false }
        return true
    }

    func hasSuffix(_ p: StaticString) -> Bool {
        let n = p.utf8CodeUnitCount
        return n <= b.count && hasPrefix(p, at: b.count - n)
    }

    /// Index just past the first occurrence of `p`.
    func find(_ p: StaticString) -> Int? {
        let n = p.utf8CodeUnitCount
        guard n > 0, b.count >= n else { return nil }
        let first = p.utf8Start[0]
        var i = 0
        while i + n <= b.count {
            if b[i] == first, hasPrefix(p, at: i) { return i + n }
            i += 1
        }
        return nil
    }

    /// Index just past the last occurrence of `p`.
    func findLast(_ p: StaticString) -> Int? {
        let n = p.utf8CodeUnitCount
        var i = b.count - n
        while i >= 0 {
            if hasPrefix(p, at: i) { return i + n }
            i -= 1
        }
        return nil
    }

    func string(_ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[from..<to]), as: UTF8.self)
    }

    /// The non-empty text from `from` up to the next quote.
    func quoted(from: Int) -> String? { quotedWithEnd(from: from)?.0 }

    /// The text up to the next quote and the index just past that quote.
    func quotedWithEnd(from: Int) -> (String, Int)? {
        var i = from
        while i < b.count, b[i] != UInt8(ascii: "\"") { i += 1 }
        guard i < b.count, i > from else { return nil }
        return (string(from, i), i + 1)
    }

    struct Meta {
        var name: String?
        var namespace: String?
        var uid: String?
        var attempt: Int?
    }

    /// `&Type{K:V,K:V,}` (gogo `%+v`) → the fields podstart uses.
    func structFields(after marker: StaticString) -> Meta? {
        guard let start = find(marker) else { return nil }
        var i = start
        var meta = Meta()
        while i < b.count, b[i] != UInt8(ascii: "}") {
            let keyStart = i
            while i < b.count, b[i] != UInt8(ascii: ":"), b[i] != UInt8(ascii: "}"), b[i] != UInt8(ascii: ",") { i += 1 }
            guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            let keyEnd = i
            i += 1
            let vStart = i
            while i < b.count, b[i] != UInt8(ascii: ","), b[i] != UInt8(ascii: "}") { i += 1 }
            guard i < b.count else { return nil }
            let key = UnsafeBufferPointer(rebasing: b[keyStart..<keyEnd])
            func isKey(_ k: StaticString) -> Bool {
                k.utf8CodeUnitCount == key.count && ByteText(key).hasPrefix(k)
            }
            if isKey("Name") { meta.name = string(vStart, i) }
            else if isKey("Namespace") { meta.namespace = string(vStart, i) }
            else if isKey("Uid") { meta.uid = string(vStart, i) }
            else if isKey("Attempt") { meta.attempt = Int(string(vStart, i)) }
            if b[i] == UInt8(ascii: ",") { i += 1 }
        }
        guard i < b.count else { return nil }
        return meta
    }
}
