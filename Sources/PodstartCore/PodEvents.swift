/// The events the API server holds about one pod start (core/v1 Events whose `involvedObject.uid`
/// is the pod's), as the agent listed them once when the start was recorded: what the kubelet and
/// the scheduler said while the pod started — FailedScheduling behind a long `schedule`, image
/// pull errors and back-offs, "Readiness probe failed" behind a long `probe`, and the kubelet's
/// own pull time in its `Pulled` message. Trace JSON: `events`, `eventsTruncated`, `eventsError`
/// (docs/trace-json.md).
public struct PodEvents: Hashable, Sendable {
    /// Kept events, oldest first (by first time, then by name as the API lists them).
    public var items: [PodEvent]
    /// More events existed than the limit kept (Warnings are kept before Normal ones).
    public var truncated: Bool
    /// Why the listing failed (the start is recorded all the same, without events).
    public var error: String?

    public init(items: [PodEvent] = [], truncated: Bool = false, error: String? = nil) {
        self.items = items
        self.truncated = truncated
        self.error = error
    }

    /// The events of a listing that failed.
    public static func failed(_ reason: String) -> PodEvents { PodEvents(error: reason) }

    /// The most events a trace keeps by default (`--pod-events-limit`).
    public static let defaultLimit = 50
    /// The range `--pod-events-limit` accepts.
    public static let limitRange = 1...1000

    /// `events` chosen to fit `limit`: every Warning first (a start's trouble), then the Normal
    /// events, each group oldest first; `truncated` when some did not fit.
    public static func bounded(_ events: [PodEvent], limit: Int, moreOnServer: Bool = false) -> PodEvents {
        let limit = max(0, limit)
        guard events.count > limit else { return PodEvents(items: events.sorted(by: PodEvent.chronological), truncated: moreOnServer) }
        let warnings = events.filter(\.isWarning)
        let kept = (warnings + events.filter { !$0.isWarning }).prefix(limit)
        return PodEvents(items: kept.sorted(by: PodEvent.chronological), truncated: true)
    }

    /// Warning occurrences by reason (each event's `count`), for
    /// `podstart_pod_start_warning_events_total{reason}`.
    public var warningCounts: [(reason: String, count: Int64)] {
        var counts: [String: Int64] = [:]
        for e in items where e.isWarning { counts[e.reason, default: 0] &+= max(1, e.count) }
        return counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Reasons of Warning events that get their own label value in
    /// `podstart_pod_start_warning_events_total`; any other is counted as `other`. The kubelet's
    /// (kubernetes/kubernetes pkg/kubelet/events/event.go), the scheduler's FailedScheduling and
    /// the attach/detach controller's FailedAttachVolume: what a pod's start can meet.
    public static let warningReasons: [String] = [
        "BackOff", "DNSConfigForming", "ErrImageNeverPull", "Failed", "FailedAttachVolume", "FailedCreatePodContainer",
        "FailedCreatePodSandBox", "FailedMapVolume", "FailedMount", "FailedPodSandBoxStatus", "FailedPostStartHook",
        "FailedScheduling", "FailedSync", "FailedValidation", "InspectFailed", "NetworkNotReady", "ProbeWarning", "Unhealthy",
    ]
}

/// One core/v1 Event of a pod.
public struct PodEvent: Hashable, Sendable {
    /// `Normal` or `Warning`.
    public var type: String
    public var reason: String
    public var message: String
    /// Occurrences (the event's `count`, else its `series.count`; 1 when neither says).
    public var count: Int64
    /// Unix nanoseconds of the first and last occurrence (`firstTimestamp`/`lastTimestamp`, whole
    /// seconds; else `eventTime` and `series.lastObservedTime`, microseconds); nil when absent.
    public var firstTimestamp: Int64?
    public var lastTimestamp: Int64?
    /// Who reported it: `source.component`, else `reportingComponent` (`kubelet`, `default-scheduler`).
    public var component: String
    /// The container `involvedObject.fieldPath` names (`spec.containers{web}` → `web`), if any.
    public var container: String?
    /// For a `Pulled` event that pulled: the kubelet's pull time (`in 130ms`) and the time
    /// including waiting behind other pulls (`(130ms including waiting)`), seconds.
    public var pullSeconds: Double?
    public var pullIncludingWaitingSeconds: Double?

    public init(type: String, reason: String, message: String, count: Int64 = 1, firstTimestamp: Int64? = nil,
                lastTimestamp: Int64? = nil, component: String = "", container: String? = nil,
                pullSeconds: Double? = nil, pullIncludingWaitingSeconds: Double? = nil) {
        self.type = type
        self.reason = reason
        self.message = message
        self.count = count
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.component = component
        self.container = container
        self.pullSeconds = pullSeconds
        self.pullIncludingWaitingSeconds = pullIncludingWaitingSeconds
    }

    public var isWarning: Bool { type == "Warning" }

    /// Oldest first; events without a time last.
    static func chronological(_ a: PodEvent, _ b: PodEvent) -> Bool {
        (a.firstTimestamp ?? .max, a.lastTimestamp ?? .max) < (b.firstTimestamp ?? .max, b.lastTimestamp ?? .max)
    }
}

// MARK: trace JSON

extension PodEvents {
    /// The trace fields: `events` (always, when listed), `eventsTruncated` (when true), `eventsError`.
    public var jsonFields: [(String, JSON)] {
        var fields: [(String, JSON)] = []
        if error == nil || !items.isEmpty { fields.append(("events", .array(items.map(\.json)))) }
        if truncated { fields.append(("eventsTruncated", .bool(true))) }
        if let error { fields.append(("eventsError", .string(error))) }
        return fields
    }

    /// Reads them back from a trace object; nil when the trace has none of the fields.
    public init?(traceJSON json: JSON) {
        let array = json["events"]?.arrayValue
        let error = json["eventsError"]?.stringValue
        guard array != nil || error != nil else { return nil }
        self.init(items: (array ?? []).compactMap(PodEvent.init(json:)), truncated: json["eventsTruncated"]?.boolValue ?? false, error: error)
    }
}

extension PodEvent {
    public var json: JSON {
        func time(_ t: Int64?) -> JSON { t.map { .string(Timestamp.rfc3339(unixNanoseconds: $0)) } ?? .null }
        var fields: [(String, JSON)] = [
            ("type", .string(type)), ("reason", .string(reason)), ("message", .string(message)), ("count", .int(count)),
            ("firstTimestamp", time(firstTimestamp)), ("lastTimestamp", time(lastTimestamp)), ("component", .string(component)),
        ]
        if let container { fields.append(("container", .string(container))) }
        if let pullSeconds {
            var pull: [(String, JSON)] = [("seconds", .double(pullSeconds))]
            if let w = pullIncludingWaitingSeconds { pull.append(("includingWaitingSeconds", .double(w))) }
            fields.append(("pull", .object(pull)))
        }
        return .object(fields)
    }

    /// One entry of a trace's `events`; nil when it has no reason.
    public init?(json: JSON) {
        guard let reason = json["reason"]?.stringValue else { return nil }
        self.init(type: json["type"]?.stringValue ?? "", reason: reason, message: json["message"]?.stringValue ?? "",
                  count: json["count"]?.int64Value ?? 1,
                  firstTimestamp: json["firstTimestamp"]?.stringValue.flatMap(Timestamp.parseRFC3339),
                  lastTimestamp: json["lastTimestamp"]?.stringValue.flatMap(Timestamp.parseRFC3339),
                  component: json["component"]?.stringValue ?? "", container: json["container"]?.stringValue,
                  pullSeconds: json["pull"]?["seconds"]?.doubleValue,
                  pullIncludingWaitingSeconds: json["pull"]?["includingWaitingSeconds"]?.doubleValue)
    }
}
