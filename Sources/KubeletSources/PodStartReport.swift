import Foundation
import PodstartCore

/// Something the kubelet's own numbers got wrong for a pod, as detected by `podstart analyze`.
public enum PodStartQuirk: String, Sendable, Hashable, CaseIterable {
    /// V1–V3: a pull started and none finished (failed pull, pod later started from a cached
    /// image): the kubelet subtracted Go's minimum Duration and logged ≈ −9.22e9 s.
    case negativeSloAfterFailedPull
    /// V1–V3: the subtracted window first-pull-start → last-pull-end covers time that was not
    /// pulling (parallel pulls, init containers or container starts between pulls).
    case pullWindowCoversNonPullTime
    /// The kubelet's SLO value is negative for another reason (clock skew between the API server
    /// and the node, or overlapping pulls).
    case negativeSlo
    /// V4: the pod has a non-ephemeral volume, so `kubelet_pod_start_sli_duration_seconds` does
    /// not observe it.
    case statefulPodNotInSli
    /// V4: a pull started without a finish; the pull total may miss it.
    case unfinishedPullSession
    /// `watchObservedRunningTime` is up to 1 ms before `observedRunningTime`: the kubelet read the
    /// clock for each separately (seen on v1.28). Values are kept; `runningToWatchSeconds` is
    /// then slightly negative.
    case watchBeforeRunningClockReads
}

/// One image pull as containerd logged it, attributed to a pod.
public struct ContainerdPull: Sendable, Hashable {
    public var image: String
    public var begin: KubeletTimestamp
    public var end: KubeletTimestamp
    public var failed: Bool
    public var sizeBytes: Int64?
    /// Its timestamps contradict containerd's stated duration: not used for any figure.
    public var suspect = false
}

/// Everything `podstart analyze` reports for one pod start.
public struct PodStartReport: Sendable, Hashable {
    public var observation: KubeletPodStartupObservation
    /// Pulls containerd logged for this pod's sandbox, in order.
    public var pulls: [ContainerdPull] = []
    /// Union of `pulls` (overlaps counted once), nanoseconds; nil without containerd lines.
    public var containerdPullNanoseconds: Int64?
    /// RunPodSandbox request → sandbox id returned, nanoseconds.
    public var sandboxNanoseconds: Int64?
    /// The kubelet's first sync of the pod ("No sandbox … Need to start a new one") → containerd's
    /// RunPodSandbox request: admission and volume mounts, nanoseconds.
    public var kubeletSyncToSandboxNanoseconds: Int64?
    /// Init container run time measured from containerd (start returned → exit), nanoseconds.
    public var containerdInitNanoseconds: Int64?
    public var quirks: [PodStartQuirk] = []
    /// The SLO with the quirk undone, nanoseconds; nil when the kubelet's value stands.
    public var correctedSloNanoseconds: Int64?

    public init(observation: KubeletPodStartupObservation) {
        self.observation = observation
    }

    public var pod: String { observation.pod }

    /// Pull time as the kubelet saw it: V1–V3 the window first start → last finish (nil when no
    /// pull, or when the window is meaningless because no pull finished); V4 the pull total.
    public var pullNanoseconds: Int64? {
        let o = observation
        if o.variant == .v4 { return o.totalImagesPullingNanoseconds }
        guard let f = o.firstStartedPulling, let l = o.lastFinishedPulling else { return nil }
        return l.goSub(f)
    }

    /// V4's init total, else what containerd showed.
    public var initNanoseconds: Int64? {
        observation.totalInitContainerRuntimeNanoseconds ?? containerdInitNanoseconds
    }

    public var runningToWatchNanoseconds: Int64? {
        guard let r = observation.observedRunning, let w = observation.watchObservedRunning else { return nil }
        return w.goSub(r)
    }

    /// The SLO value aggregates use: corrected when a quirk made the kubelet's wrong.
    public var effectiveSloSeconds: Double {
        correctedSloNanoseconds.map(goSeconds) ?? observation.sloSeconds
    }

    public var e2eSeconds: Double { goSeconds(observation.e2eNanoseconds) }
}

extension PodStartReport {
    /// The JSON contract of `podstart analyze --output json` (one object per pod, one line).
    public func jsonLine() -> String {
        var out: [UInt8] = []
        appendJSON(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the JSON object (no newline) as UTF-8; built on bytes because `analyze` writes
    /// one per pod.
    public func appendJSON(to out: inout [UInt8]) {
        let o = observation
        out.reserveCapacity(out.count + 512 + pulls.count * 96)
        func raw(_ s: StaticString) { out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }
        func seconds(_ ns: Int64?) {
            if let ns { appendSecondsText(ns, to: &out) } else { raw("null") }
        }
        raw("{\"pod\":"); appendJSONString(pod, to: &out)
        // The kubelet's text as printed when it is a JSON number (Go's %v always is); Go also
        // parses forms JSON has no room for (`+.5`, `5.`): those are written in Swift's form.
        raw(",\"sloSeconds\":")
        if isJSONNumber(o.sloSecondsText.utf8) { out.append(contentsOf: o.sloSecondsText.utf8) } else { out.append(contentsOf: jsonNumber(o.sloSeconds).utf8) }
        raw(",\"e2eSeconds\":"); seconds(o.e2eNanoseconds)
        raw(",\"pullSeconds\":"); seconds(pullNanoseconds)
        raw(",\"initSeconds\":"); seconds(initNanoseconds)
        raw(",\"runningToWatchSeconds\":"); seconds(runningToWatchNanoseconds)
        raw(",\"created\":")
        if let c = o.created { appendJSONString(GoTime.formatRFC3339(c), to: &out) } else { raw("null") }
        raw(",\"variant\":\""); out.append(contentsOf: o.variant.rawValue.utf8); raw("\"")
        raw(",\"quirks\":[")
        for (i, q) in quirks.enumerated() {
            if i > 0 { raw(",") }
            raw("\""); out.append(contentsOf: q.rawValue.utf8); raw("\"")
        }
        raw("]")
        if let c = correctedSloNanoseconds { raw(",\"correctedSloSeconds\":"); seconds(c) }
        raw(",\"containerdPullSeconds\":"); seconds(containerdPullNanoseconds)
        raw(",\"sandboxSeconds\":"); seconds(sandboxNanoseconds)
        raw(",\"kubeletSyncToSandboxSeconds\":"); seconds(kubeletSyncToSandboxNanoseconds)
        raw(",\"pulls\":[")
        for (i, p) in pulls.enumerated() {
            if i > 0 { raw(",") }
            raw("{\"image\":"); appendJSONString(p.image, to: &out)
            raw(",\"seconds\":"); seconds(p.end.goSub(p.begin))
            raw(",\"sizeBytes\":")
            if let b = p.sizeBytes { out.append(contentsOf: String(b).utf8) } else { raw("null") }
            raw(p.failed ? ",\"failed\":true}" : ",\"failed\":false}")
        }
        raw("]}")
    }

    public static let csvHeaderLine = "pod,variant,sloSeconds,correctedSloSeconds,e2eSeconds,pullSeconds,initSeconds,runningToWatchSeconds,created,quirks"

    public static let tableHeader = ["POD", "VAR", "SLO s", "CORRECTED", "E2E s", "PULL s", "INIT s", "RUN→WATCH s", "QUIRKS"]

    public func tableRow() -> [String] {
        func f(_ ns: Int64?) -> String { ns.map { String(format: "%.3f", goSeconds($0)) } ?? "-" }
        return [pod, observation.variant.rawValue, observation.sloSecondsText, f(correctedSloNanoseconds),
                f(observation.e2eNanoseconds), f(pullNanoseconds), f(initNanoseconds), f(runningToWatchNanoseconds),
                quirks.isEmpty ? "-" : quirks.map(\.rawValue).joined(separator: ",")]
    }

    public static func renderTable(rows: [[String]]) -> String { KubeletSources.renderTable(rows) }

    /// Column widths of the streamed per-pod table (longer cells push the row, never truncate).
    static let columnWidths = [52, 3, 14, 11, 9, 9, 9, 12, 0]

    public static func fixedWidthRow(_ cells: [String]) -> String {
        var out = ""
        for (i, c) in cells.enumerated() {
            let w = i < columnWidths.count ? columnWidths[i] : 0
            let pad = max(0, w - c.count)
            if i == 0 || i == cells.count - 1 {
                out += c + (i == cells.count - 1 ? "" : String(repeating: " ", count: pad))
            } else {
                out += String(repeating: " ", count: pad) + c
            }
            if i < cells.count - 1 { out += "  " }
        }
        return out
    }

    public func csvLine() -> String {
        let o = observation
        let fields: [String] = [
            csvField(pod), o.variant.rawValue, o.sloSecondsText,
            correctedSloNanoseconds.map { secondsText(nanoseconds: $0) } ?? "",
            secondsText(nanoseconds: o.e2eNanoseconds),
            pullNanoseconds.map { secondsText(nanoseconds: $0) } ?? "",
            initNanoseconds.map { secondsText(nanoseconds: $0) } ?? "",
            runningToWatchNanoseconds.map { secondsText(nanoseconds: $0) } ?? "",
            o.created.map { GoTime.formatRFC3339($0) } ?? "",
            csvField(quirks.map(\.rawValue).joined(separator: ";")),
        ]
        return fields.joined(separator: ",")
    }
}

func csvField(_ s: String) -> String {
    if s.contains(",") || s.contains("\"") || s.contains("\n") {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}

/// Appends a JSON string literal; ASCII without specials is copied as is.
func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for b in s.utf8 {
        if b >= 0x20, b != UInt8(ascii: "\""), b != UInt8(ascii: "\\") {
            out.append(b)
            continue
        }
        switch b {
        case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
        case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
        case 10: out.append(contentsOf: [92, 110])
        case 13: out.append(contentsOf: [92, 114])
        case 9: out.append(contentsOf: [92, 116])
        default:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// A JSON string literal.
public func jsonString(_ s: String) -> String {
    var out = ""
    JSON.escape(s, into: &out)
    return out
}

/// Whether `text` is a number by RFC 8259's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
func isJSONNumber<S: Collection>(_ text: S) -> Bool where S.Element == UInt8 {
    var i = text.startIndex
    func digit(_ at: S.Index) -> Bool { at < text.endIndex && text[at] >= 48 && text[at] <= 57 }
    func digits() -> Bool {
        guard digit(i) else { return false }
        while digit(i) { i = text.index(after: i) }
        return true
    }
    if i < text.endIndex, text[i] == UInt8(ascii: "-") { i = text.index(after: i) }
    if i < text.endIndex, text[i] == UInt8(ascii: "0") {
        i = text.index(after: i)
    } else if !digits() {
        return false
    }
    if i < text.endIndex, text[i] == UInt8(ascii: ".") {
        i = text.index(after: i)
        guard digits() else { return false }
    }
    if i < text.endIndex, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
        i = text.index(after: i)
        if i < text.endIndex, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") { i = text.index(after: i) }
        guard digits() else { return false }
    }
    return i == text.endIndex
}

/// A number for JSON: finite doubles in Swift's shortest round-trip form; others as null.
func jsonNumber(_ d: Double?) -> String {
    guard let d, d.isFinite else { return "null" }
    return "\(d)"
}
