import PodstartCore

/// Chrome Trace Event JSON (the "JSON Object Format"): complete events ("ph": "X") in
/// microseconds, one process per pod start, top-level phases on thread 1 and pull parts on
/// thread 2. Perfetto and chrome://tracing open it.
public enum ChromeTrace {
    public static func render(_ traces: [PodStartTrace]) -> JSON {
        var events: [JSON] = []
        let origin = traces.map(\.created).min() ?? 0
        for (index, trace) in traces.enumerated() {
            let pid = Int64(index + 1)
            events.append(metadata("process_name", pid: pid, tid: 0, name: "\(trace.pod.namespace)/\(trace.pod.name)"))
            events.append(metadata("thread_name", pid: pid, tid: 1, name: "phases"))
            events.append(metadata("thread_name", pid: pid, tid: 2, name: "pull"))
            for span in trace.phases {
                events.append(.object([
                    ("name", .string(span.name.rawValue)),
                    ("cat", .string(span.parent == nil ? "phase" : "pull")),
                    ("ph", .string("X")),
                    ("ts", .double(Double(span.start.saturatingSubtract(origin)) / 1000)),
                    ("dur", .double(Double(span.nanoseconds) / 1000)),
                    ("pid", .int(pid)),
                    ("tid", .int(span.parent == nil ? 1 : 2)),
                    ("args", .object([("source", .string(span.source.rawValue)), ("seconds", .double(span.seconds))])),
                ]))
            }
        }
        return .object([("traceEvents", .array(events)), ("displayTimeUnit", .string("ms"))])
    }

    static func metadata(_ kind: String, pid: Int64, tid: Int64, name: String) -> JSON {
        .object([("name", .string(kind)), ("ph", .string("M")), ("pid", .int(pid)), ("tid", .int(tid)),
                 ("args", .object([("name", .string(name))]))])
    }
}
