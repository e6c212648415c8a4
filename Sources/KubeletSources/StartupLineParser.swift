import Foundation
import PodstartCore
#if canImport(Glibc)
import Glibc
#endif

/// Why a line that looked like a pod startup line was not turned into an observation.
/// Every rejected line is counted by the caller; none is guessed at.
public enum StartupLineRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The line mentions `podStartSLOduration` or the message but not both in the expected shape.
    case markerMismatch
    /// The `key=value` list could not be split (unterminated quote, bad escape, stray bytes).
    case unparsableFields(String)
    case duplicateKey(String)
    case missingKey(String)
    case badValue(key: String)
    case badPod
    /// The line's fields contradict each other (e.g. SLO ≠ E2E − pull window), so at least one
    /// of them was damaged.
    case inconsistent(String)
    case badJSON

    public var description: String {
        switch self {
        case .markerMismatch: "startup marker without the message (or the reverse)"
        case .unparsableFields(let why): "fields unparsable: \(why)"
        case .duplicateKey(let k): "duplicate key \(k)"
        case .missingKey(let k): "missing key \(k)"
        case .badValue(let k): "bad value for \(k)"
        case .badPod: "pod is not namespace/name"
        case .inconsistent(let why): "fields inconsistent: \(why)"
        case .badJSON: "JSON log line does not parse"
        }
    }
}

/// Parses the kubelet's `"Observed pod startup duration"` line in klog text (with or without a
/// journald prefix) and in JSON logging format, for every field-set variant
/// (docs/kubelet-startup-line.md#field-sets).
///
/// The parser matches on the message, never on `file:line`. Every field the kubelet derives from
/// others is cross-checked (E2E = watch − created; SLO = E2E − pull window, or V4's
/// E2E − pull total − init total; Go's wall and monotonic readings agree), so a damaged value is
/// rejected rather than reported.
public enum StartupLineParser {
    public static let message = "Observed pod startup duration"
    static let quotedMessage = Needle("\"Observed pod startup duration\"")
    static let jsonMessage = Needle("\"msg\":\"Observed pod startup duration\"")
    static let sloKey = Needle("podStartSLOduration")

    /// The keys of the startup line, matched as bytes.
    enum Key: Int, CaseIterable {
        case pod, podStartSLOduration, podStartE2EDuration, totalImagesPullingTime, totalInitContainerRuntime
        case isStatefulPod, podDotCreationTimestamp, podCreationTimestamp, firstStartedPulling, lastFinishedPulling
        case imagePullSessionsCount, imagePullSessionsStartsCount, observedRunningTime, watchObservedRunningTime

        var name: String { Self.names[rawValue] }

        static let names: [String] = allCases.map { k in
            k == .podDotCreationTimestamp ? "pod.CreationTimestamp" : "\(k)"
        }
        static let nameBytes: [[UInt8]] = names.map { Array($0.utf8) }

        static func match(_ b: UnsafeBufferPointer<UInt8>) -> Key? {
            for (i, n) in nameBytes.enumerated() where n.count == b.count {
                if n.withUnsafeBufferPointer({ memcmp($0.baseAddress!, b.baseAddress!, b.count) == 0 }) { return Key(rawValue: i) }
            }
            return nil
        }

        static let v1: [Key] = [.pod, .podStartSLOduration, .podDotCreationTimestamp, .firstStartedPulling, .lastFinishedPulling,
                                .observedRunningTime, .watchObservedRunningTime]
        static let v2: [Key] = [.pod, .podStartSLOduration, .podCreationTimestamp, .firstStartedPulling, .lastFinishedPulling,
                                .observedRunningTime, .watchObservedRunningTime]
        static let v3: [Key] = [.pod, .podStartSLOduration, .podStartE2EDuration, .podCreationTimestamp, .firstStartedPulling,
                                .lastFinishedPulling, .observedRunningTime, .watchObservedRunningTime]
        static let v4: [Key] = [.pod, .podStartSLOduration, .podStartE2EDuration, .totalImagesPullingTime, .totalInitContainerRuntime,
                                .isStatefulPod, .podCreationTimestamp, .imagePullSessionsCount, .imagePullSessionsStartsCount,
                                .observedRunningTime, .watchObservedRunningTime]
        static let v4Only: [Key] = [.totalImagesPullingTime, .totalInitContainerRuntime, .isStatefulPod,
                                    .imagePullSessionsCount, .imagePullSessionsStartsCount]
    }

    struct Fields {
        let slots: [KlogValues.Pair?]
        subscript(_ k: Key) -> KlogValues.Pair? { slots[k.rawValue] }
    }

    static let v4OnlyKeys: Set<String> = ["totalImagesPullingTime", "totalInitContainerRuntime", "isStatefulPod",
                                          "imagePullSessionsCount", "imagePullSessionsStartsCount"]

    /// Largest disagreement tolerated between Go's wall-clock and monotonic differences of two
    /// instants logged on one line (clock slew); more means a damaged value.
    static let clockAgreementNanoseconds: Int64 = 1_000_000

    /// Parses one line (without its newline). Returns nil when the line is not a startup line at
    /// all (neither the message nor `podStartSLOduration` occurs in it).
    public static func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<KubeletPodStartupObservation, StartupLineRejection>? {
        let msgAt = findBytes(line, quotedMessage.buffer)
        let sloAt = findBytes(line, sloKey.buffer)
        if msgAt == nil && sloAt == nil { return nil }
        guard let msgAt, sloAt != nil else { return .failure(.markerMismatch) }
        // JSON logging format: the message is the value of "msg".
        if msgAt >= 6, line[msgAt - 1] == UInt8(ascii: ":") {
            return parseJSON(line)
        }
        return parseText(line, fieldsFrom: msgAt + quotedMessage.count)
    }

    public static func parse(_ line: String) -> Result<KubeletPodStartupObservation, StartupLineRejection>? {
        var line = line
        return line.withUTF8 { parse($0) }
    }

    // MARK: klog text

    static func parseText(_ line: UnsafeBufferPointer<UInt8>, fieldsFrom start: Int) -> Result<KubeletPodStartupObservation, StartupLineRejection> {
        // The message must be followed by a space (or end) — not glued to other bytes.
        guard start >= line.count || line[start] == UInt8(ascii: " ") else {
            return .failure(.unparsableFields("message not followed by a space"))
        }
        let pairs: [KlogValues.Pair]
        do {
            pairs = try KlogValues.pairs(line, from: start)
        } catch {
            return .failure(.unparsableFields("\(error)"))
        }
        // Keys are matched as bytes against the known names: no dictionary, no strings.
        var slots = [KlogValues.Pair?](repeating: nil, count: Key.allCases.count)
        var order: [Key] = []
        order.reserveCapacity(pairs.count)
        var unknownKey: String?
        for p in pairs {
            let kb = UnsafeBufferPointer(rebasing: line[p.keyRange])
            guard let k = Key.match(kb) else {
                if unknownKey == nil { unknownKey = String(decoding: kb, as: UTF8.self) }
                continue
            }
            if slots[k.rawValue] != nil { return .failure(.duplicateKey(k.name)) }
            slots[k.rawValue] = p
            order.append(k)
        }
        let variant: KubeletStartupLineVariant
        let required: [Key]
        if Key.v4Only.contains(where: { slots[$0.rawValue] != nil }) {
            variant = .v4; required = Key.v4
        } else if slots[Key.podStartE2EDuration.rawValue] != nil {
            variant = .v3; required = Key.v3
        } else if slots[Key.podCreationTimestamp.rawValue] != nil {
            variant = .v2; required = Key.v2
        } else {
            variant = .v1; required = Key.v1
        }
        for k in required where slots[k.rawValue] == nil { return .failure(.missingKey(k.name)) }
        // V1/V2 are told apart from V3/V4 by keys that are absent; a damaged V3/V4 key would
        // masquerade as an unknown key on a "V2" line, so V1/V2 lines take no unknown keys.
        // Known keys must come in the kubelet's order (and only the variant's keys).
        if variant == .v1 || variant == .v2, let extra = unknownKey {
            return .failure(.unparsableFields("unknown key \(extra) on a \(variant.rawValue) line"))
        }
        if order != required { return .failure(.unparsableFields("keys out of order or from another variant")) }
        let fields = Fields(slots: slots)

        guard let podPair = fields[.pod], podPair.quoted, let (ns, name) = splitPod(podPair.value) else {
            return .failure(.badPod)
        }
        let sloPair = fields[.podStartSLOduration]!
        guard !sloPair.quoted, let slo = parseGoFloat(sloPair.value) else { return .failure(.badValue(key: "podStartSLOduration")) }

        func time(_ key: Key, allowAbsent: Bool) -> Result<KubeletTimestamp?, StartupLineRejection> {
            guard let p = fields[key], p.quoted else { return .failure(.badValue(key: key.name)) }
            let parsed = p.value.withUnsafeBufferPointer { GoTime.parseTime($0) }
            switch parsed {
            case .time(let t)?: return .success(t)
            case .absent?: return allowAbsent ? .success(nil) : .failure(.badValue(key: key.name))
            case nil: return .failure(.badValue(key: key.name))
            }
        }
        func duration(_ key: Key) -> Result<Int64, StartupLineRejection> {
            guard let p = fields[key], p.quoted,
                  let d = p.value.withUnsafeBufferPointer({ GoTime.parseDuration($0) })
            else { return .failure(.badValue(key: key.name)) }
            return .success(d)
        }
        func integer(_ key: Key) -> Result<Int, StartupLineRejection> {
            guard let p = fields[key], !p.quoted, !p.value.isEmpty, p.value.count < 10,
                  p.value.allSatisfy({ $0 >= 48 && $0 <= 57 })
            else { return .failure(.badValue(key: key.name)) }
            return .success(Int(String(decoding: p.value, as: UTF8.self))!)
        }

        do {
            let createdKey: Key = variant == .v1 ? .podDotCreationTimestamp : .podCreationTimestamp
            guard let created = try time(createdKey, allowAbsent: false).get(),
                  let watch = try time(.watchObservedRunningTime, allowAbsent: false).get()
            else { return .failure(.badValue(key: createdKey.name)) }
            let observed = try time(.observedRunningTime, allowAbsent: true).get()
            let watchOffset = fields[.watchObservedRunningTime]!.value.withUnsafeBufferPointer { GoTime.parseTimeAndOffset($0)?.1 }
            var obs = KubeletPodStartupObservation(
                namespace: ns, name: name, variant: variant,
                sloSecondsText: String(decoding: sloPair.value, as: UTF8.self), sloSeconds: slo,
                e2eNanoseconds: watch.goSub(created), created: created,
                observedRunning: observed, watchObservedRunning: watch)
            obs.kubeletUTCOffsetSeconds = watchOffset
            if variant == .v3 || variant == .v4 {
                obs.e2eNanoseconds = try duration(.podStartE2EDuration).get()
            }
            if variant == .v4 {
                obs.totalImagesPullingNanoseconds = try duration(.totalImagesPullingTime).get()
                obs.totalInitContainerRuntimeNanoseconds = try duration(.totalInitContainerRuntime).get()
                guard let st = fields[.isStatefulPod], !st.quoted else { return .failure(.badValue(key: "isStatefulPod")) }
                switch String(decoding: st.value, as: UTF8.self) {
                case "true": obs.isStatefulPod = true
                case "false": obs.isStatefulPod = false
                default: return .failure(.badValue(key: "isStatefulPod"))
                }
                obs.imagePullSessionsCount = try integer(.imagePullSessionsCount).get()
                obs.imagePullSessionsStartsCount = try integer(.imagePullSessionsStartsCount).get()
            } else {
                obs.firstStartedPulling = try time(.firstStartedPulling, allowAbsent: true).get()
                obs.lastFinishedPulling = try time(.lastFinishedPulling, allowAbsent: true).get()
            }
            if let why = inconsistency(obs) { return .failure(.inconsistent(why)) }
            return .success(obs)
        } catch {
            return .failure(error)
        }
    }

    // MARK: JSON logging format

    static func parseJSON(_ line: UnsafeBufferPointer<UInt8>) -> Result<KubeletPodStartupObservation, StartupLineRejection> {
        // A journald prefix may precede the object.
        guard let open = findByte(line, UInt8(ascii: "{"), from: 0) else { return .failure(.badJSON) }
        let body = UnsafeBufferPointer(rebasing: line[open...])
        guard let any = try? JSONSerialization.jsonObject(with: Data(buffer: body)),
              let obj = any as? [String: Any],
              obj["msg"] as? String == message
        else { return .failure(.badJSON) }

        let ns: String, name: String
        if let pod = obj["pod"] as? [String: Any], let n = pod["name"] as? String, let s = pod["namespace"] as? String,
           let split = splitPod(Array("\(s)/\(n)".utf8)) {
            (ns, name) = split
        } else if let pod = obj["pod"] as? String, let split = splitPod(Array(pod.utf8)) {
            (ns, name) = split
        } else {
            return .failure(.badPod)
        }
        // The number exactly as written: find it in the raw bytes.
        guard let sloText = rawJSONNumber(body, key: "podStartSLOduration"),
              let slo = parseGoFloat(Array(sloText.utf8))
        else { return .failure(.badValue(key: "podStartSLOduration")) }

        func jsonTime(_ key: String) -> KubeletTimestamp?? {
            guard let v = obj[key] else { return .some(nil) }
            if let s = v as? String {
                switch GoTime.parseTime(s) {
                case .time(let t)?: return .some(t)
                case .absent?: return .some(nil)
                case nil: return GoTime.parseRFC3339(s).map { .some($0) } ?? nil
                }
            }
            return .some(nil) // Numbers may be the encoder's current time (docs/kubelet-startup-line.md#json-logging): not trusted.
        }
        guard let created = jsonTime(obj["podCreationTimestamp"] != nil ? "podCreationTimestamp" : "pod.CreationTimestamp"),
              let watch = jsonTime("watchObservedRunningTime"),
              let observed = jsonTime("observedRunningTime"),
              let first = jsonTime("firstStartedPulling"),
              let last = jsonTime("lastFinishedPulling")
        else { return .failure(.badValue(key: "time")) }

        let variant: KubeletStartupLineVariant
        if obj.keys.contains(where: { v4OnlyKeys.contains($0) }) {
            variant = .v4
        } else if obj["podStartE2EDuration"] != nil {
            variant = .v3
        } else if obj["podCreationTimestamp"] != nil {
            variant = .v2
        } else {
            variant = .v1
        }
        func dur(_ key: String) -> Int64? {
            if let s = obj[key] as? String { return GoTime.parseDuration(s) }
            return nil
        }
        let e2e: Int64
        if variant == .v3 || variant == .v4 {
            guard let d = dur("podStartE2EDuration") else { return .failure(.badValue(key: "podStartE2EDuration")) }
            e2e = d
        } else {
            guard let c = created, let w = watch else { return .failure(.missingKey("watchObservedRunningTime")) }
            e2e = w.goSub(c)
        }
        var obs = KubeletPodStartupObservation(
            namespace: ns, name: name, variant: variant, sloSecondsText: sloText, sloSeconds: slo,
            e2eNanoseconds: e2e, created: created,
            firstStartedPulling: first, lastFinishedPulling: last, observedRunning: observed,
            watchObservedRunning: watch)
        if variant == .v4 {
            guard let p = dur("totalImagesPullingTime") else { return .failure(.badValue(key: "totalImagesPullingTime")) }
            guard let i = dur("totalInitContainerRuntime") else { return .failure(.badValue(key: "totalInitContainerRuntime")) }
            obs.totalImagesPullingNanoseconds = p
            obs.totalInitContainerRuntimeNanoseconds = i
            obs.isStatefulPod = obj["isStatefulPod"] as? Bool
            obs.imagePullSessionsCount = obj["imagePullSessionsCount"] as? Int
            obs.imagePullSessionsStartsCount = obj["imagePullSessionsStartsCount"] as? Int
            obs.firstStartedPulling = nil
            obs.lastFinishedPulling = nil
        }
        // JSON lines may omit (or carry unusable) pull instants; then the SLO cannot be re-derived.
        let pullKnown = obj["firstStartedPulling"] is String && obj["lastFinishedPulling"] is String
        if let why = inconsistency(obs, pullTimesKnown: pullKnown) { return .failure(.inconsistent(why)) }
        return .success(obs)
    }

    /// The literal text of a number-valued key in a flat JSON object.
    static func rawJSONNumber(_ body: UnsafeBufferPointer<UInt8>, key: String) -> String? {
        let needle = Needle("\"\(key)\":")
        guard var i = withExtendedLifetime(needle, { findBytes(body, needle.buffer) }) else { return nil }
        i += needle.count
        while i < body.count, body[i] == UInt8(ascii: " ") { i += 1 }
        let start = i
        while i < body.count, let b = Optional(body[i]),
              (b >= 48 && b <= 57) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") { i += 1 }
        guard i > start else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: body[start..<i]), as: UTF8.self)
    }

    // MARK: checks

    /// Checks every derived field against the fields it is derived from; returns why not, or nil.
    static func inconsistency(_ o: KubeletPodStartupObservation, pullTimesKnown: Bool = true) -> String? {
        if let created = o.created, let watch = o.watchObservedRunning {
            let e2e = watch.goSub(created)
            if e2e != o.e2eNanoseconds { return "podStartE2EDuration ≠ watchObservedRunningTime − creation" }
        }
        let expected: Int64
        switch o.variant {
        case .v4:
            guard let p = o.totalImagesPullingNanoseconds, let i = o.totalInitContainerRuntimeNanoseconds else { return "V4 totals missing" }
            if p < 0 || i < 0 { return "negative V4 total" }
            if o.imagePullSessionsCount == 0, p != 0 { return "pull time without pull sessions" }
            expected = o.e2eNanoseconds &- p &- i
        case .v1, .v2, .v3:
            expected = o.e2eNanoseconds &- pullWindowNanoseconds(first: o.firstStartedPulling, last: o.lastFinishedPulling)
        }
        let want = goSeconds(expected)
        let tolerance = max(0.5e-9, abs(want) * 1e-15)
        if pullTimesKnown || o.variant == .v4, abs(want - o.sloSeconds) > tolerance {
            return "podStartSLOduration ≠ E2E − excluded time"
        }
        // Wall and monotonic readings of the kubelet clock must tell the same story.
        if let watch = o.watchObservedRunning, let wm = watch.monotonicNanoseconds {
            for t in [o.firstStartedPulling, o.lastFinishedPulling, o.observedRunning] {
                guard let t, let tm = t.monotonicNanoseconds else { continue }
                // Saturating, as Go's Time.Sub (subMono): a wrapped difference could agree by accident.
                let wallDiff = watch.nanosecondsSinceEpoch.saturatingSubtract(t.nanosecondsSinceEpoch)
                let monoDiff = wm.saturatingSubtract(tm)
                if wallDiff.saturatingSubtract(monoDiff).magnitude > clockAgreementNanoseconds.magnitude { return "wall and monotonic clocks disagree" }
            }
        }
        // The kubelet reads observedRunningTime and watchObservedRunningTime from the clock in
        // two goroutines; a watch event handled while the status manager is still recording the
        // running time gives a sub-millisecond inversion (a real v1.28 line: 50 µs). Accepted and
        // named (`watchBeforeRunningClockReads`); a larger one is a damaged line.
        if let inversion = runningClockInversionNanoseconds(o), inversion > runningInversionToleranceNanoseconds {
            return "watch observed running \(inversion / 1000) µs before running"
        }
        return nil
    }

    /// Largest `observedRunningTime − watchObservedRunningTime` accepted as two separate clock
    /// reads rather than damage.
    public static let runningInversionToleranceNanoseconds: Int64 = 1_000_000

    /// How far `watchObservedRunningTime` lies before `observedRunningTime`, when it does (nil
    /// when in order or either is absent).
    public static func runningClockInversionNanoseconds(_ o: KubeletPodStartupObservation) -> Int64? {
        guard let observed = o.observedRunning, let watch = o.watchObservedRunning else { return nil }
        let d = watch.goSub(observed)
        return d < 0 ? Int64(0).saturatingSubtract(d) : nil
    }

    /// `lastFinishedPulling.Sub(firstStartedPulling)` with Go's zero-time and saturation rules:
    /// a pull that started and never finished gives the minimum Duration, the source of the
    /// kubelet's `-9.223372029479458e+09` SLO.
    public static func pullWindowNanoseconds(first: KubeletTimestamp?, last: KubeletTimestamp?) -> Int64 {
        switch (first, last) {
        case (nil, nil): return 0
        case (let f?, nil): return f.nanosecondsSinceEpoch > goZeroTimeNanoseconds ? .min : 0
        case (nil, let l?): return l.nanosecondsSinceEpoch > goZeroTimeNanoseconds ? .max : 0
        case (let f?, let l?): return l.goSub(f)
        }
    }

    /// Go's zero time (year 1) lies far below what Int64 nanoseconds can hold; every kubelet
    /// timestamp is above this bound.
    static let goZeroTimeNanoseconds: Int64 = .min

    static func splitPod(_ v: [UInt8]) -> (String, String)? {
        guard let slash = v.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let ns = v[..<slash], name = v[(slash + 1)...]
        guard !ns.isEmpty, ns.count <= 63, !name.isEmpty, name.count <= 253 else { return nil }
        func ok(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 45 || b == 46 }
        guard ns.allSatisfy({ ok($0) && $0 != 46 }), name.allSatisfy(ok) else { return nil }
        return (String(decoding: ns, as: UTF8.self), String(decoding: name, as: UTF8.self))
    }

    /// Go `%v` of a float64: decimal or exponent form, optional sign.
    static func parseGoFloat(_ v: [UInt8]) -> Double? {
        guard !v.isEmpty, v.count < 40 else { return nil }
        var sawDigit = false
        for b in v {
            switch b {
            case 48...57: sawDigit = true
            case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default: return nil
            }
        }
        guard sawDigit else { return nil }
        guard let d = Double(String(decoding: v, as: UTF8.self)), d.isFinite else { return nil }
        return d
    }
}
