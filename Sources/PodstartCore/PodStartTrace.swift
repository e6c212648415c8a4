/// One pod start, as `podstart trace` prints it, the agent serves it at `/v1/pods` and access
/// profiles read it back. The JSON shape is a contract (README "Trace JSON"): fields are only
/// ever added, and `schemaVersion` changes if one ever has to change meaning.
public struct PodStartTrace: Hashable, Sendable {
    public static let schemaVersion = "podstart.dev/v1"

    public struct Pod: Hashable, Sendable, CustomStringConvertible {
        public var namespace: String
        public var name: String
        public var uid: String
        /// `namespace/name`, as kubectl and the kubelet's logs name a pod.
        public var description: String { "\(namespace)/\(name)" }
        public init(namespace: String, name: String, uid: String) {
            self.namespace = namespace
            self.name = name
            self.uid = uid
        }
    }

    /// For containers started straight through containerd (ctr, nerdctl): no pod, but these.
    public struct RuntimeIdentity: Hashable, Sendable {
        public var containerdNamespace: String
        public var containerID: String
        public init(containerdNamespace: String, containerID: String) {
            self.containerdNamespace = containerdNamespace
            self.containerID = containerID
        }
    }

    public enum Outcome: String, Hashable, Sendable {
        case ready, failed
    }

    /// Whether `ready` is the pod's Ready: `known` when a readiness source (the pod's record from
    /// the API server or the kubelet's /pods, a readiness prober) said it; `unknown` when none ran,
    /// and `ready` is only the instant every regular container was running (no `probe` or
    /// `ready_report` phase then). Trace JSON: `"readiness":"unknown"`, absent when known.
    public enum Readiness: String, Hashable, Sendable {
        case known, unknown
    }

    /// One file a container read before it was ready.
    public struct Access: Hashable, Sendable {
        /// Absolute path inside the container.
        public var path: String
        /// Digest of the image layer that provides the file (nil: not from the image, e.g. a volume).
        public var layerDigest: String?
        /// Milliseconds from the container's first exec to the first access.
        public var firstAccessMs: Double
        public var opens: UInt64
        /// Bytes read (the union of the ranges).
        public var bytes: UInt64
        /// [offset, length] runs read, merged and sorted.
        public var ranges: [[UInt64]]
        /// The file's size in bytes when it was opened (nil in traces written before this field).
        public var sizeBytes: UInt64?
        public init(path: String, layerDigest: String?, firstAccessMs: Double, opens: UInt64, bytes: UInt64, ranges: [[UInt64]],
                    sizeBytes: UInt64? = nil) {
            self.path = path
            self.layerDigest = layerDigest
            self.firstAccessMs = firstAccessMs
            self.opens = opens
            self.bytes = bytes
            self.ranges = ranges
            self.sizeBytes = sizeBytes
        }
    }

    /// What a container's tasks waited on a FUSE file system for before it was ready: on a
    /// lazy-pull snapshotter (stargz), the files whose data were fetched on demand. One entry per
    /// file read; requests no file could be named for (lookups, getattrs, reads whose page-cache
    /// fill the kernel did not see) one entry per operation, with no path.
    public struct LazyFetch: Hashable, Sendable {
        /// Absolute path inside the container; nil for requests no file was named for.
        public var path: String?
        /// Digest of the image layer that provides the file (nil: unknown).
        public var layerDigest: String?
        /// `read` for a file's data; else the FUSE operation (`lookup`, `getattr`, `open`, …).
        public var operation: String
        public var requests: UInt64
        /// Bytes the replies carried past their headers (for reads: the file's data).
        public var bytes: UInt64
        /// The requests' waits (send → reply) added up, seconds; concurrent requests each count.
        public var waitSeconds: Double
        /// Milliseconds from the container's first exec to the first request's send.
        public var firstRequestMs: Double
        public init(path: String?, layerDigest: String?, operation: String, requests: UInt64, bytes: UInt64, waitSeconds: Double,
                    firstRequestMs: Double) {
            self.path = path
            self.layerDigest = layerDigest
            self.operation = operation
            self.requests = requests
            self.bytes = bytes
            self.waitSeconds = waitSeconds
            self.firstRequestMs = firstRequestMs
        }
    }

    public struct Container: Hashable, Sendable {
        public var name: String
        public var image: String
        public var imageDigest: String?
        public var exitCode: Int32?
        /// Ordered by first access.
        public var accesses: [Access]
        /// Unpacked size of the image: the sizes of the regular files in its layers, summed
        /// (nil when unknown, e.g. without the container's root filesystem).
        public var imageBytes: UInt64?
        /// Unix nanoseconds of the container's first exec, the origin of its accesses'
        /// `firstAccessMs` (nil when no exec was seen, and in traces written before this field).
        public var firstExec: Int64?
        /// FUSE requests its tasks waited on, by file (empty without a FUSE file system, e.g. on
        /// overlayfs); their time is the `lazy_fetch` phase.
        public var lazyFetches: [LazyFetch]
        public init(name: String, image: String, imageDigest: String?, exitCode: Int32? = nil, imageBytes: UInt64? = nil,
                    firstExec: Int64? = nil, accesses: [Access] = [], lazyFetches: [LazyFetch] = []) {
            self.lazyFetches = lazyFetches
            self.name = name
            self.image = image
            self.imageDigest = imageDigest
            self.exitCode = exitCode
            self.accesses = accesses
            self.imageBytes = imageBytes
            self.firstExec = firstExec
        }
    }

    /// The kubelet's pod start SLI for this start, as kubelet v1.28's pod_startup_latency_tracker
    /// measures it: `creationTimestamp` → the watch showing every container running, minus the
    /// pull window (first pull started → last pull finished, init containers that ran between
    /// included). Each instant is the kubelet's own where its "Observed pod startup duration" line
    /// was read, else podstart's (docs/metrics.md).
    public struct StartSLI: Hashable, Sendable {
        /// `metadata.creationTimestamp`, a whole second (as the kubelet subtracts it).
        public var createdUnixNs: Int64
        public var firstStartedPullingUnixNs: Int64?
        public var lastFinishedPullingUnixNs: Int64?
        /// When a pod watch showed every container running (the kubelet's `watchObservedRunningTime`).
        public var watchObservedRunningUnixNs: Int64
        /// `kubelet-log`: every instant from the kubelet's line; `pod-status`: podstart's own.
        public var source: PhaseSource
        public init(createdUnixNs: Int64, firstStartedPullingUnixNs: Int64?, lastFinishedPullingUnixNs: Int64?,
                    watchObservedRunningUnixNs: Int64, source: PhaseSource) {
            self.createdUnixNs = createdUnixNs
            self.firstStartedPullingUnixNs = firstStartedPullingUnixNs
            self.lastFinishedPullingUnixNs = lastFinishedPullingUnixNs
            self.watchObservedRunningUnixNs = watchObservedRunningUnixNs
            self.source = source
        }

        /// `podStartSLOduration`: (watchObservedRunning − created) − (lastFinishedPulling −
        /// firstStartedPulling), seconds; the pull term is 0 when nothing was pulled.
        public var seconds: Double {
            var pulling: Int64 = 0
            // instants come from log lines: differences saturate rather than trap
            if let first = firstStartedPullingUnixNs, let last = lastFinishedPullingUnixNs { pulling = last.saturatingSubtract(first) }
            return Double(watchObservedRunningUnixNs.saturatingSubtract(createdUnixNs).saturatingSubtract(pulling)) / 1e9
        }
    }

    public var pod: Pod
    public var runtime: RuntimeIdentity?
    /// Unix nanoseconds.
    public var created: Int64
    /// Unix nanoseconds; nil when the start failed before ready.
    public var ready: Int64?
    public var outcome: Outcome
    /// `.unknown`: no readiness source; `ready` is when the containers ran (see ``Readiness``).
    public var readiness: Readiness = .known
    public var failureReason: String?
    public var phases: [PhaseSpan]
    public var containers: [Container]
    /// The kubelet's SLI for this start (nil when no source gave its instants).
    public var sli: StartSLI?
    /// The pod's events, listed once when the start was recorded (nil: not listed).
    public var events: PodEvents?

    public init(pod: Pod, runtime: RuntimeIdentity? = nil, created: Int64, ready: Int64?, outcome: Outcome,
                failureReason: String? = nil, phases: [PhaseSpan], containers: [Container], sli: StartSLI? = nil) {
        self.sli = sli
        self.pod = pod
        self.runtime = runtime
        self.created = created
        self.ready = ready
        self.outcome = outcome
        self.failureReason = failureReason
        self.phases = phases
        self.containers = containers
    }

    /// End to end: created → ready (or → the end of the last phase for a failed start).
    public var e2eNanoseconds: Int64 {
        (ready ?? phases.filter { $0.parent == nil }.map(\.end).max() ?? created).saturatingSubtract(created)
    }

    public var e2eSeconds: Double { Double(e2eNanoseconds) / 1e9 }

    public func seconds(of phase: PhaseName) -> Double {
        Double(phases.filter { $0.name == phase }.saturatingSum { $0.nanoseconds }) / 1e9
    }
}

// MARK: JSON

extension PodStartTrace {
    public func json() -> JSON {
        var fields: [(String, JSON)] = [
            ("schemaVersion", .string(Self.schemaVersion)),
            ("pod", .object([("namespace", .string(pod.namespace)), ("name", .string(pod.name)), ("uid", .string(pod.uid))])),
        ]
        if let runtime {
            fields.append(("runtime", .object([("containerdNamespace", .string(runtime.containerdNamespace)),
                                               ("containerID", .string(runtime.containerID))])))
        }
        fields += [
            ("created", .string(Timestamp.rfc3339(unixNanoseconds: created))),
            ("ready", ready.map { .string(Timestamp.rfc3339(unixNanoseconds: $0)) } ?? .null),
            ("outcome", .string(outcome.rawValue)),
        ]
        if readiness == .unknown { fields.append(("readiness", .string(Readiness.unknown.rawValue))) }
        if let failureReason { fields.append(("failureReason", .string(failureReason))) }
        fields += [
            ("e2eSeconds", .double(e2eSeconds)),
            ("phases", .array(phases.map { p in
                .object([("name", .string(p.name.rawValue)),
                         ("start", .string(Timestamp.rfc3339(unixNanoseconds: p.start))),
                         ("end", .string(Timestamp.rfc3339(unixNanoseconds: p.end))),
                         ("seconds", .double(p.seconds)),
                         ("parent", p.parent.map { .string($0.rawValue) } ?? .null),
                         ("source", .string(p.source.rawValue))])
            })),
            ("containers", .array(containers.map { c in
                var cf: [(String, JSON)] = [("name", .string(c.name)), ("image", .string(c.image)),
                                            ("imageDigest", c.imageDigest.map { .string($0) } ?? .null)]
                if let exitCode = c.exitCode { cf.append(("exitCode", .int(Int64(exitCode)))) }
                if let imageBytes = c.imageBytes { cf.append(("imageBytes", .uint(imageBytes))) }
                if let firstExec = c.firstExec { cf.append(("firstExec", .string(Timestamp.rfc3339(unixNanoseconds: firstExec)))) }
                cf.append(("accesses", .array(c.accesses.map { a in
                    var af: [(String, JSON)] = [
                        ("path", .string(a.path)),
                        ("layerDigest", a.layerDigest.map { .string($0) } ?? .null),
                        ("firstAccessMs", .double(a.firstAccessMs)),
                        ("opens", .uint(a.opens)), ("bytes", .uint(a.bytes)),
                        ("ranges", .array(a.ranges.map { .array($0.map { .uint($0) }) })),
                    ]
                    if let size = a.sizeBytes { af.append(("sizeBytes", .uint(size))) }
                    return .object(af)
                })))
                if !c.lazyFetches.isEmpty {
                    cf.append(("lazyFetches", .array(c.lazyFetches.map { f in
                        .object([("path", f.path.map { .string($0) } ?? .null),
                                 ("layerDigest", f.layerDigest.map { .string($0) } ?? .null),
                                 ("operation", .string(f.operation)), ("requests", .uint(f.requests)), ("bytes", .uint(f.bytes)),
                                 ("waitSeconds", .double(f.waitSeconds)), ("firstRequestMs", .double(f.firstRequestMs))])
                    })))
                }
                return .object(cf)
            })),
        ]
        if let sli {
            func t(_ v: Int64?) -> JSON { v.map { .string(Timestamp.rfc3339(unixNanoseconds: $0)) } ?? .null }
            fields.append(("sli", .object([("seconds", .double(sli.seconds)), ("created", t(sli.createdUnixNs)),
                                           ("firstStartedPulling", t(sli.firstStartedPullingUnixNs)),
                                           ("lastFinishedPulling", t(sli.lastFinishedPullingUnixNs)),
                                           ("watchObservedRunning", t(sli.watchObservedRunningUnixNs)),
                                           ("source", .string(sli.source.rawValue))])))
        }
        if let events { fields += events.jsonFields }
        return .object(fields)
    }

    /// The largest byte count, offset or open count a trace file may hold: 2^53, the largest
    /// integer every JSON reader holds exactly (and 8 PiB, far above any image).
    public static let maxByteCount: Int64 = 1 << 53
    /// The largest |firstAccessMs| a trace file may hold: 10^12 ms, about 31 years.
    public static let maxAccessMilliseconds: Double = 1e12

    public struct DecodeError: Error, CustomStringConvertible, Sendable {
        public var field: String
        public var description: String { "not a podstart trace: \(field)" }
    }

    /// Reads a trace back from its JSON (one object of `podstart trace --output json`).
    public init(json: JSON) throws {
        func req<T>(_ value: T?, _ field: String) throws -> T {
            guard let value else { throw DecodeError(field: "missing or invalid \"\(field)\"") }
            return value
        }
        // A byte or open count: absent is 0; present, it must be a whole number in 0…maxByteCount
        // (sums over many files and starts are then far from overflowing).
        func count(_ value: JSON?, _ field: String) throws -> UInt64 {
            guard let value else { return 0 }
            guard let v = value.int64Value, v >= 0, v <= Self.maxByteCount else {
                throw DecodeError(field: "\"\(field)\" is not a count from 0 to \(Self.maxByteCount)")
            }
            return UInt64(v)
        }
        // Milliseconds after the first exec: absent is 0; present, within ±maxAccessMilliseconds.
        func milliseconds(_ value: JSON?, _ field: String) throws -> Double {
            guard let value else { return 0 }
            guard let v = value.doubleValue, v.magnitude <= Self.maxAccessMilliseconds else {
                throw DecodeError(field: "\"\(field)\" is not a number of milliseconds within ±\(Int64(Self.maxAccessMilliseconds))")
            }
            return v
        }
        guard let version = json["schemaVersion"]?.stringValue, version == Self.schemaVersion else {
            throw DecodeError(field: "schemaVersion is not \"\(Self.schemaVersion)\"")
        }
        let podJSON = try req(json["pod"], "pod")
        pod = Pod(namespace: podJSON["namespace"]?.stringValue ?? "", name: podJSON["name"]?.stringValue ?? "",
                  uid: podJSON["uid"]?.stringValue ?? "")
        if let r = json["runtime"], let ns = r["containerdNamespace"]?.stringValue, let id = r["containerID"]?.stringValue {
            runtime = RuntimeIdentity(containerdNamespace: ns, containerID: id)
        }
        created = try req(json["created"]?.stringValue.flatMap(Timestamp.parseRFC3339), "created")
        ready = json["ready"]?.stringValue.flatMap(Timestamp.parseRFC3339)
        outcome = json["outcome"]?.stringValue.flatMap(Outcome.init(rawValue:)) ?? (ready == nil ? .failed : .ready)
        readiness = json["readiness"]?.stringValue.flatMap(Readiness.init(rawValue:)) ?? .known
        failureReason = json["failureReason"]?.stringValue
        phases = try (json["phases"]?.arrayValue ?? []).map { p in
            PhaseSpan(name: try req(p["name"]?.stringValue.flatMap(PhaseName.init(rawValue:)), "phases[].name"),
                      start: try req(p["start"]?.stringValue.flatMap(Timestamp.parseRFC3339), "phases[].start"),
                      end: try req(p["end"]?.stringValue.flatMap(Timestamp.parseRFC3339), "phases[].end"),
                      parent: p["parent"]?.stringValue.flatMap(PhaseName.init(rawValue:)),
                      source: p["source"]?.stringValue.flatMap(PhaseSource.init(rawValue:)) ?? .derived)
        }
        if let o = json["sli"], let created = o["created"]?.stringValue.flatMap(Timestamp.parseRFC3339),
           let running = o["watchObservedRunning"]?.stringValue.flatMap(Timestamp.parseRFC3339) {
            sli = StartSLI(createdUnixNs: created, firstStartedPullingUnixNs: o["firstStartedPulling"]?.stringValue.flatMap(Timestamp.parseRFC3339),
                           lastFinishedPullingUnixNs: o["lastFinishedPulling"]?.stringValue.flatMap(Timestamp.parseRFC3339),
                           watchObservedRunningUnixNs: running,
                           source: o["source"]?.stringValue.flatMap(PhaseSource.init(rawValue:)) ?? .derived)
        }
        events = PodEvents(traceJSON: json)
        containers = try (json["containers"]?.arrayValue ?? []).map { c in
            Container(
                name: c["name"]?.stringValue ?? "", image: try req(c["image"]?.stringValue, "containers[].image"),
                imageDigest: c["imageDigest"]?.stringValue,
                exitCode: c["exitCode"]?.int64Value.map { Int32(truncatingIfNeeded: $0) },
                imageBytes: try c["imageBytes"].flatMap { $0.isNull ? nil : try count($0, "containers[].imageBytes") },
                firstExec: c["firstExec"]?.stringValue.flatMap(Timestamp.parseRFC3339),
                accesses: try (c["accesses"]?.arrayValue ?? []).map { a in
                    Access(path: try req(a["path"]?.stringValue, "accesses[].path"),
                           layerDigest: a["layerDigest"]?.stringValue,
                           firstAccessMs: try milliseconds(a["firstAccessMs"], "accesses[].firstAccessMs"),
                           opens: try count(a["opens"], "accesses[].opens"),
                           bytes: try count(a["bytes"], "accesses[].bytes"),
                           ranges: try (a["ranges"]?.arrayValue ?? []).compactMap { r in
                               guard let pair = r.arrayValue, pair.count == 2,
                                     let o = pair[0].int64Value, let l = pair[1].int64Value, o >= 0, l >= 0 else { return nil }
                               guard o <= Self.maxByteCount, l <= Self.maxByteCount - o else {
                                   throw DecodeError(field: "accesses[].ranges ends past \(Self.maxByteCount) bytes")
                               }
                               return [UInt64(o), UInt64(l)]
                           },
                           sizeBytes: try a["sizeBytes"].flatMap { $0.isNull ? nil : try count($0, "accesses[].sizeBytes") })
                },
                lazyFetches: try (c["lazyFetches"]?.arrayValue ?? []).map { f in
                    let wait = try milliseconds(f["waitSeconds"], "lazyFetches[].waitSeconds")
                    return LazyFetch(path: f["path"]?.stringValue, layerDigest: f["layerDigest"]?.stringValue,
                                     operation: try req(f["operation"]?.stringValue, "lazyFetches[].operation"),
                                     requests: try count(f["requests"], "lazyFetches[].requests"),
                                     bytes: try count(f["bytes"], "lazyFetches[].bytes"),
                                     waitSeconds: max(0, wait),
                                     firstRequestMs: try milliseconds(f["firstRequestMs"], "lazyFetches[].firstRequestMs"))
                })
        }
    }
}

/// Wall-clock timestamps as podstart prints them: RFC 3339, UTC, nanoseconds.
public enum Timestamp {
    public static func rfc3339(unixNanoseconds ns: Int64) -> String {
        var seconds = ns / 1_000_000_000
        var nanos = ns % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2)).\(pad(nanos, 9))Z"
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to Unix nanoseconds.
    public static func parseRFC3339(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for c in b[from..<(from + count)] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 0x2D, let mo = num(5, 2), b[7] == 0x2D, let d = num(8, 2),
              b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20, let h = num(11, 2), b[13] == 0x3A, let mi = num(14, 2),
              b[16] == 0x3A, let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var nanos: Int64 = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 9 { nanos = nanos * 10 + Int64(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 9) { nanos *= 10 }
        }
        var offset: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D, let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3A, let om = num(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2B ? 1 : -1)
            i += 6
        } else { return nil }
        guard i == b.count else { return nil }
        // Four-digit years reach past what Int64 nanoseconds hold (1677-09-21…2262-04-11): nil.
        var secs = days(fromCivil: y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset
        if secs < 0, nanos > 0 { secs += 1; nanos -= 1_000_000_000 }  // so that Int64.min itself fits
        let (scaled, o1) = secs.multipliedReportingOverflow(by: 1_000_000_000)
        let (ns, o2) = scaled.addingReportingOverflow(nanos)
        return o1 || o2 ? nil : ns
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    public static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
