import PodstartCore

/// Which containerd generation wrote a line, told by how it prints CRI metadata and exits.
public enum ContainerdLogGeneration: String, Sendable, Hashable, CaseIterable, Comparable {
    /// containerd 1.x: gogo `%+v` structs (`&PodSandboxMetadata{Name:x,Uid:…,}`), `TaskExit event`.
    case v1 = "1.x"
    /// containerd 2.x: protobuf text format (`name:"x"  uid:"…"`), `received container exit event`.
    case v2 = "2.x"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// A CRI step containerd logged at info level (docs/inputs.md#containerd-log-lines), with containerd's timestamp.
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
        /// (2.x: `… for container name:"…"`)
        case containerCreateRequested(sandboxID: String, name: String)
        /// `… returns container id "<id>"`
        case containerCreated(sandboxID: String, name: String, containerID: String)
        /// `StartContainer for "<id>"`
        case containerStartRequested(containerID: String)
        /// `StartContainer for "<id>" returns successfully`
        case containerStarted(containerID: String)
        /// The container's process ended: 1.x `TaskExit` event or `shim disconnected` id=<id> (one
        /// shim per task; for a sandbox the id is the sandbox's); 2.x `received container exit event
        /// container_id:"<id>" …` (2.x has one shim per pod: its `shim disconnected` names the sandbox).
        case containerExited(containerID: String)
    }

    /// containerd's own timestamp (`time="…"`, RFC 3339 with zone).
    public var time: KubeletTimestamp
    public var kind: Kind
    /// The containerd generation the line's shape belongs to; nil for lines both write alike
    /// (PullImage, StartContainer, `shim disconnected`).
    public var generation: ContainerdLogGeneration? = nil
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
        "StartContainer for \\\"", "shim disconnected", "TaskExit event", "received container exit event ",
    ].map { Array($0.utf8) }

    /// The cheap first-byte screen of `parse`, usable on a whole chunk.
    @inline(__always)
    static func mayBeCRIMessage(_ b: UnsafeBufferPointer<UInt8>, bodyAt i: Int) -> Bool {
        guard i < b.count else { return false }
        switch b[i] {
        case UInt8(ascii: "R"), UInt8(ascii: "P"), UInt8(ascii: "C"), UInt8(ascii: "S"), UInt8(ascii: "s"), UInt8(ascii: "T"),
             UInt8(ascii: "r"): return true
        default: return false
        }
    }

    public enum Outcome: Sendable, Equatable {
        case event(ContainerdCRIEvent)
        /// A line with one of the CRI messages whose shape was not understood (counted), and why.
        case malformed(reason: String)
    }

    /// `msgAt` is the index of `msg="` in `line` when the caller already knows it.
    public static func parse(_ line: UnsafeBufferPointer<UInt8>, msgAt known: Int? = nil) -> Outcome? {
        guard let msgAt = known ?? findBytes(line, msgNeedle.buffer) else { return nil }
        let bodyStart = msgAt + msgNeedle.count
        guard bodyStart < line.count else { return nil }
        // Cheap first-byte screen before anything else.
        guard mayBeCRIMessage(line, bodyAt: bodyStart) else { return nil }
        let first = line[bodyStart]
        var matched = false
        var truncated = false
        let rest = line.count - bodyStart
        for p in prefixes where p[0] == first {
            if rest >= p.count {
                if memcmpEqual(line, bodyStart, p) { matched = true; break }
            } else if memcmpEqual(line, bodyStart, p[..<rest]) {
                // The line ends inside a tracked message's first words: cut short (a full disk,
                // a rotated file, a crash), so one CRI step is lost. Counted, not ignored.
                truncated = true
            }
        }
        if truncated { return .malformed(reason: "line ends inside a CRI message") }
        guard matched else { return nil }
        // From here on the line is one we care about: failures are counted, not ignored.
        guard let t = timestamp(line, before: msgAt) else { return .malformed(reason: "no time=\"…\" before msg=") }
        guard let (msg, msgEnd) = try? KlogValues.unquote(line, at: bodyStart - 1) else {
            return .malformed(reason: "msg=\"…\" is not a terminated Go-quoted string")
        }
        switch classify(msg, line: line, after: msgEnd) {
        case .untracked: return nil
        case .event(let kind, let generation): return .event(ContainerdCRIEvent(time: t, kind: kind, generation: generation))
        case .damaged(let why):
            let text = String(decoding: msg.prefix(40), as: UTF8.self)
            return .malformed(reason: "\(why) (msg \"\(text)\(msg.count > 40 ? "…" : "")\")")
        }
    }

    public static func parse(_ line: String) -> Outcome? {
        var line = line
        return line.withUTF8 { parse($0) }
    }

    private static func memcmpEqual(_ line: UnsafeBufferPointer<UInt8>, _ at: Int, _ p: ArraySlice<UInt8>) -> Bool {
        for (i, b) in p.enumerated() where line[at + i] != b { return false }
        return true
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

    /// What a message with a tracked prefix turned out to be.
    enum Classified {
        /// A form podstart does not use (a failure, a debug variant, an exec process's exit).
        case untracked
        case event(ContainerdCRIEvent.Kind, ContainerdLogGeneration?)
        /// A tracked shape that is damaged: counted, with why.
        case damaged(String)
    }

    /// Works on bytes: this runs for every CRI line of a busy node.
    private static func classify(_ m: [UInt8], line: UnsafeBufferPointer<UInt8>, after: Int) -> Classified {
        m.withUnsafeBufferPointer { b in classifyBytes(ByteText(b), line: line, after: after) }
    }

    /// Pod or container metadata after `at`, in either generation's form, and where it ends.
    private static func metadata(_ s: ByteText, at: Int, goStruct marker: StaticString) -> (ByteText.Meta, end: Int, ContainerdLogGeneration)? {
        if s.hasPrefix(marker, at: at) {
            guard let (meta, end) = s.structFields(from: at + marker.utf8CodeUnitCount) else { return nil }
            return (meta, end, .v1)
        }
        guard let (meta, end) = s.protoTextFields(from: at) else { return nil }
        return (meta, end, .v2)
    }

    private static func classifyBytes(_ s: ByteText, line: UnsafeBufferPointer<UInt8>, after: Int) -> Classified {
        if s.hasPrefix("RunPodSandbox for ") {
            guard let (meta, end, gen) = metadata(s, at: "RunPodSandbox for ".utf8.count, goStruct: "&PodSandboxMetadata{") else {
                return .damaged("RunPodSandbox metadata does not parse")
            }
            // 1.x names every field; 2.x leaves out empty ones (a pod always has a name and a uid).
            guard let name = meta.name, let uid = meta.uid, gen == .v2 || meta.namespace != nil,
                  !name.isEmpty, !uid.isEmpty
            else { return .damaged("RunPodSandbox metadata without name, uid or namespace") }
            let pod = (meta.namespace ?? "") + "/" + name
            if end == s.count { return .event(.sandboxRequested(pod: pod, uid: uid, attempt: meta.attempt ?? 0), gen) }
            if s.hasPrefix(" returns sandbox id \"", at: end) {
                guard let (id, idEnd) = s.quotedWithEnd(from: end + " returns sandbox id \"".utf8.count), idEnd == s.count else {
                    return .damaged("RunPodSandbox returns an unterminated sandbox id")
                }
                return .event(.sandboxReady(pod: pod, uid: uid, sandboxID: id), gen)
            }
            if s.hasPrefix(" failed", at: end) { return .event(.sandboxFailed(pod: pod), gen) }
            return .damaged("RunPodSandbox metadata followed by unknown text")
        }
        if s.hasPrefix("PullImage \"") {
            let from = "PullImage \"".utf8.count
            guard let (image, end) = s.quotedWithEnd(from: from) else { return .damaged("PullImage without a quoted image") }
            if end == s.count { return .event(.pullStarted(image: image), nil) }
            if s.hasPrefix(" returns image reference \"", at: end) {
                guard let (ref, refEnd) = s.quotedWithEnd(from: end + " returns image reference \"".utf8.count), refEnd == s.count else {
                    return .damaged("PullImage returns an unterminated image reference")
                }
                return .event(.pullFinished(image: image, imageRef: ref), nil)
            }
            if s.hasPrefix(" failed", at: end) { return .event(.pullFailed(image: image), nil) }
            if s.hasPrefix(" with ", at: end) { return .untracked } // "… with snapshotter …" debug forms
            return .damaged("PullImage followed by unknown text")
        }
        if s.hasPrefix("Pulled image \"") {
            guard let image = s.quoted(from: "Pulled image \"".utf8.count) else { return .damaged("Pulled image without a quoted image") }
            var size: Int64?
            if let r = s.find(", size \"") {
                guard let v = s.quoted(from: r), let n = Int64(v) else { return .damaged("Pulled image with a bad size") }
                size = n
            }
            var duration: Int64?
            if let r = s.findLast("\" in ") {
                guard let d = GoTime.parseDuration(UnsafeBufferPointer(rebasing: s.b[r...])) else {
                    return .damaged("Pulled image with a bad duration")
                }
                duration = d
            }
            return .event(.pulled(image: image, sizeBytes: size, durationNanoseconds: duration), nil)
        }
        if s.hasPrefix("CreateContainer within sandbox \"") {
            guard let (sandbox, end) = s.quotedWithEnd(from: "CreateContainer within sandbox \"".utf8.count) else {
                return .damaged("CreateContainer without a quoted sandbox id")
            }
            let request = s.hasPrefix(" for container ", at: end)
            guard request || s.hasPrefix(" for ", at: end) else { return .damaged("CreateContainer without ' for '") }
            let metaAt = end + (request ? " for container ".utf8.count : " for ".utf8.count)
            guard let (meta, metaEnd, gen) = metadata(s, at: metaAt, goStruct: "&ContainerMetadata{"), let name = meta.name, !name.isEmpty else {
                return .damaged("CreateContainer metadata does not parse or has no name")
            }
            if request {
                guard metaEnd == s.count else { return .damaged("CreateContainer metadata followed by unknown text") }
                return .event(.containerCreateRequested(sandboxID: sandbox, name: name), gen)
            }
            if s.hasPrefix(" returns container id \"", at: metaEnd) {
                guard let (id, idEnd) = s.quotedWithEnd(from: metaEnd + " returns container id \"".utf8.count), idEnd == s.count else {
                    return .damaged("CreateContainer returns an unterminated container id")
                }
                return .event(.containerCreated(sandboxID: sandbox, name: name, containerID: id), gen)
            }
            if s.hasPrefix(" failed", at: metaEnd) { return .untracked }
            return .damaged("CreateContainer metadata followed by unknown text")
        }
        if s.hasPrefix("StartContainer for \"") {
            guard let (id, end) = s.quotedWithEnd(from: "StartContainer for \"".utf8.count) else {
                return .damaged("StartContainer without a quoted container id")
            }
            if end == s.count { return .event(.containerStartRequested(containerID: id), nil) }
            if s.hasPrefix(" returns successfully", at: end), end + " returns successfully".utf8.count == s.count {
                return .event(.containerStarted(containerID: id), nil)
            }
            if s.hasPrefix(" failed", at: end) { return .untracked }
            return .damaged("StartContainer followed by unknown text")
        }
        if s.hasPrefix("shim disconnected") {
            guard s.count == "shim disconnected".utf8.count else { return .damaged("shim disconnected followed by text") }
            // The id is a logrus field after the message: ` id=<hex>`.
            let fields = UnsafeBufferPointer(rebasing: line[after...])
            guard let at = findBytes(fields, idFieldNeedle.buffer) else { return .damaged("shim disconnected without id=") }
            var i = at + 4
            let start = i
            while i < fields.count, fields[i] != UInt8(ascii: " ") { i += 1 }
            guard i > start else { return .damaged("shim disconnected with an empty id=") }
            return .event(.containerExited(containerID: String(decoding: UnsafeBufferPointer(rebasing: fields[start..<i]), as: UTF8.self)), nil)
        }
        if s.hasPrefix("TaskExit event") {
            for key: StaticString in ["ContainerID:", "container_id:\""] {
                if var i = s.find(key) {
                    let start = i
                    while i < s.count, s.b[i] != UInt8(ascii: ","), s.b[i] != UInt8(ascii: "\""),
                          s.b[i] != UInt8(ascii: " "), s.b[i] != UInt8(ascii: "}") { i += 1 }
                    if i > start { return .event(.containerExited(containerID: s.string(start, i)), .v1) }
                }
            }
            return .damaged("TaskExit event without a container id")
        }
        if s.hasPrefix("received container exit event ") {
            // 2.x: `received container exit event container_id:"…"  id:"…"  pid:N  exit_status:N
            // exited_at:{…}`; id ≠ container_id is an exec'd process (a probe), not the container.
            guard let (fields, _) = s.protoTextFields(from: "received container exit event ".utf8.count),
                  let container = fields.containerID, !container.isEmpty
            else { return .damaged("container exit event without a container_id") }
            if let id = fields.id, id != container { return .untracked }
            return .event(.containerExited(containerID: container), .v2)
        }
        return .untracked
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
        var containerID: String?
        var id: String?
    }

    /// `&Type{K:V,K:V,}` (gogo `%+v`, containerd 1.x) from just after `{`: the fields podstart
    /// uses and the index just past the closing brace.
    func structFields(from start: Int) -> (Meta, Int)? {
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
            else if isKey("Attempt") {
                guard let a = Int(string(vStart, i)) else { return nil }
                meta.attempt = a
            }
            if b[i] == UInt8(ascii: ",") { i += 1 }
        }
        guard i < b.count else { return nil }
        return (meta, i + 1)
    }

    /// Protobuf text format (containerd 2.x: `name:"x"  uid:"…"  attempt:1`) from `start`: the
    /// fields podstart uses and the index just past the last value. Fields are separated by one or
    /// two spaces (protobuf-go picks per build), strings are quoted and escaped, zero values are
    /// left out; the list ends where the next word is not `key:`. Nested messages are skipped.
    func protoTextFields(from start: Int) -> (Meta, Int)? {
        func isKeyByte(_ c: UInt8) -> Bool {
            (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == UInt8(ascii: "_")
        }
        var meta = Meta()
        var i = start
        var end = start
        var count = 0
        while true {
            // A field starts here if a key is followed by ':'.
            var k = i
            while k < b.count, isKeyByte(b[k]) { k += 1 }
            guard k > i, k < b.count, b[k] == UInt8(ascii: ":") else { break }
            let key = string(i, k)
            var v = k + 1
            let value: String
            if v < b.count, b[v] == UInt8(ascii: "\"") {
                guard let (bytes, after) = try? KlogValues.unquote(b, at: v) else { return nil }
                value = String(decoding: bytes, as: UTF8.self)
                v = after
            } else if v < b.count, b[v] == UInt8(ascii: "{") {
                var depth = 0
                repeat {
                    if b[v] == UInt8(ascii: "\"") {
                        guard let (_, after) = try? KlogValues.unquote(b, at: v) else { return nil }
                        v = after
                        continue
                    }
                    if b[v] == UInt8(ascii: "{") { depth += 1 }
                    if b[v] == UInt8(ascii: "}") { depth -= 1 }
                    v += 1
                } while v < b.count && depth > 0
                guard depth == 0 else { return nil }
                value = ""
            } else {
                // A number, an enum name or a bool: nothing else is written unquoted.
                let vs = v
                while v < b.count, isKeyByte(b[v]) || b[v] == UInt8(ascii: "-") || b[v] == UInt8(ascii: ".") || b[v] == UInt8(ascii: "+") { v += 1 }
                guard v > vs, v == b.count || b[v] == UInt8(ascii: " ") else { return nil }
                guard !["name", "namespace", "uid", "container_id", "id"].contains(key) else { return nil } // strings are quoted
                value = string(vs, v)
            }
            switch key {
            case "name": meta.name = value
            case "namespace": meta.namespace = value
            case "uid": meta.uid = value
            case "attempt":
                guard let a = Int(value) else { return nil }
                meta.attempt = a
            case "container_id": meta.containerID = value
            case "id": meta.id = value
            default: break
            }
            count += 1
            end = v
            // One or two spaces, then perhaps another field.
            var next = v
            while next < b.count, next < v + 2, b[next] == UInt8(ascii: " ") { next += 1 }
            guard next > v, next < b.count else { break }
            i = next
        }
        guard count > 0 else { return nil }
        return (meta, end)
    }
}
