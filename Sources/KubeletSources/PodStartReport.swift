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
}

/// One image pull as containerd logged it, attributed to a pod.
public struct ContainerdPull: Sendable, Hashable {
    public var image: String
    public var begin: KubeletTimestamp
    public var end: KubeletTimestamp
    public var failed: Bool
    public var sizeBytes: Int64?
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
        let o = observation
        var s = "{\"pod\":" + jsonString(pod)
        s += ",\"sloSeconds\":" + o.sloSecondsText
        s += ",\"e2eSeconds\":" + secondsText(nanoseconds: o.e2eNanoseconds)
        s += ",\"pullSeconds\":" + (pullNanoseconds.map { secondsText(nanoseconds: $0) } ?? "null")
        s += ",\"initSeconds\":" + (initNanoseconds.map { secondsText(nanoseconds: $0) } ?? "null")
        s += ",\"runningToWatchSeconds\":" + (runningToWatchNanoseconds.map { secondsText(nanoseconds: $0) } ?? "null")
        s += ",\"created\":" + (o.created.map { jsonString(GoTime.formatRFC3339($0)) } ?? "null")
        s += ",\"variant\":\"" + o.variant.rawValue + "\""
        s += ",\"quirks\":[" + quirks.map { "\"" + $0.rawValue + "\"" }.joined(separator: ",") + "]"
        if let c = correctedSloNanoseconds { s += ",\"correctedSloSeconds\":" + secondsText(nanoseconds: c) }
        s += ",\"containerdPullSeconds\":" + (containerdPullNanoseconds.map { secondsText(nanoseconds: $0) } ?? "null")
        s += ",\"sandboxSeconds\":" + (sandboxNanoseconds.map { secondsText(nanoseconds: $0) } ?? "null")
        s += ",\"pulls\":[" + pulls.map { p in
            "{\"image\":" + jsonString(p.image) + ",\"seconds\":" + secondsText(nanoseconds: p.end.goSub(p.begin))
                + ",\"sizeBytes\":" + (p.sizeBytes.map(String.init) ?? "null") + ",\"failed\":" + (p.failed ? "true" : "false") + "}"
        }.joined(separator: ",") + "]"
        s += "}"
        return s
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

/// A JSON string literal.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// A number for JSON: finite doubles in Swift's shortest round-trip form; others as null.
func jsonNumber(_ d: Double?) -> String {
    guard let d, d.isFinite else { return "null" }
    return "\(d)"
}
