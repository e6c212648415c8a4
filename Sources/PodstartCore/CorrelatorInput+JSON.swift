/// A versioned JSON-lines form of the correlator's input stream, so real streams can be recorded
/// (`podstart agent --record-inputs`) and replayed (fixtures, `podstart bench correlator`).
///
/// A recording is a header line, then one input per line:
///
///     {"podstartInputs":1,"clockOffsetNs":…}
///     {"input":"pod","uid":"…","namespace":"…","name":"…","created":…,"source":"cri"}
///     {"input":"kernel","kind":"exec","ts":…,"task":{…},…}
///     {"input":"clockOffset","offsetNs":…}   (the wall clock was stepped)
///
/// Every field is exact: times are integers (Unix nanoseconds, kernel records keep their
/// CLOCK_MONOTONIC `ts`, converted with the header's clock like the agent did), doubles use
/// Swift's shortest round-tripping form. Decoding never traps: a bad line is counted and named.
public enum CorrelatorInputCodec {
    /// The format version written in the header; readers refuse other versions line by line.
    public static let version: Int64 = 1

    public static func header(clock: WallClock) -> JSON {
        .object([("podstartInputs", .int(version)), ("clockOffsetNs", .int(clock.offsetNs))])
    }

    /// One line (without the newline) for `input`.
    public static func line(_ input: CorrelatorInput) -> String { encode(input).rendered() }

    // MARK: encoding

    public static func encode(_ input: CorrelatorInput) -> JSON {
        func src(_ s: PhaseSource) -> (String, JSON) { ("source", .string(s.rawValue)) }
        switch input {
        case .pod(let p):
            return .object([("input", .string("pod")), ("uid", .string(p.uid)), ("namespace", .string(p.namespace)), ("name", .string(p.name)),
                            ("created", p.createdUnixNs.map(JSON.int) ?? .null), src(p.source)])
        case .scheduled(let s):
            return .object([("input", .string("scheduled")), ("uid", .string(s.uid)), ("at", .int(s.atUnixNs)), src(s.source)])
        case .podStatus(let p):
            func opt(_ v: Int64?) -> JSON { v.map(JSON.int) ?? .null }
            return .object([("input", .string("podStatus")), ("uid", .string(p.uid)), ("namespace", .string(p.namespace)),
                            ("name", .string(p.name)), ("created", opt(p.createdUnixNs)), ("scheduled", opt(p.scheduledUnixNs)),
                            ("readinessProbe", p.hasReadinessProbe.map(JSON.bool) ?? .null),
                            ("initContainers", .array(p.initContainers.map { .object([("name", .string($0.name)), ("started", opt($0.startedUnixNs)),
                                                                                      ("finished", opt($0.finishedUnixNs))]) })),
                            ("allRunning", opt(p.allRunningUnixNs)), ("ready", opt(p.readyUnixNs)), ("observed", .int(p.observedUnixNs)),
                            ("initialList", .bool(p.fromInitialList)), src(p.source)])
        case .sandbox(let s):
            return .object([("input", .string("sandbox")), ("uid", .string(s.uid)), ("sandboxId", .string(s.sandboxID)),
                            ("begin", .int(s.beginUnixNs)), ("end", .int(s.endUnixNs)), src(s.source)])
        case .pull(let p):
            return .object([("input", .string("pull")), ("uid", p.uid.map(JSON.string) ?? .null), ("image", .string(p.image)),
                            ("begin", .int(p.beginUnixNs)), ("end", .int(p.endUnixNs)), src(p.source)])
        case .containerCreated(let c):
            return .object([("input", .string("containerCreated")), ("uid", .string(c.uid)), ("containerId", .string(c.containerID)),
                            ("name", .string(c.name)), ("image", .string(c.image)), ("imageDigest", c.imageDigest.map(JSON.string) ?? .null),
                            ("isInit", .bool(c.isInit)), ("begin", .int(c.beginUnixNs)), ("end", .int(c.endUnixNs)), src(c.source)])
        case .containerStarted(let c):
            return .object([("input", .string("containerStarted")), ("containerId", .string(c.containerID)), ("begin", .int(c.beginUnixNs)),
                            ("end", .int(c.endUnixNs)), src(c.source)])
        case .containerMountNamespace(let m):
            return .object([("input", .string("containerMountNamespace")), ("containerId", .string(m.containerID)),
                            ("mntns", .uint(UInt64(m.mountNamespace)))])
        case .containerExited(let e):
            return .object([("input", .string("containerExited")), ("containerId", .string(e.containerID)), ("at", .int(e.atUnixNs)),
                            ("exitCode", .int(Int64(e.exitCode)))])
        case .ready(let r):
            return .object([("input", .string("ready")), ("uid", .string(r.uid)), ("at", .int(r.atUnixNs)), src(r.source)])
        case .failed(let f):
            return .object([("input", .string("failed")), ("uid", .string(f.uid)), ("at", .int(f.atUnixNs)), ("reason", .string(f.reason))])
        case .preexisting(let uid):
            return .object([("input", .string("preexisting")), ("uid", .string(uid))])
        case .runtimeContainer(let r):
            return .object([("input", .string("runtimeContainer")), ("uid", .string(r.uid)), ("containerdNamespace", .string(r.containerdNamespace)),
                            ("containerId", .string(r.containerID))])
        case .containerPid(let p):
            return .object([("input", .string("containerPid")), ("containerId", .string(p.containerID)), ("pid", .uint(UInt64(p.pid)))])
        case .kubeletStartup(let o):
            return .object([("input", .string("kubeletStartup"))] + startupFields(o))
        case .kernel(let event):
            return .object([("input", .string("kernel"))] + kernelFields(event))
        case .aggregates(let a):
            return .object([
                ("input", .string("aggregates")),
                ("openCounts", .array(a.openCounts.map { c in
                    .object([("mntns", .uint(UInt64(c.mountNamespace))), ("file", c.file.map(fileKey) ?? .null),
                             ("pathHash", c.pathHash.map(JSON.uint) ?? .null), ("count", .uint(c.count)), ("firstNs", .uint(c.firstNs))])
                })),
                ("writeTotals", .array(a.writeTotals.map { w in
                    .object([("pid", .uint(UInt64(w.pid))), ("file", fileKey(w.file)), ("generation", .uint(UInt64(w.fileGeneration))),
                             ("mntns", .uint(UInt64(w.mountNamespace))),
                             ("firstNs", .uint(w.firstNs)), ("lastNs", .uint(w.lastNs)), ("bytes", .uint(w.bytes)),
                             ("writes", .uint(w.writes)), ("runtime", .bool(w.isRuntimeProcess))])
                })),
            ])
        case .tick(let now):
            return .object([("input", .string("tick")), ("now", .int(now))])
        case .clockOffset(let offset):
            return .object([("input", .string("clockOffset")), ("offsetNs", .int(offset))])
        }
    }

    static func fileKey(_ k: FileKey) -> JSON { .object([("dev", .uint(UInt64(k.device.rawValue))), ("ino", .uint(k.inode))]) }

    static func task(_ t: TaskContext) -> JSON {
        .object([("pid", .uint(UInt64(t.pid))), ("tid", .uint(UInt64(t.tid))), ("ppid", .uint(UInt64(t.parentPid))),
                 ("nsPid", .uint(UInt64(t.namespacePid))), ("mntns", .uint(UInt64(t.mountNamespace))),
                 ("pidns", .uint(UInt64(t.pidNamespace))), ("cgroupId", .uint(t.cgroupID)), ("comm", .string(t.comm))])
    }

    static func file(_ f: FileIdentity) -> JSON {
        .object([("key", fileKey(f.key)), ("dataKey", fileKey(f.dataKey)), ("sizeBytes", .uint(f.sizeBytes)), ("mode", .uint(UInt64(f.mode)))])
    }

    static func path(_ p: ResolvedPath) -> JSON { .object([("path", .string(p.path)), ("truncated", .bool(p.truncated))]) }

    static func kernelFields(_ event: KernelEvent) -> [(String, JSON)] {
        var fields: [(String, JSON)] = [("kind", .string(event.kindName)), ("ts", .uint(event.timestampNs))]
        switch event {
        case .exec(let e):
            fields += [("task", task(e.task)), ("file", file(e.file)), ("path", path(e.path)), ("filename", .string(e.filename)),
                       ("args", .array(e.arguments.map(JSON.string))), ("argsTruncated", .bool(e.argumentsTruncated)),
                       ("runtime", .bool(e.isRuntimeProcess)), ("oldPid", .uint(UInt64(e.oldPid)))]
        case .fork(let e):
            fields += [("task", task(e.parent)), ("childPid", .uint(UInt64(e.childPid))), ("runtime", .bool(e.isRuntimeProcess))]
        case .exit(let e):
            fields += [("task", task(e.task)), ("waitStatus", .int(Int64(e.waitStatus))), ("runtime", .bool(e.isRuntimeProcess))]
        case .open(let e):
            fields += [("task", task(e.task)), ("syscall", .string(e.syscall.rawValue)), ("result", .int(Int64(e.result))),
                       ("dirfd", .int(Int64(e.directoryFD))), ("flags", .uint(UInt64(e.openFlags))), ("rawPath", .string(e.rawPath)),
                       ("rawPathTruncated", .bool(e.rawPathTruncated)), ("path", e.path.map(path) ?? .null),
                       ("file", e.file.map(file) ?? .null), ("runtime", .bool(e.isRuntimeProcess))]
        case .readRange(let e):
            fields += [("mntns", .uint(UInt64(e.mountNamespace))), ("file", fileKey(e.file)), ("firstPage", .uint(e.firstPage)),
                       ("pageCount", .uint(e.pageCount)), ("firstAccessNs", .uint(e.firstAccessNs)), ("pid", .uint(UInt64(e.pid))),
                       ("source", .string(e.source.rawValue))]
        case .blockIO(let e):
            fields += [("dev", .uint(UInt64(e.device.rawValue))), ("mntns", e.mountNamespace.map { .uint(UInt64($0)) } ?? .null),
                       ("pid", .uint(UInt64(e.pid))), ("comm", .string(e.comm)), ("op", .string(e.operation.rawValue)),
                       ("sector", .uint(e.sector)), ("bytes", .uint(UInt64(e.bytes))), ("error", .int(Int64(e.error))),
                       ("issueNs", .uint(e.issueNs)), ("latencyNs", .uint(e.latencyNs))]
        case .writeBegin(let e):
            fields += [("task", task(e.task)), ("file", file(e.file)), ("generation", .uint(UInt64(e.fileGeneration))),
                       ("path", path(e.path)), ("runtime", .bool(e.isRuntimeProcess))]
        case .fuseRequest(let e):
            fields += [("task", task(e.task)), ("sendNs", .uint(e.sendNs)), ("unique", .uint(e.unique)),
                       ("connection", .uint(UInt64(e.connection.rawValue))), ("opcode", .uint(UInt64(e.opcode))),
                       ("requestBytes", .uint(UInt64(e.requestBytes))), ("replyBytes", .uint(UInt64(e.replyBytes))),
                       ("error", .int(Int64(e.error))), ("file", e.file.map(fileKey) ?? .null)]
        }
        return fields
    }

    static func timestamp(_ t: KubeletTimestamp?) -> JSON {
        guard let t else { return .null }
        return .object([("unixNano", .int(t.nanosecondsSinceEpoch)), ("monotonicNano", t.monotonicNanoseconds.map(JSON.int) ?? .null)])
    }

    static func startupFields(_ o: KubeletPodStartupObservation) -> [(String, JSON)] {
        [("namespace", .string(o.namespace)), ("name", .string(o.name)), ("variant", .string(o.variant.rawValue)),
         ("sloSecondsText", .string(o.sloSecondsText)), ("sloSeconds", .string(String(o.sloSeconds))),
         ("e2eNanoseconds", .int(o.e2eNanoseconds)), ("created", timestamp(o.created)),
         ("firstStartedPulling", timestamp(o.firstStartedPulling)), ("lastFinishedPulling", timestamp(o.lastFinishedPulling)),
         ("observedRunning", timestamp(o.observedRunning)), ("watchObservedRunning", timestamp(o.watchObservedRunning)),
         ("totalImagesPullingNanoseconds", o.totalImagesPullingNanoseconds.map(JSON.int) ?? .null),
         ("totalInitContainerRuntimeNanoseconds", o.totalInitContainerRuntimeNanoseconds.map(JSON.int) ?? .null),
         ("isStatefulPod", o.isStatefulPod.map(JSON.bool) ?? .null),
         ("imagePullSessionsCount", o.imagePullSessionsCount.map { .int(Int64($0)) } ?? .null),
         ("imagePullSessionsStartsCount", o.imagePullSessionsStartsCount.map { .int(Int64($0)) } ?? .null),
         ("kubeletUTCOffsetSeconds", o.kubeletUTCOffsetSeconds.map { .int(Int64($0)) } ?? .null)]
    }

    // MARK: decoding

    /// Why a line was not an input: the field (or "line") and what was wrong with it.
    public struct DecodeError: Error, CustomStringConvertible, Sendable, Hashable {
        public var field: String
        public var message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
        public var description: String { "\(field): \(message)" }
    }

    /// A line that was not decoded, by 1-based line number.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// What a recording held: its clock, its inputs in order, and every line that was skipped.
    public struct Recording: Sendable {
        public var version: Int64?
        public var clock: WallClock?
        public var inputs: [CorrelatorInput] = []
        public var problems: [Problem] = []
        /// Skipped lines by reason, e.g. "input: unknown kind 'x'": counted, never fatal.
        public var skippedByReason: [String: Int] {
            problems.reduce(into: [:]) { $0[$1.reason, default: 0] += 1 }
        }
    }

    /// Reads a whole recording. The header may be absent (then `clock` is nil); blank lines are
    /// ignored; any other line that is not a valid input is a `Problem`, and reading goes on.
    public static func read(_ text: String) -> Recording {
        var recording = Recording()
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let lineText = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if lineText.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let json: JSON
            do { json = try JSON.parse(Array(lineText.utf8)) } catch {
                recording.problems.append(Problem(line: number, reason: "not JSON (\(error))"))
                continue
            }
            if let v = json["podstartInputs"] {
                guard let version = v.int64Value, version == Self.version else {
                    recording.problems.append(Problem(line: number, reason: "header: unsupported version \(v.rendered()) (this podstart reads \(Self.version))"))
                    continue
                }
                guard let offset = json["clockOffsetNs"]?.int64Value else {
                    recording.problems.append(Problem(line: number, reason: "header: clockOffsetNs missing or not an integer"))
                    continue
                }
                recording.version = version
                recording.clock = WallClock(offsetNs: offset)
                continue
            }
            do { recording.inputs.append(try decode(json)) } catch let e as DecodeError {
                recording.problems.append(Problem(line: number, reason: e.description))
            } catch {
                recording.problems.append(Problem(line: number, reason: "\(error)"))
            }
        }
        return recording
    }

    /// One input from its JSON object.
    public static func decode(_ json: JSON) throws -> CorrelatorInput {
        let o = Fields(json, context: "")
        guard case .object = json else { throw DecodeError(field: "line", message: "not an object") }
        let kind = try o.string("input")
        switch kind {
        case "pod":
            return .pod(PodSighting(uid: try o.string("uid"), namespace: try o.string("namespace"), name: try o.string("name"),
                                    createdUnixNs: try o.optional("created") { try $0.int64("created") }, source: try o.source()))
        case "scheduled":
            return .scheduled(PodScheduling(uid: try o.string("uid"), atUnixNs: try o.int64("at"), source: try o.source()))
        case "podStatus":
            func opt(_ f: Fields, _ key: String) throws -> Int64? { try f.optional(key) { try $0.int64(key) } }
            let inits = try o.array("initContainers").enumerated().map { i, item in
                let c = Fields(item, context: "initContainers[\(i)].")
                return PodStatusReport.InitContainerRun(name: try c.string("name"), startedUnixNs: try opt(c, "started"),
                                                        finishedUnixNs: try opt(c, "finished"))
            }
            return .podStatus(PodStatusReport(
                uid: try o.string("uid"), namespace: try o.string("namespace"), name: try o.string("name"),
                createdUnixNs: try opt(o, "created"), scheduledUnixNs: try opt(o, "scheduled"),
                hasReadinessProbe: try o.optional("readinessProbe") { try $0.bool("readinessProbe") }, initContainers: inits,
                allRunningUnixNs: try opt(o, "allRunning"), readyUnixNs: try opt(o, "ready"), observedUnixNs: try o.int64("observed"),
                fromInitialList: try o.optional("initialList") { try $0.bool("initialList") } ?? false, source: try o.source()))
        case "sandbox":
            return .sandbox(SandboxCreation(uid: try o.string("uid"), sandboxID: try o.string("sandboxId"), beginUnixNs: try o.int64("begin"),
                                            endUnixNs: try o.int64("end"), source: try o.source()))
        case "pull":
            return .pull(ImagePull(uid: try o.optional("uid") { try $0.string("uid") }, image: try o.string("image"),
                                   beginUnixNs: try o.int64("begin"), endUnixNs: try o.int64("end"), source: try o.source()))
        case "containerCreated":
            return .containerCreated(ContainerCreation(
                uid: try o.string("uid"), containerID: try o.string("containerId"), name: try o.string("name"),
                image: try o.string("image"), imageDigest: try o.optional("imageDigest") { try $0.string("imageDigest") },
                isInit: try o.bool("isInit"), beginUnixNs: try o.int64("begin"), endUnixNs: try o.int64("end"), source: try o.source()))
        case "containerStarted":
            return .containerStarted(ContainerStart(containerID: try o.string("containerId"), beginUnixNs: try o.int64("begin"),
                                                    endUnixNs: try o.int64("end"), source: try o.source()))
        case "containerMountNamespace":
            return .containerMountNamespace(ContainerMountNamespace(containerID: try o.string("containerId"), mountNamespace: try o.uint32("mntns")))
        case "containerExited":
            return .containerExited(ContainerExit(containerID: try o.string("containerId"), atUnixNs: try o.int64("at"),
                                                  exitCode: try o.int32("exitCode")))
        case "ready":
            return .ready(PodReadiness(uid: try o.string("uid"), atUnixNs: try o.int64("at"), source: try o.source()))
        case "failed":
            return .failed(PodFailure(uid: try o.string("uid"), atUnixNs: try o.int64("at"), reason: try o.string("reason")))
        case "preexisting":
            return .preexisting(uid: try o.string("uid"))
        case "runtimeContainer":
            return .runtimeContainer(RuntimeContainer(uid: try o.string("uid"), containerdNamespace: try o.string("containerdNamespace"),
                                                      containerID: try o.string("containerId")))
        case "containerPid":
            return .containerPid(ContainerInitProcess(containerID: try o.string("containerId"), pid: try o.uint32("pid")))
        case "kubeletStartup":
            return .kubeletStartup(try startup(o))
        case "kernel":
            return .kernel(try kernel(o))
        case "aggregates":
            let counts = try o.array("openCounts").enumerated().map { i, item in
                let c = Fields(item, context: "openCounts[\(i)].")
                return OpenCount(mountNamespace: try c.uint32("mntns"), file: try c.optional("file") { try $0.fileKey("file") },
                                 pathHash: try c.optional("pathHash") { try $0.uint64("pathHash") }, count: try c.uint64("count"),
                                 firstNs: try c.uint64("firstNs"))
            }
            let totals = try o.array("writeTotals").enumerated().map { i, item in
                let w = Fields(item, context: "writeTotals[\(i)].")
                // "generation": absent from inputs recorded before writes were keyed on it
                return WriteTotal(pid: try w.uint32("pid"), file: try w.fileKey("file"),
                                  fileGeneration: try w.optional("generation") { try $0.uint32("generation") } ?? 0,
                                  mountNamespace: try w.uint32("mntns"),
                                  firstNs: try w.uint64("firstNs"), lastNs: try w.uint64("lastNs"), bytes: try w.uint64("bytes"),
                                  writes: try w.uint64("writes"), isRuntimeProcess: try w.bool("runtime"))
            }
            return .aggregates(KernelAggregates(openCounts: counts, writeTotals: totals))
        case "tick":
            return .tick(nowUnixNs: try o.int64("now"))
        case "clockOffset":
            // absent from recordings made before the offset was re-measured (#16.7): they read as before
            return .clockOffset(offsetNs: try o.int64("offsetNs"))
        default:
            throw DecodeError(field: "input", message: "unknown kind '\(kind)'")
        }
    }

    static func kernel(_ o: Fields) throws -> KernelEvent {
        let kind = try o.string("kind")
        let ts = try o.uint64("ts")
        switch kind {
        case "exec":
            return .exec(ExecEvent(timestampNs: ts, task: try o.task("task"), file: try o.file("file"), path: try o.path("path"),
                                   filename: try o.string("filename"), arguments: try o.array("args").enumerated().map { i, a in
                                       guard let s = a.stringValue else { throw DecodeError(field: "args[\(i)]", message: "not a string") }
                                       return s
                                   },
                                   argumentsTruncated: try o.bool("argsTruncated"), isRuntimeProcess: try o.bool("runtime"),
                                   oldPid: try o.uint32("oldPid")))
        case "fork":
            return .fork(ForkEvent(timestampNs: ts, parent: try o.task("task"), childPid: try o.uint32("childPid"),
                                   isRuntimeProcess: try o.bool("runtime")))
        case "exit":
            return .exit(ExitEvent(timestampNs: ts, task: try o.task("task"), waitStatus: try o.int32("waitStatus"),
                                   isRuntimeProcess: try o.bool("runtime")))
        case "open":
            guard let syscall = OpenSyscall(rawValue: try o.string("syscall")) else {
                throw DecodeError(field: "syscall", message: "unknown syscall '\(try o.string("syscall"))'")
            }
            return .open(OpenEvent(timestampNs: ts, task: try o.task("task"), syscall: syscall, result: try o.int32("result"),
                                   directoryFD: try o.int32("dirfd"), openFlags: try o.uint32("flags"), rawPath: try o.string("rawPath"),
                                   rawPathTruncated: try o.bool("rawPathTruncated"), path: try o.optional("path") { try $0.path("path") },
                                   file: try o.optional("file") { try $0.file("file") }, isRuntimeProcess: try o.bool("runtime")))
        case "read":
            guard let source = RangeSource(rawValue: try o.string("source")) else {
                throw DecodeError(field: "source", message: "unknown range source '\(try o.string("source"))'")
            }
            return .readRange(ReadRangeEvent(timestampNs: ts, mountNamespace: try o.uint32("mntns"), file: try o.fileKey("file"),
                                             firstPage: try o.uint64("firstPage"), pageCount: try o.uint64("pageCount"),
                                             firstAccessNs: try o.uint64("firstAccessNs"), pid: try o.uint32("pid"), source: source))
        case "block":
            guard let op = BlockOperation(rawValue: try o.string("op")) else {
                throw DecodeError(field: "op", message: "unknown block operation '\(try o.string("op"))'")
            }
            return .blockIO(BlockIOEvent(timestampNs: ts, device: DeviceNumber(rawValue: try o.uint32("dev")),
                                         mountNamespace: try o.optional("mntns") { try $0.uint32("mntns") }, pid: try o.uint32("pid"),
                                         comm: try o.string("comm"), operation: op, sector: try o.uint64("sector"),
                                         bytes: try o.uint32("bytes"), error: try o.int32("error"), issueNs: try o.uint64("issueNs"),
                                         latencyNs: try o.uint64("latencyNs")))
        case "write":
            return .writeBegin(WriteBeginEvent(timestampNs: ts, task: try o.task("task"), file: try o.file("file"),
                                               path: try o.path("path"), isRuntimeProcess: try o.bool("runtime"),
                                               fileGeneration: try o.optional("generation") { try $0.uint32("generation") } ?? 0))
        case "fuse":
            return .fuseRequest(FuseRequestEvent(timestampNs: ts, task: try o.task("task"), sendNs: try o.uint64("sendNs"),
                                                 unique: try o.uint64("unique"), connection: DeviceNumber(rawValue: try o.uint32("connection")),
                                                 opcode: try o.uint32("opcode"), requestBytes: try o.uint32("requestBytes"),
                                                 replyBytes: try o.uint32("replyBytes"), error: try o.int32("error"),
                                                 file: try o.optional("file") { try $0.fileKey("file") }))
        default:
            throw DecodeError(field: "kind", message: "unknown kernel record kind '\(kind)'")
        }
    }

    static func startup(_ o: Fields) throws -> KubeletPodStartupObservation {
        guard let variant = KubeletStartupLineVariant(rawValue: try o.string("variant")) else {
            throw DecodeError(field: "variant", message: "unknown variant '\(try o.string("variant"))'")
        }
        let sloText = try o.string("sloSeconds")
        guard let slo = Double(sloText) else { throw DecodeError(field: "sloSeconds", message: "'\(sloText)' is not a number") }
        var s = KubeletPodStartupObservation(
            namespace: try o.string("namespace"), name: try o.string("name"), variant: variant,
            sloSecondsText: try o.string("sloSecondsText"), sloSeconds: slo, e2eNanoseconds: try o.int64("e2eNanoseconds"),
            created: try o.timestamp("created"), firstStartedPulling: try o.timestamp("firstStartedPulling"),
            lastFinishedPulling: try o.timestamp("lastFinishedPulling"), observedRunning: try o.timestamp("observedRunning"),
            watchObservedRunning: try o.timestamp("watchObservedRunning"),
            totalImagesPullingNanoseconds: try o.optional("totalImagesPullingNanoseconds") { try $0.int64("totalImagesPullingNanoseconds") },
            totalInitContainerRuntimeNanoseconds: try o.optional("totalInitContainerRuntimeNanoseconds") { try $0.int64("totalInitContainerRuntimeNanoseconds") },
            isStatefulPod: try o.optional("isStatefulPod") { try $0.bool("isStatefulPod") },
            imagePullSessionsCount: try o.optional("imagePullSessionsCount") { Int(try $0.int64("imagePullSessionsCount")) },
            imagePullSessionsStartsCount: try o.optional("imagePullSessionsStartsCount") { Int(try $0.int64("imagePullSessionsStartsCount")) })
        s.kubeletUTCOffsetSeconds = try o.optional("kubeletUTCOffsetSeconds") { Int(try $0.int64("kubeletUTCOffsetSeconds")) }
        return s
    }

    /// Typed access to an object's fields with errors that name the field.
    struct Fields {
        let json: JSON
        let context: String
        init(_ json: JSON, context: String) {
            self.json = json
            self.context = context
        }

        func fail(_ key: String, _ message: String) -> DecodeError { DecodeError(field: context + key, message: message) }

        func value(_ key: String) throws -> JSON {
            guard case .object = json else { throw DecodeError(field: context.isEmpty ? "line" : String(context.dropLast()), message: "not an object") }
            guard let v = json[key] else { throw fail(key, "missing") }
            return v
        }
        func optional<T>(_ key: String, _ body: (Fields) throws -> T) throws -> T? {
            guard let v = json[key], !v.isNull else { return nil }
            return try body(self)
        }
        func string(_ key: String) throws -> String {
            guard let s = try value(key).stringValue else { throw fail(key, "not a string") }
            return s
        }
        func bool(_ key: String) throws -> Bool {
            guard case .bool(let b) = try value(key) else { throw fail(key, "not true or false") }
            return b
        }
        func int64(_ key: String) throws -> Int64 {
            switch try value(key) {
            case .int(let i): return i
            case .uint(let u) where u <= UInt64(Int64.max): return Int64(u)
            default: throw fail(key, "not an integer in the Int64 range")
            }
        }
        func uint64(_ key: String) throws -> UInt64 {
            switch try value(key) {
            case .int(let i) where i >= 0: return UInt64(i)
            case .uint(let u): return u
            default: throw fail(key, "not an unsigned 64-bit integer")
            }
        }
        func uint32(_ key: String) throws -> UInt32 {
            guard let v = UInt32(exactly: try uint64(key)) else { throw fail(key, "out of the UInt32 range") }
            return v
        }
        func int32(_ key: String) throws -> Int32 {
            guard let v = Int32(exactly: try int64(key)) else { throw fail(key, "out of the Int32 range") }
            return v
        }
        func array(_ key: String) throws -> [JSON] {
            guard let a = try value(key).arrayValue else { throw fail(key, "not an array") }
            return a
        }
        func object(_ key: String) throws -> Fields {
            let v = try value(key)
            guard case .object = v else { throw fail(key, "not an object") }
            return Fields(v, context: context + key + ".")
        }
        func source() throws -> PhaseSource {
            let s = try string("source")
            guard let source = PhaseSource(rawValue: s) else { throw fail("source", "unknown source '\(s)'") }
            return source
        }
        func fileKey(_ key: String) throws -> FileKey {
            let f = try object(key)
            return FileKey(device: DeviceNumber(rawValue: try f.uint32("dev")), inode: try f.uint64("ino"))
        }
        func file(_ key: String) throws -> FileIdentity {
            let f = try object(key)
            return FileIdentity(key: try f.fileKey("key"), dataKey: try f.fileKey("dataKey"), sizeBytes: try f.uint64("sizeBytes"),
                                mode: try f.uint32("mode"))
        }
        func path(_ key: String) throws -> ResolvedPath {
            let p = try object(key)
            return ResolvedPath(path: try p.string("path"), truncated: try p.bool("truncated"))
        }
        func task(_ key: String) throws -> TaskContext {
            let t = try object(key)
            return TaskContext(pid: try t.uint32("pid"), tid: try t.uint32("tid"), parentPid: try t.uint32("ppid"),
                               namespacePid: try t.uint32("nsPid"), mountNamespace: try t.uint32("mntns"),
                               pidNamespace: try t.uint32("pidns"), cgroupID: try t.uint64("cgroupId"), comm: try t.string("comm"))
        }
        func timestamp(_ key: String) throws -> KubeletTimestamp? {
            guard let v = json[key], !v.isNull else { return nil }
            let t = try object(key)
            return KubeletTimestamp(nanosecondsSinceEpoch: try t.int64("unixNano"),
                                    monotonicNanoseconds: try t.optional("monotonicNano") { try $0.int64("monotonicNano") })
        }
    }
}
