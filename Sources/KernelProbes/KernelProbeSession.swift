import CPodstartBPF
import Foundation
import PodstartCore
import Synchronization

/// Which mount namespaces the hot-path programs report.
public enum MountNamespaceFilter: Hashable, Sendable {
    /// Every container that starts after the session opened: non-host mount namespaces that were
    /// not already in use (those go to the ignored set, as do containers whose start is over).
    case startingContainers
    /// Every non-host mount namespace, running containers included.
    case allContainers
    /// Only these mount namespaces.
    case only(Set<UInt32>)
}

/// The kernel side of podstart: loads the embedded eBPF objects, attaches and detaches program
/// families, filters in the kernel, and delivers records through the ring buffer. Owns every
/// libbpf resource; `close()` (or deinit) detaches everything.
public final class KernelProbeSession: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var filter: MountNamespaceFilter = .startingContainers
        /// Report opens, reads and writes of the container runtime and its children.
        public var traceRuntime = true
        public var ringBufferBytes: UInt32 = 8 << 20
        /// Bytes waiting in the ring buffer before the kernel wakes the reader (at most a
        /// quarter of the ring is used). Each wake-up costs the reader tens of microseconds on a
        /// VM (waking an idle vCPU), so the larger the batch, the less it pays per record.
        public var wakeupBytes: UInt64 = 2 << 20
        public var pollIntervalMs: Int32 = 100
        /// Batches the event stream holds before it drops (and counts) new ones.
        public var bufferedBatches = 4096
        /// Load the objects built for kernels with the bpf_rdonly_cast kfunc (6.2+) when the
        /// running kernel has it; false loads the builds every supported kernel takes.
        public var useKernelCasts = true
        public init() {}
    }

    public let configuration: Configuration
    public let hostMountNamespace: UInt32
    /// Programs switched off because the running kernel lacks their hook, with the reason.
    public let disabledPrograms: [String: String]
    /// The embedded object each family was loaded from (`files_cast` instead of `files` on
    /// kernels with bpf_rdonly_cast).
    public let loadedObjects: [ProbeFamily: String]

    private let lock = NSLock()
    private var objects: [ProbeFamily: BPFObject] = [:]
    private var attached: Set<ProbeFamily> = []
    private var reader: RingBufferReader?
    private var closed = false
    /// Names of the maps and programs the session reaches (typed: see BPFSkeleton).
    private typealias Process = BPFSkeleton.Process
    /// files_cast.bpf.c is files.bpf.c built for newer kernels: the same names.
    private typealias Files = BPFSkeleton.Files
    private typealias Filemap = BPFSkeleton.Filemap
    private typealias Writes = BPFSkeleton.Writes

    public init(configuration: Configuration = Configuration()) throws {
        try ProbeEnvironment.check()
        guard let host = ProcScanner.hostMountNamespace() else {
            throw BPFError.notPermitted(missing: ["read access to /proc/1/ns/mnt (CAP_SYS_PTRACE or hostPID)"])
        }
        self.configuration = configuration
        hostMountNamespace = host
        podstart_libbpf_capture_log()

        var disabled: [String: String] = [:]
        var loaded: [ProbeFamily: BPFObject] = [:]
        var sharedFDs: [String: Int32] = [:]
        let casts = configuration.useKernelCasts && podstart_kernel_has_kfunc("bpf_rdonly_cast") == 1
        var names: [ProbeFamily: String] = [:]
        for family in ProbeFamily.allCases {
            let skeleton = family.skeleton(kernelCasts: casts)
            names[family] = skeleton.objectName
            let object = try Self.load(skeleton, host: host, configuration: configuration, sharedFDs: &sharedFDs)
            for (program, reason) in object.disabledPrograms { disabled[program] = reason }
            loaded[family] = object
        }
        objects = loaded
        disabledPrograms = disabled
        loadedObjects = names

        try seedFilters()
    }

    deinit { close() }

    /// Opens an object, sets its tunables, makes it use the shared maps (the first object loaded
    /// creates them: its descriptors go to `sharedFDs`) and loads it.
    private static func load<S: PodstartObjectSkeleton>(_ skeleton: S.Type, host: UInt32, configuration: Configuration,
                                                         sharedFDs: inout [String: Int32]) throws -> BPFObject {
        let object = try BPFObject(S.self)
        try object.setReadOnlyGlobal(S.Global.ps_host_mntns, host)
        if case .only = configuration.filter {
            try object.setReadOnlyGlobal(S.Global.ps_only_watched, 1)
        }
        try object.setReadOnlyGlobal(S.Global.ps_wakeup_bytes, min(configuration.wakeupBytes, UInt64(configuration.ringBufferBytes / 4)))
        try object.setReadOnlyGlobal(S.Global.ps_trace_runtime, configuration.traceRuntime ? 1 : 0)
        if sharedFDs.isEmpty, let ring = object.map(S.Map.ps_events) {
            bpf_map__set_max_entries(ring, configuration.ringBufferBytes)
        }
        for map in S.Map.shared {
            if let fd = sharedFDs[map.rawValue] { try object.reuseMap(map, fd: fd) }
        }
        switchOffMissingHooks(object)
        try object.load()
        if sharedFDs.isEmpty {
            for map in S.Map.shared { sharedFDs[map.rawValue] = try object.mapFD(map) }
        }
        return object
    }

    /// A hook the running kernel lacks is switched off and reported, not a failed load.
    static func switchOffMissingHooks(_ object: BPFObject) {
        // By the real programs' names (from their objects' skeletons): the empty twins share them.
        typealias Opens = BPFSkeleton.Files.Program
        typealias Filemap = BPFSkeleton.Filemap.Program
        typealias Block = BPFSkeleton.Blockio.Program
        typealias Fuse = BPFSkeleton.Fuse.Program
        let tracepoints: [String: (String, String)] = [
            Opens.tracepoint__syscalls__sys_exit_openat2.rawValue: ("syscalls", "sys_exit_openat2"),
            Opens.tracepoint__syscalls__sys_exit_open.rawValue: ("syscalls", "sys_exit_open"),
            Filemap.tracepoint__filemap__mm_filemap_get_pages.rawValue: ("filemap", "mm_filemap_get_pages"),
            Filemap.tracepoint__filemap__mm_filemap_map_pages.rawValue: ("filemap", "mm_filemap_map_pages"),
            Filemap.tracepoint__filemap__mm_filemap_fault.rawValue: ("filemap", "mm_filemap_fault"),
            Fuse.tp_btf__fuse_request_send.rawValue: ("fuse", "fuse_request_send"),
            Fuse.tracepoint__fuse__fuse_request_end.rawValue: ("fuse", "fuse_request_end"),
        ]
        for program in object.programNames {
            if let (category, name) = tracepoints[program], podstart_tracepoint_exists(category, name) == 0 {
                object.disable(program: program, reason: "the kernel has no tracepoint \(category):\(name)")
            }
        }
        if object.programNames.contains(Block.tp_btf__block_io_start.rawValue) {
            if podstart_tracepoint_exists("block", "block_io_start") != 0 {
                object.disable(program: Block.tp_btf__block_rq_issue.rawValue, reason: "block_io_start is used instead")
                object.disable(program: Block.tp_btf__block_rq_complete.rawValue, reason: "block_io_done is used instead")
            } else {
                object.disable(program: Block.tp_btf__block_io_start.rawValue, reason: "the kernel has no block_io_start (before 6.5)")
                object.disable(program: Block.tp_btf__block_io_done.rawValue, reason: "the kernel has no block_io_done (before 6.5)")
            }
        }
    }

    /// Runtime processes already running go to the runtime set; mount namespaces already in use
    /// are not starts, so they go to the ignored set (unless every container is wanted).
    private func seedFilters() throws {
        let own = ProcScanner.mountNamespace(procEntry: "self")
        for process in ProcScanner.processes() {
            if ProcScanner.isRuntimeCommand(process.comm), process.mountNamespace == hostMountNamespace {
                try markRuntime(pid: process.pid)
            }
            if case .startingContainers = configuration.filter, let ns = process.mountNamespace, ns != hostMountNamespace {
                try ignore(mountNamespace: ns)
            }
        }
        if let own, own != hostMountNamespace { try ignore(mountNamespace: own) }
        if case .only(let set) = configuration.filter {
            for ns in set { try watch(mountNamespace: ns) }
        }
    }

    // MARK: attach / detach

    public var attachedFamilies: Set<ProbeFamily> { lock.withLock { attached } }

    public func attach(_ families: Set<ProbeFamily>) throws {
        try lock.withLock {
            for family in families.sorted() where !attached.contains(family) {
                try objects[family]?.attachAll()
                attached.insert(family)
            }
        }
    }

    public func detach(_ families: Set<ProbeFamily>) {
        lock.withLock {
            for family in families where attached.contains(family) {
                objects[family]?.detachAll()
                attached.remove(family)
            }
        }
    }

    /// Names of the programs attached right now (for tests and `podstart probe`).
    public var attachedPrograms: [String] {
        lock.withLock { objects.values.flatMap(\.attachedPrograms).sorted() }
    }

    // MARK: events

    /// The records, in batches. Starts the reader thread on first use; one consumer. A batch
    /// holds its stretch of the ring buffer until it is dropped: decode it and let it go (or keep
    /// `detached()` copies), or the ring fills and the kernel loses records.
    public func events() throws -> AsyncStream<RawEventBatch> {
        try lock.withLock {
            if let reader { return reader.stream }
            guard let process = objects[.process] else { throw BPFError.map(name: Process.Map.ps_events.rawValue, errno: EBADF) }
            let fd = try process.mapFD(Process.Map.ps_events)
            let r = try RingBufferReader(ringFD: fd, pollIntervalMs: configuration.pollIntervalMs,
                                         bufferedBatches: configuration.bufferedBatches)
            r.start()
            reader = r
            return r.stream
        }
    }

    /// The records as typed events (decoding on the consumer's side). Use either this or
    /// `events()`: both read the one stream.
    public func kernelEvents() throws -> KernelEventSequence {
        KernelEventSequence(batches: try events(), rejected: KernelEventSequence.RejectedRecords())
    }

    public struct ReaderStatistics: Sendable {
        /// Records handed to the consumer.
        public var records: UInt64
        /// Records dropped because the consumer fell behind (the stream's buffer was full).
        public var dropped: UInt64
        /// CPU time of the reader thread so far.
        public var cpuNanoseconds: UInt64
        /// Batches handed over (one per pass over the ring): records per batch is how well the
        /// wake-up threshold batches.
        public var batches: UInt64 = 0
    }

    public var readerStatistics: ReaderStatistics {
        lock.withLock {
            guard let reader else { return ReaderStatistics(records: 0, dropped: 0, cpuNanoseconds: 0) }
            return ReaderStatistics(records: reader.recordsRead.load(ordering: .relaxed),
                                    dropped: reader.recordsDropped.load(ordering: .relaxed),
                                    cpuNanoseconds: reader.readerCPUNanoseconds.load(ordering: .relaxed),
                                    batches: reader.batches.load(ordering: .relaxed))
        }
    }

    /// Per-program counters from the kernel, summed over CPUs.
    public func statistics() throws -> [ProbeProgram: ProgramStatistics] {
        let fd = try sharedFD(.ps_stats)
        let cpus = Int(libbpf_num_possible_cpus())
        let stride = (MemoryLayout<ps_prog_stats>.size + 7) & ~7
        var result: [ProbeProgram: ProgramStatistics] = [:]
        var buffer = [UInt8](repeating: 0, count: stride * max(cpus, 1))
        for (index, program) in ProbeProgram.allCases.enumerated() {
            var key = UInt32(index)
            let rc = buffer.withUnsafeMutableBytes { bpf_map_lookup_elem(fd, &key, $0.baseAddress) }
            if rc != 0 { throw BPFError.map(name: Process.Map.ps_stats.rawValue, errno: -rc) }
            var total = ProgramStatistics(events: 0, lost: 0, aggregated: 0)
            buffer.withUnsafeBytes { raw in
                for cpu in 0..<max(cpus, 1) {
                    let s = raw.loadUnaligned(fromByteOffset: cpu * stride, as: ps_prog_stats.self)
                    total.events += s.events
                    total.lost += s.lost
                    total.aggregated += s.aggregated
                }
            }
            result[program] = total
        }
        return result
    }

    /// The kernel's id of every loaded program, by program name: what tells this session's
    /// programs apart from other tracers' (or other sessions') in the kernel's own listings.
    public var programIDs: [String: UInt32] {
        lock.withLock {
            objects.values.reduce(into: [:]) { all, object in all.merge(object.programIDs()) { a, _ in a } }
        }
    }

    /// The kernel's run-time readings of every loaded program, by program name (all zero unless
    /// `RunTimeStatistics` or `kernel.bpf_stats_enabled` has them counted).
    public func programRunTimes() -> [String: ProgramRunTime] {
        lock.withLock {
            objects.values.reduce(into: [:]) { all, object in all.merge(object.programRunTimes()) { a, _ in a } }
        }
    }

    // MARK: filters

    public func ignore(mountNamespace ns: UInt32) throws { try update(map: .ps_ignored_mntns, key: ns) }
    public func unignore(mountNamespace ns: UInt32) throws { try delete(map: .ps_ignored_mntns, key: ns) }
    public func watch(mountNamespace ns: UInt32) throws { try update(map: .ps_watched_mntns, key: ns) }
    public func unwatch(mountNamespace ns: UInt32) throws { try delete(map: .ps_watched_mntns, key: ns) }
    public func markRuntime(pid: UInt32) throws { try update(map: .ps_runtime_pids, key: pid) }

    public func isIgnored(mountNamespace ns: UInt32) throws -> Bool {
        let fd = try sharedFD(.ps_ignored_mntns)
        var key = ns
        var value: UInt8 = 0
        return bpf_map_lookup_elem(fd, &key, &value) == 0
    }

    /// A shared map (the process object created it; see CommonMaps).
    private func sharedFD(_ map: Process.Map) throws -> Int32 {
        try objectFD(.process, map)
    }

    /// A map's descriptor; after `close()` the maps are gone and this throws (EBADF).
    private func objectFD(_ family: ProbeFamily, _ map: some BPFMapName) throws -> Int32 {
        try lock.withLock {
            guard let object = objects[family] else { throw BPFError.map(name: map.rawValue, errno: EBADF) }
            return try object.mapFD(map)
        }
    }

    private func update(map: Process.Map, key: UInt32) throws {
        let fd = try sharedFD(map)
        var k = key
        var one: UInt8 = 1
        let rc = bpf_map_update_elem(fd, &k, &one, UInt64(BPF_ANY))
        if rc != 0 { throw BPFError.map(name: map.rawValue, errno: -rc) }
        try invalidateVerdicts(after: map)
    }

    private func delete(map: Process.Map, key: UInt32) throws {
        let fd = try sharedFD(map)
        var k = key
        let rc = bpf_map_delete_elem(fd, &k)
        if rc != 0 && rc != -ENOENT { throw BPFError.map(name: map.rawValue, errno: -rc) }
        try invalidateVerdicts(after: map)
    }

    /// The kernel caches its last filter verdict per CPU, tagged with a generation: a change to
    /// the ignored or watched set bumps it so no stale verdict survives the change.
    private func invalidateVerdicts(after map: Process.Map) throws {
        guard map == .ps_ignored_mntns || map == .ps_watched_mntns else { return }
        let fd = try sharedFD(.ps_filter_generation)
        try lock.withLock {
            var zero: UInt32 = 0
            var generation: UInt64 = 0
            _ = bpf_map_lookup_elem(fd, &zero, &generation)
            generation &+= 1
            let rc = bpf_map_update_elem(fd, &zero, &generation, UInt64(BPF_ANY))
            if rc != 0 { throw BPFError.map(name: Process.Map.ps_filter_generation.rawValue, errno: -rc) }
        }
    }

    // MARK: aggregates

    /// Opens counted in the kernel. With `mountNamespaces`, only those (and, with `remove`,
    /// their entries are deleted: a finished start frees its room).
    public func openCounts(mountNamespaces: Set<UInt32>? = nil, remove: Bool = false) throws -> [OpenCount] {
        let fd = try objectFD(.opens, Files.Map.ps_opens)
        let include = { (key: ps_open_key) in mountNamespaces?.contains(key.mntns) ?? true }
        // Repeat opens still counted in the per-CPU cache slots belong to the totals too.
        let pending = try pendingCachedOpens(remove: remove, where: include)
        return try Self.entries(fd: fd, map: Files.Map.ps_opens.rawValue, key: ps_open_key.self, value: ps_open_value.self,
                                remove: remove, where: include)
            .map { key, value in
                OpenCount(mountNamespace: key.mntns,
                          file: key.dev == 0 ? nil : FileKey(device: DeviceNumber(rawValue: key.dev), inode: key.ino),
                          pathHash: key.dev == 0 ? key.ino : nil,
                          count: value.count + pending[OpenKey(key), default: 0], firstNs: value.first_ns)
            }
    }

    private struct OpenKey: Hashable {
        var mntns: UInt32, dev: UInt32, ino: UInt64, inode: UInt64
        init(_ k: ps_open_key) { (mntns, dev, ino, inode) = (k.mntns, k.dev, k.ino, k.inode) }
    }

    /// Sums the counts waiting in ps_open_cache (per CPU) by file; with `remove`, empties every
    /// slot of the included files, counted or not: a slot still naming a removed file would take
    /// the next open of it in a namespace with the same number (the kernel reuses them at once)
    /// for a repeat, and no record would say the file was opened. A slot the kernel refills
    /// between the read and the write-back loses the opens it counted meanwhile: remove only
    /// what has stopped starting.
    private func pendingCachedOpens(remove: Bool, where include: (ps_open_key) -> Bool) throws -> [OpenKey: UInt64] {
        let fd = try objectFD(.opens, Files.Map.ps_open_cache)
        let cpus = max(Int(libbpf_num_possible_cpus()), 1)
        let stride = (MemoryLayout<ps_open_cache_slot>.size + 7) & ~7
        var buffer = [UInt8](repeating: 0, count: stride * cpus)
        var pending: [OpenKey: UInt64] = [:]
        for index in 0..<UInt32(PS_OPEN_CACHE_SLOTS) {
            var key = index
            let rc = buffer.withUnsafeMutableBytes { bpf_map_lookup_elem(fd, &key, $0.baseAddress) }
            if rc != 0 { throw BPFError.map(name: Files.Map.ps_open_cache.rawValue, errno: -rc) }
            var emptied = false
            buffer.withUnsafeMutableBytes { raw in
                for cpu in 0..<cpus {
                    let slot = raw.loadUnaligned(fromByteOffset: cpu * stride, as: ps_open_cache_slot.self)
                    let taken = slot.key.mntns != 0 || slot.key.dev != 0 || slot.key.ino != 0
                    guard taken, include(slot.key) else { continue }
                    if slot.count > 0 { pending[OpenKey(slot.key), default: 0] += slot.count }
                    if remove {
                        raw.storeBytes(of: ps_open_cache_slot(), toByteOffset: cpu * stride, as: ps_open_cache_slot.self)
                        emptied = true
                    }
                }
            }
            if emptied {
                let rc = buffer.withUnsafeMutableBytes { bpf_map_update_elem(fd, &key, $0.baseAddress, UInt64(BPF_ANY)) }
                if rc != 0 { throw BPFError.map(name: Files.Map.ps_open_cache.rawValue, errno: -rc) }
            }
        }
        return pending
    }

    /// Write totals per (process, file: device, inode number and generation).
    public func writeTotals(remove: Bool = false) throws -> [WriteTotal] {
        let fd = try objectFD(.writes, Writes.Map.ps_writes)
        return try Self.entries(fd: fd, map: Writes.Map.ps_writes.rawValue, key: ps_write_key.self, value: ps_write_value.self,
                                remove: remove, where: { _ in true })
            .map { key, value in
                WriteTotal(pid: key.pid, file: FileKey(device: DeviceNumber(rawValue: key.dev), inode: key.ino),
                           fileGeneration: key.generation, mountNamespace: value.mntns, firstNs: value.first_ns, lastNs: value.last_ns,
                           bytes: value.bytes, writes: value.writes,
                           isRuntimeProcess: value.flags & UInt32(PS_FLAG_RUNTIME_PROCESS) != 0)
            }
    }

    /// The runs of pages still open in the kernel (each is emitted as a record only when a
    /// non-contiguous access replaces it). Draining removes them, so call it when a start is over.
    public func drainReadRanges(mountNamespaces: Set<UInt32>? = nil) throws -> [ReadRangeEvent] {
        let fd = try objectFD(.reads, Filemap.Map.ps_ranges)
        let now = WallClock.monotonicNow()
        // The kernel's per-CPU range cache remembers pages inside runs; runs removed here must
        // not be remembered, so its generation moves before and after the removal.
        try bumpRangeGeneration()
        defer { try? bumpRangeGeneration() }
        return try Self.entries(fd: fd, map: Filemap.Map.ps_ranges.rawValue, key: ps_range_key.self, value: ps_range_value.self,
                                remove: true, where: { mountNamespaces?.contains($0.mntns) ?? true })
            .map { key, value in
                ReadRangeEvent(timestampNs: now, mountNamespace: key.mntns,
                               file: FileKey(device: DeviceNumber(rawValue: key.dev), inode: key.ino),
                               firstPage: value.first_page, pageCount: value.end_page - value.first_page,
                               firstAccessNs: value.first_ns, pid: value.pid,
                               source: key.source == UInt32(PS_RANGE_FILL) ? .fill : .access)
            }
    }

    /// Invalidates every slot of the kernel's range cache. The kernel bumps the same counter by
    /// one (atomically) while this read-modify-write runs; adding 2^32 gives a value none of its
    /// concurrent bumps can have produced, so no slot tagged meanwhile survives either.
    private func bumpRangeGeneration() throws {
        let fd = try objectFD(.reads, Filemap.Map.ps_range_generation)
        var zero: UInt32 = 0
        var generation: UInt64 = 0
        _ = bpf_map_lookup_elem(fd, &zero, &generation)
        generation &+= 1 << 32
        let rc = bpf_map_update_elem(fd, &zero, &generation, UInt64(BPF_ANY))
        if rc != 0 { throw BPFError.map(name: Filemap.Map.ps_range_generation.rawValue, errno: -rc) }
    }

    private static func entries<K: BitwiseCopyable, V: BitwiseCopyable>(fd: Int32, map: String, key: K.Type, value: V.Type, remove: Bool,
                                      where include: (K) -> Bool) throws -> [(K, V)] {
        var keys: [K] = []
        let keyBuffer = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<K>.size, alignment: 8)
        let nextBuffer = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<K>.size, alignment: 8)
        defer { keyBuffer.deallocate(); nextBuffer.deallocate() }
        var previous: UnsafeMutableRawPointer? = nil
        while bpf_map_get_next_key(fd, previous, nextBuffer) == 0 {
            keys.append(nextBuffer.loadUnaligned(as: K.self))
            keyBuffer.copyMemory(from: nextBuffer, byteCount: MemoryLayout<K>.size)
            previous = keyBuffer
        }
        var result: [(K, V)] = []
        let valueBuffer = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<V>.size, alignment: 8)
        defer { valueBuffer.deallocate() }
        for var k in keys where include(k) {
            guard bpf_map_lookup_elem(fd, &k, valueBuffer) == 0 else { continue } // evicted meanwhile
            result.append((k, valueBuffer.loadUnaligned(as: V.self)))
            if remove { _ = bpf_map_delete_elem(fd, &k) }
        }
        return result
    }

    // MARK: teardown

    /// Detaches every program, stops the reader and releases the objects. Idempotent.
    public func close() {
        let (r, objs): (RingBufferReader?, [BPFObject]) = lock.withLock {
            guard !closed else { return (nil, []) }
            closed = true
            for object in objects.values { object.detachAll() }
            attached.removeAll()
            let r = reader
            reader = nil
            let objs = Array(objects.values)
            objects.removeAll()
            return (r, objs)
        }
        r?.stop()
        _ = objs  // released here, after the reader stopped using the ring buffer
    }
}
