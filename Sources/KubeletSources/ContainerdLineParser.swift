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

    /// nil: not a shape we track; .some(nil): a tracked shape that is damaged.
    private static func classify(_ m: [UInt8], line: UnsafeBufferPointer<UInt8>, after: Int) -> ContainerdCRIEvent.Kind?? {
        let s = String(decoding: m, as: UTF8.self)
        if s.hasPrefix("RunPodSandbox for ") {
            guard let meta = structFields(s, type: "&PodSandboxMetadata{"),
                  let name = meta["Name"], let ns = meta["Namespace"], let uid = meta["Uid"]
            else { return .some(nil) }
            let pod = ns + "/" + name
            if let r = s.range(of: "} returns sandbox id \"") {
                guard let id = quotedPrefix(s[r.upperBound...]) else { return .some(nil) }
                return .some(.sandboxReady(pod: pod, uid: uid, sandboxID: id))
            }
            if s.contains("} failed") || s.contains(" failed, error") { return .some(.sandboxFailed(pod: pod)) }
            guard s.hasSuffix("}") else { return nil }
            return .some(.sandboxRequested(pod: pod, uid: uid, attempt: Int(meta["Attempt"] ?? "") ?? 0))
        }
        if s.hasPrefix("PullImage \"") {
            let rest = s.dropFirst("PullImage \"".count)
            guard let image = quotedPrefix(rest) else { return .some(nil) }
            let tail = rest.dropFirst(image.utf8.count + 1)
            if tail.isEmpty { return .some(.pullStarted(image: image)) }
            if tail.hasPrefix(" returns image reference \"") {
                guard let ref = quotedPrefix(tail.dropFirst(" returns image reference \"".count)) else { return .some(nil) }
                return .some(.pullFinished(image: image, imageRef: ref))
            }
            if tail.hasPrefix(" failed") { return .some(.pullFailed(image: image)) }
            return nil // "… with snapshotter …" debug forms
        }
        if s.hasPrefix("Pulled image \"") {
            let rest = s.dropFirst("Pulled image \"".count)
            guard let image = quotedPrefix(rest) else { return .some(nil) }
            var size: Int64?
            if let r = s.range(of: ", size \""), let v = quotedPrefix(s[r.upperBound...]) {
                guard let n = Int64(v) else { return .some(nil) }
                size = n
            }
            var duration: Int64?
            if let r = s.range(of: "\" in ", options: .backwards) {
                guard let d = GoTime.parseDuration(String(s[r.upperBound...])) else { return .some(nil) }
                duration = d
            }
            return .some(.pulled(image: image, sizeBytes: size, durationNanoseconds: duration))
        }
        if s.hasPrefix("CreateContainer within sandbox \"") {
            let rest = s.dropFirst("CreateContainer within sandbox \"".count)
            guard let sandbox = quotedPrefix(rest), let meta = structFields(s, type: "&ContainerMetadata{"),
                  let name = meta["Name"]
            else { return .some(nil) }
            if let r = s.range(of: "} returns container id \"") {
                guard let id = quotedPrefix(s[r.upperBound...]) else { return .some(nil) }
                return .some(.containerCreated(sandboxID: sandbox, name: name, containerID: id))
            }
            guard s.hasSuffix("}"), s.contains(" for container &") else { return nil }
            return .some(.containerCreateRequested(sandboxID: sandbox, name: name))
        }
        if s.hasPrefix("StartContainer for \"") {
            let rest = s.dropFirst("StartContainer for \"".count)
            guard let id = quotedPrefix(rest) else { return .some(nil) }
            let tail = rest.dropFirst(id.utf8.count + 1)
            if tail.isEmpty { return .some(.containerStartRequested(containerID: id)) }
            if tail == " returns successfully" { return .some(.containerStarted(containerID: id)) }
            return nil
        }
        if s == "shim disconnected" {
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
            for key in ["ContainerID:", "container_id:\""] {
                if let r = s.range(of: key) {
                    let v = s[r.upperBound...].prefix { $0 != "," && $0 != "\"" && $0 != " " && $0 != "}" }
                    if !v.isEmpty { return .some(.containerExited(containerID: String(v))) }
                }
            }
            return nil
        }
        return nil
    }

    /// The text up to the next unescaped quote (ids and image refs contain no quotes).
    private static func quotedPrefix(_ s: Substring) -> String? {
        guard let q = s.firstIndex(of: "\""), q > s.startIndex else { return nil }
        return String(s[..<q])
    }

    /// `&Type{K:V,K:V,}` → [K: V] (gogo `%+v` rendering).
    private static func structFields(_ s: String, type: String) -> [String: String]? {
        guard let r = s.range(of: type), let close = s[r.upperBound...].firstIndex(of: "}") else { return nil }
        var out: [String: String] = [:]
        for part in s[r.upperBound..<close].split(separator: ",") {
            guard let colon = part.firstIndex(of: ":") else { return nil }
            out[String(part[..<colon])] = String(part[part.index(after: colon)...])
        }
        return out
    }
}
