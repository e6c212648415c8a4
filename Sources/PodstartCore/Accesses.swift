/// Where a path inside a container comes from: which image layer provides it, and the file the
/// kernel's page-cache events name (on overlayfs, the lower layer's file on the host).
public struct LayerLocation: Hashable, Sendable {
    public var layerDigest: String?
    public var dataFile: FileKey
    public init(layerDigest: String?, dataFile: FileKey) {
        self.layerDigest = layerDigest
        self.dataFile = dataFile
    }
}

/// Builds one container's access list from the kernel's records: which files it opened or
/// executed, when first (relative to its first exec), how often, and which byte ranges it read.
/// Pure: the join from a path to the file that holds its pages comes in as `resolve`.
public struct AccessTracker: Sendable {
    struct FileSeen {
        var path: String
        var firstNs: UInt64
        var opens: UInt64
        var file: FileIdentity
    }

    public let mountNamespace: UInt32
    private var files: [String: FileSeen] = [:]
    private var ranges: [FileKey: [Interval]] = [:]
    public private(set) var firstExecNs: UInt64?
    /// Processes that executed a program in this namespace (the container's init among them):
    /// tells an exit of this container's init from a late exit of the previous holder of the number.
    public private(set) var execPids: Set<UInt32> = []
    /// FUSE requests the namespace's tasks waited on (a lazy-pull snapshotter's fetches), at most
    /// `maxFuseRequests`: past it the rest are counted in `fuseRequestsDropped`, not kept.
    public private(set) var fuseRequests: [FuseRequestEvent] = []
    public private(set) var fuseRequestsDropped: UInt64 = 0
    public static let maxFuseRequests = 65_536
    /// Changes to `files` (each `note`), and the open counts last applied at which version.
    private var filesVersion: UInt64 = 0
    private var lastOpenCounts: (counts: [OpenCount], filesVersion: UInt64)?

    /// Paths under these prefixes are not image content (pseudo file systems).
    public static let ignoredPrefixes = ["/proc/", "/sys/", "/dev/"]

    public init(mountNamespace: UInt32) { self.mountNamespace = mountNamespace }

    public mutating func add(_ event: KernelEvent) {
        switch event {
        case .exec(let e) where e.task.mountNamespace == mountNamespace:
            if firstExecNs == nil || e.timestampNs < firstExecNs! { firstExecNs = e.timestampNs }
            execPids.insert(e.task.pid)
            note(path: e.path.path, file: e.file, at: e.timestampNs, count: 1)
        case .open(let e) where e.task.mountNamespace == mountNamespace:
            if let path = e.path, let file = e.file { note(path: path.path, file: file, at: e.timestampNs, count: 1) }
        case .readRange(let r) where r.mountNamespace == mountNamespace && r.source == .access:
            ranges[r.file, default: []].append(r.byteRange)
        case .fuseRequest(let f) where f.task.mountNamespace == mountNamespace:
            if fuseRequests.count < Self.maxFuseRequests { fuseRequests.append(f) } else { fuseRequestsDropped &+= 1 }
        default:
            break
        }
    }

    /// Adds the in-kernel open counts (the first open was a record; repeats only counted).
    public mutating func add(openCounts: [OpenCount]) {
        // The agent reads the kernel's counts again and again while a start is open, mostly
        // unchanged: the same counts on the same files change nothing, so they are not applied again.
        if let last = lastOpenCounts, last.filesVersion == filesVersion, last.counts == openCounts { return }
        let byKey = Dictionary(openCounts.filter { $0.mountNamespace == mountNamespace }.compactMap { c in c.file.map { ($0, c.count) } },
                               uniquingKeysWith: +)
        // updated in place by position: no path is hashed again
        var i = files.values.startIndex
        while i != files.values.endIndex {
            if let count = byKey[files.values[i].file.key], count > files.values[i].opens { files.values[i].opens = count }
            files.values.formIndex(after: &i)
        }
        lastOpenCounts = (openCounts, filesVersion)
    }

    private mutating func note(path: String, file: FileIdentity, at ns: UInt64, count: UInt64) {
        guard file.isRegularFile, !Self.ignoredPrefixes.contains(where: { path.hasPrefix($0) }) else { return }
        filesVersion &+= 1
        if var seen = files[path] {
            seen.opens += count
            seen.firstNs = min(seen.firstNs, ns)
            files[path] = seen
        } else {
            files[path] = FileSeen(path: path, firstNs: ns, opens: count, file: file)
        }
    }

    /// The accesses, ordered by first access. `resolve` maps a path to its layer and data file;
    /// without it (or when it returns nil) the data file is the one the open named.
    public func accesses(resolve: (String, FileIdentity) -> LayerLocation? = { _, _ in nil }) -> [PodStartTrace.Access] {
        let origin = firstExecNs ?? files.values.map(\.firstNs).min() ?? 0
        var result: [(UInt64, PodStartTrace.Access)] = []
        for seen in files.values {
            let location = resolve(seen.path, seen.file)
            // Before the container's first exec its mount namespace belongs to the runtime (runc
            // init still on the host's root): what it opened outside the image is not the
            // container's. What it read from the image (e.g. /etc/passwd for the user) is kept.
            if let firstExecNs, seen.firstNs < firstExecNs, location?.layerDigest == nil { continue }
            let dataFile = location?.dataFile ?? seen.file.dataKey
            let size = Int64(seen.file.sizeBytes)
            let merged = PhaseAttribution.union(ranges[dataFile] ?? []).compactMap {
                $0.clamped(to: Interval(start: 0, end: size))
            }
            // the open or exec is the access; an exec's own page reads come just before its event
            let first = seen.firstNs
            let access = PodStartTrace.Access(
                path: seen.path, layerDigest: location?.layerDigest,
                firstAccessMs: Double(Int64(first) - Int64(origin)) / 1e6,
                opens: seen.opens,
                bytes: UInt64(merged.reduce(0) { $0 + $1.duration }),
                ranges: merged.map { [UInt64($0.start), UInt64($0.duration)] },
                sizeBytes: seen.file.sizeBytes)
            result.append((first, access))
        }
        return result.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.path < $1.1.path }.map(\.1)
    }
}

extension AccessTracker {
    /// When the namespace's tasks had a FUSE request in flight: [send, reply] of each, merged
    /// (CLOCK_MONOTONIC ns as Int64; the correlator converts).
    public var fuseWaits: [Interval] {
        PhaseAttribution.union(fuseRequests.map {
            Interval(start: Int64(clamping: $0.sendNs), end: Int64(clamping: max($0.timestampNs, $0.sendNs)))
        })
    }

    /// The FUSE requests by file: a read is named by the file whose page-cache fill it served
    /// (its inode on the FUSE file system), matched to the path the container opened it by
    /// through `resolve`'s data file (on overlayfs, the lower layer's file), else the open's own
    /// data inode. Requests no file is named for are grouped by operation, with no path. Ordered
    /// by first request.
    public func lazyFetches(resolve: (String, FileIdentity) -> LayerLocation? = { _, _ in nil }) -> [PodStartTrace.LazyFetch] {
        guard !fuseRequests.isEmpty else { return [] }
        var byData: [FileKey: (path: String, layer: String?)] = [:]
        for seen in files.values.sorted(by: { $0.firstNs < $1.firstNs }) {
            let location = resolve(seen.path, seen.file)
            for key in [location?.dataFile, seen.file.dataKey, seen.file.key].compactMap({ $0 }) where byData[key] == nil {
                byData[key] = (seen.path, location?.layerDigest)
            }
        }
        struct Group { var path: String?; var layer: String?; var operation: String; var requests: UInt64 = 0
            var bytes: UInt64 = 0; var waitNs: UInt64 = 0; var firstNs: UInt64 = .max }
        var groups: [String: Group] = [:]
        for r in fuseRequests {
            let named = r.opcode == FuseRequestEvent.readOpcode ? r.file.flatMap { byData[$0] } : nil
            let operation = r.opcodeName
            // unnamed reads of a known inode stay apart from each other (and say which inode)
            let key = named.map { "f\u{0}\($0.path)" } ?? "o\u{0}\(operation)"
            var g = groups[key] ?? Group(path: named?.path, layer: named?.layer, operation: operation)
            g.requests &+= 1
            g.bytes &+= r.replyDataBytes
            g.waitNs &+= r.durationNs
            g.firstNs = min(g.firstNs, r.sendNs)
            groups[key] = g
        }
        let origin = firstExecNs ?? fuseRequests.map(\.sendNs).min() ?? 0
        return groups.values.sorted { $0.firstNs != $1.firstNs ? $0.firstNs < $1.firstNs : ($0.path ?? $0.operation) < ($1.path ?? $1.operation) }
            .map { g in
                PodStartTrace.LazyFetch(path: g.path, layerDigest: g.layer, operation: g.operation, requests: g.requests, bytes: g.bytes,
                                        waitSeconds: Double(g.waitNs) / 1e9,
                                        firstRequestMs: Double(Int64(clamping: g.firstNs) - Int64(clamping: origin)) / 1e6)
            }
    }
}

/// Tells download from decompress in the runtime's writes (docs/inputs.md#containerd-on-disk-layout):
/// writes into the content store's ingest directory are bytes arriving; writes into snapshot
/// directories (or the temporary mounts the applier uses) are layers being unpacked.
public enum PullWriteClassifier {
    public enum Kind: Hashable, Sendable { case download, decompress }

    public static func classify(path: String) -> Kind? {
        // Called for every write the runtime begins: compare bytes, not Characters.
        func kind(_ p: UnsafeBufferPointer<UInt8>) -> Kind? {
            if p.contains(bytes: "/io.containerd.content.v1.content/ingest/") { return .download }
            if p.contains(bytes: "/io.containerd.snapshotter.v1.") && p.contains(bytes: "/snapshots/") { return .decompress }
            if p.contains(bytes: "/tmpmounts/containerd-mount") { return .decompress }
            return nil
        }
        return path.utf8.withContiguousStorageIfAvailable(kind) ?? Array(path.utf8).withUnsafeBufferPointer(kind)
    }

    /// What a pull write belongs to: its kind and its unit of work, the blob being downloaded
    /// (its ingest directory) or the layer being unpacked (the snapshot directory or the
    /// applier's temporary mount it is written into).
    public struct Target: Hashable, Sendable {
        public var kind: Kind
        /// `…/ingest/<ref>`, `…/snapshots/<id>` or `…/tmpmounts/containerd-mount<n>`.
        public var unit: String?
        public init(kind: Kind, unit: String? = nil) { self.kind = kind; self.unit = unit }
    }

    private static let downloadUnitMarkers: [StaticString] = ["/ingest/"]
    private static let unpackUnitMarkers: [StaticString] = ["/snapshots/", "/tmpmounts/"]

    /// `classify(path:)` with the unit the write belongs to.
    public static func target(path: String) -> Target? {
        guard let kind = classify(path: path) else { return nil }
        // Called for every write the runtime begins, like classify: bytes, not Characters (a
        // Substring search here was 40% of the correlator's time).
        func unit(_ p: UnsafeBufferPointer<UInt8>) -> String? {
            for marker in kind == .download ? downloadUnitMarkers : unpackUnitMarkers {
                guard let found = p.firstOffset(of: marker) else { continue }
                // the directory right under the marker: the ingest ref, the snapshot id, the mount's name
                var end = found + marker.utf8CodeUnitCount
                while end < p.count, p[end] != UInt8(ascii: "/") { end += 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: p[..<end]), as: UTF8.self)
            }
            return nil
        }
        let found = path.utf8.withContiguousStorageIfAvailable(unit) ?? Array(path.utf8).withUnsafeBufferPointer(unit)
        return Target(kind: kind, unit: found)
    }

    /// One process writing one file: what a begin record and a write total share. The file is
    /// its inode number and generation: containerd deletes small ingest files during a pull and
    /// the file system gives their numbers to the layer files unpacked next, which must not
    /// inherit "download".
    public struct WriteKey: Hashable, Sendable {
        public var pid: UInt32
        public var file: FileKey
        public var generation: UInt32
        public init(pid: UInt32, file: FileKey, generation: UInt32 = 0) { self.pid = pid; self.file = file; self.generation = generation }
        public init(_ begin: WriteBeginEvent) { self.init(pid: begin.task.pid, file: begin.file.key, generation: begin.fileGeneration) }
        public init(_ total: WriteTotal) { self.init(pid: total.pid, file: total.file, generation: total.fileGeneration) }
    }

    /// Intervals (Unix ns) during which the runtime wrote downloads and unpacked layers.
    public static func intervals(begins: [WriteBeginEvent], totals: [WriteTotal], clock: WallClock)
        -> (download: [Interval], decompress: [Interval])
    {
        var targets: [WriteKey: Target] = [:]
        for b in begins where b.isRuntimeProcess {
            if let target = target(path: b.path.path) { targets[WriteKey(b)] = target }
        }
        return intervals(totals: totals, clock: clock) { targets[$0] }
    }

    /// The same from begins classified once, as they arrived (`target` of a write not a pull's:
    /// nil). Each unit is one interval, from its first write to its last:
    /// - a blob's download begins when containerd opens its ingest (it writes the `ref` and
    ///   `startedat` files, then sends the request) and its data arrive in writes of 1 MiB
    ///   (containerd fills its copy buffer before each write), so a blob of 1 MiB or less shows
    ///   no write until all of it has arrived;
    /// - a layer's unpack runs from its first file to its last: between two small files the
    ///   applier reads the tar stream and sets owners, modes and times, which is unpacking too.
    public static func intervals(totals: [WriteTotal], clock: WallClock, target: (WriteKey) -> Target?)
        -> (download: [Interval], decompress: [Interval])
    {
        var download: [Interval] = [], decompress: [Interval] = []
        var units: [Target: Interval] = [:]
        for t in totals {
            guard let target = target(WriteKey(t)) else { continue }
            // a single write still took place at an instant: give it a nanosecond so it counts
            let i = Interval(start: clock.unixNanoseconds(monotonic: t.firstNs), end: clock.unixNanoseconds(monotonic: t.lastNs).saturatingAdd(1))
            if target.unit != nil {
                units[target] = units[target].map { Interval(start: min($0.start, i.start), end: max($0.end, i.end)) } ?? i
            } else if target.kind == .download {
                download.append(i)
            } else {
                decompress.append(i)
            }
        }
        for (target, i) in units {
            if target.kind == .download { download.append(i) } else { decompress.append(i) }
        }
        return (PhaseAttribution.union(download), PhaseAttribution.union(decompress))
    }
}

/// How far a pull has got, in bytes the runtime wrote: into the content store (downloaded) and
/// into snapshots (unpacked).
public struct PullProgress: Hashable, Sendable {
    public var downloadedBytes: UInt64 = 0
    public var unpackedBytes: UInt64 = 0
    public init(downloadedBytes: UInt64 = 0, unpackedBytes: UInt64 = 0) {
        self.downloadedBytes = downloadedBytes
        self.unpackedBytes = unpackedBytes
    }
}

extension PullWriteClassifier {
    /// The bytes written so far by kind, from write totals whose begins were classified.
    public static func progress(totals: [WriteTotal], kind: (WriteKey) -> Kind?) -> PullProgress {
        var p = PullProgress()
        for t in totals {
            switch kind(WriteKey(t)) {
            case .download?: p.downloadedBytes &+= t.bytes
            case .decompress?: p.unpackedBytes &+= t.bytes
            case nil: break
            }
        }
        return p
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// Whether the bytes hold `needle`'s UTF-8 bytes somewhere.
    func contains(bytes needle: StaticString) -> Bool { firstOffset(of: needle) != nil }

    /// Where `needle`'s UTF-8 bytes first start in these bytes.
    func firstOffset(of needle: StaticString) -> Int? {
        needle.withUTF8Buffer { n in
            guard n.count <= count else { return nil }
            var i = 0
            search: while i <= count - n.count {
                for j in 0..<n.count where self[i + j] != n[j] { i += 1; continue search }
                return i
            }
            return nil
        }
    }
}
