import PodstartCore

/// Chrome Trace Event JSON (the "JSON Object Format"): complete events ("ph": "X") in
/// microseconds, one process per pod start, top-level phases on thread 1, pull parts on thread 2,
/// and the `lazy_fetch` pieces (FUSE waits, inside start and probe) on thread 3 with the files
/// fetched on demand in their args. Perfetto and chrome://tracing open it.
public enum ChromeTrace {
    public static func render(_ traces: [PodStartTrace]) -> JSON {
        var events: [JSON] = []
        let origin = traces.map(\.created).min() ?? 0
        for (index, trace) in traces.enumerated() {
            let pid = Int64(index + 1)
            events.append(metadata("process_name", pid: pid, tid: 0, name: "\(trace.pod.namespace)/\(trace.pod.name)"))
            events.append(metadata("thread_name", pid: pid, tid: 1, name: "phases"))
            events.append(metadata("thread_name", pid: pid, tid: 2, name: "pull"))
            let lazy = trace.phases.contains { $0.name == .lazyFetch }
            if lazy { events.append(metadata("thread_name", pid: pid, tid: 3, name: "lazy fetch")) }
            for span in trace.phases {
                let isLazy = span.name == .lazyFetch
                var args: [(String, JSON)] = [("source", .string(span.source.rawValue)), ("seconds", .double(span.seconds))]
                if isLazy, let parent = span.parent { args.append(("parent", .string(parent.rawValue))) }
                events.append(.object([
                    ("name", .string(span.name.rawValue)),
                    ("cat", .string(isLazy ? "lazy_fetch" : span.parent == nil ? "phase" : "pull")),
                    ("ph", .string("X")),
                    ("ts", .double(Double(span.start.saturatingSubtract(origin)) / 1000)),
                    ("dur", .double(Double(span.nanoseconds) / 1000)),
                    ("pid", .int(pid)),
                    ("tid", .int(isLazy ? 3 : span.parent == nil ? 1 : 2)),
                    ("args", .object(args)),
                ]))
            }
            if lazy, let firstLazy = trace.phases.filter({ $0.name == .lazyFetch }).map(\.start).min() {
                // the files fetched on demand, as one instant event at the first wait
                let files: [JSON] = trace.containers.flatMap { c in
                    c.lazyFetches.filter { $0.path != nil }.map { f in
                        .object([("container", .string(c.name)), ("path", .string(f.path ?? "")), ("requests", .uint(f.requests)),
                                 ("bytes", .uint(f.bytes)), ("waitSeconds", .double(f.waitSeconds))])
                    }
                }
                events.append(.object([
                    ("name", .string("files fetched on demand")), ("cat", .string("lazy_fetch")), ("ph", .string("i")), ("s", .string("t")),
                    ("ts", .double(Double(firstLazy.saturatingSubtract(origin)) / 1000)), ("pid", .int(pid)), ("tid", .int(3)),
                    ("args", .object([("files", .array(files))])),
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
