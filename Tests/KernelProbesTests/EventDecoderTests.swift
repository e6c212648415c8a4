import CPodstartBPF
import Foundation
import KernelProbes
import PodstartCore
import Testing

/// Decoding raw ring-buffer records, without a kernel: the layout the Swift side sees must be the
/// one the eBPF side writes, and damaged records must be rejected and counted, never trusted.
@Suite("Event records and their decoding")
struct EventDecoderTests {
    @Test func swiftSeesTheSameLayoutAsTheEBPFHeader() {
        // Sizes asserted in bpf/podstart_events.h with _Static_assert; offsets are what the BPF
        // compiler laid out (natural alignment, no packing).
        #expect(MemoryLayout<ps_event_header>.size == 16)
        #expect(MemoryLayout<ps_task_context>.size == 48)
        #expect(MemoryLayout<ps_file_identity>.size == 40)
        #expect(MemoryLayout<ps_exec_event>.size == 1144)
        #expect(MemoryLayout<ps_open_event>.size == 896)
        #expect(MemoryLayout<ps_fork_event>.size == 80)
        #expect(MemoryLayout<ps_exit_event>.size == 72)
        #expect(MemoryLayout<ps_read_range_event>.size == 64)
        #expect(MemoryLayout<ps_block_event>.size == 80)
        #expect(MemoryLayout<ps_write_begin_event>.size == 624)
        #expect(MemoryLayout<ps_open_key>.size == 24 && MemoryLayout<ps_open_cache_slot>.size == 32 && MemoryLayout<ps_range_key>.size == 24)
        #expect(MemoryLayout<ps_write_value>.size == 40 && MemoryLayout<ps_prog_stats>.size == 24)
        #expect(MemoryLayout<ps_open_event>.offset(of: \ps_open_event.task) == 16)
        #expect(MemoryLayout<ps_open_event>.offset(of: \ps_open_event.file) == 64)
        #expect(MemoryLayout<ps_open_event>.offset(of: \ps_open_event.result) == 104)
        #expect(MemoryLayout<ps_open_event>.offset(of: \ps_open_event.strings) == 128)
        #expect(MemoryLayout<ps_exec_event>.offset(of: \ps_exec_event.filename) == 120)
        #expect(MemoryLayout<ps_exec_event>.offset(of: \ps_exec_event.path) == 376)
        #expect(MemoryLayout<ps_exec_event>.offset(of: \ps_exec_event.args) == 888)
        #expect(MemoryLayout<ps_task_context>.offset(of: \ps_task_context.cgroup_id) == 24)
        #expect(MemoryLayout<ps_block_event>.offset(of: \ps_block_event.sector) == 32)
        #expect(MemoryLayout<ps_fuse_event>.size == 120)
        #expect(MemoryLayout<ps_fuse_event>.offset(of: \ps_fuse_event.send_ns) == 64)
        #expect(MemoryLayout<ps_fuse_event>.offset(of: \ps_fuse_event.connection) == 80)
        #expect(MemoryLayout<ps_fuse_event>.offset(of: \ps_fuse_event.error) == 96)
        #expect(MemoryLayout<ps_fuse_event>.offset(of: \ps_fuse_event.file_ino) == 104)
    }

    /// A FUSE_READ of a stargz layer as fuse.bpf.c writes it (values shaped like a lazily pulled
    /// container reading /data/random.bin in 128 KiB requests): the waiting task, the connection
    /// (the layer's FUSE mount), the reply's size and the filled file.
    static func fuseRecord(flags: UInt32 = UInt32(PS_FUSE_FILE_FROM_FILL)) -> [UInt8] {
        var e = ps_fuse_event()
        e.header.kind = UInt16(PS_EVENT_FUSE_REQUEST.rawValue)
        e.header.version = UInt16(PS_EVENT_VERSION)
        e.header.size = UInt32(MemoryLayout<ps_fuse_event>.size)
        e.header.timestamp_ns = 1_000_270_000
        e.task.pid = 4242
        e.task.tid = 4242
        e.task.mntns = 4026532871
        e.send_ns = 1_000_000_000
        e.unique = 118
        e.connection = (0 << 20) | 61
        e.opcode = 15
        e.in_len = 80
        e.out_len = 16 + 131_072
        e.error = 0
        e.flags = flags
        e.file_ino = 12
        e.file_dev = (0 << 20) | 61
        var bytes = withUnsafeBytes(of: &e) { Array($0) }
        let comm = Array("head".utf8) + [0]
        let commOffset = MemoryLayout<ps_fuse_event>.offset(of: \ps_fuse_event.task)! + MemoryLayout<ps_task_context>.offset(of: \ps_task_context.comm)!
        bytes.replaceSubrange(commOffset..<(commOffset + comm.count), with: comm)
        return bytes
    }

    /// The operation names of `lazyFetches` are the running kernel's own, from the symbol table
    /// of its fuse_request_send tracepoint (`{15, "FUSE_READ"}` → `read`): none is left as `opN`.
    @Test func everyFuseOpcodeTheKernelNamesHasThatName() throws {
        let path = "/sys/kernel/tracing/events/fuse/fuse_request_send/format"
        let format = try #require(try? String(contentsOfFile: path, encoding: .utf8),
                                  "cannot read \(path): run as root with tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing) on a kernel with the fuse tracepoints (6.14+)")
        let pairs = format.matches(of: /\{(\d+), "FUSE_([A-Z0-9_]+)"\}/).map { (UInt32($0.output.1)!, String($0.output.2).lowercased()) }
        #expect(pairs.count >= 40, "\(format)")
        for (opcode, name) in pairs {
            #expect(FuseRequestEvent.opcodeName(opcode) == name, "opcode \(opcode)")
        }
    }

    @Test func aFuseReadRecordDecodesToTheRequestTheTaskWaitedOn() throws {
        let record = [0xAA] + Self.fuseRecord()
        let event = try record.withUnsafeBytes { try EventDecoder().decode(UnsafeRawBufferPointer(rebasing: $0[1...])).get() }
        guard case .fuseRequest(let f) = event else { Issue.record("not a FUSE request: \(event)"); return }
        #expect(f.task.pid == 4242 && f.task.comm == "head" && f.task.mountNamespace == 4026532871)
        #expect(f.durationNs == 270_000 && f.sendNs == 1_000_000_000 && f.timestampNs == 1_000_270_000)
        #expect(f.connection == DeviceNumber(major: 0, minor: 61) && f.unique == 118)
        #expect(f.opcodeName == "read" && f.replyDataBytes == 131_072 && f.error == 0)
        #expect(f.file == FileKey(device: DeviceNumber(major: 0, minor: 61), inode: 12))
        // without the fill flag the inode fields mean nothing: no file
        let unnamed = try Self.fuseRecord(flags: 0).withUnsafeBytes { try EventDecoder().decode($0).get() }
        guard case .fuseRequest(let u) = unnamed else { Issue.record("not a FUSE request"); return }
        #expect(u.file == nil)
        // one byte short of the struct: truncated, not read past the end
        let short = Array(Self.fuseRecord().dropLast())
        if case .failure(let failure) = short.withUnsafeBytes({ EventDecoder().decode($0) }) {
            #expect(failure.reason == .truncated)
        } else { Issue.record("a short FUSE record was accepted") }
    }

    static func openRecord(path: String, raw: String, result: Int32 = 3, version: UInt16 = UInt16(PS_EVENT_VERSION),
                           syscall: Int32 = PS_SYSCALL_OPENAT) -> [UInt8] {
        var e = ps_open_event()
        e.header.kind = UInt16(PS_EVENT_OPEN.rawValue)
        e.header.version = version
        e.header.size = UInt32(MemoryLayout<ps_open_event>.size)
        e.header.timestamp_ns = 42
        e.task.pid = 7
        e.task.mntns = 4026532000
        e.result = result
        e.dirfd = -100
        e.syscall = UInt16(syscall)
        e.file.ino = 99
        e.file.dev = (8 << 20) | 1
        e.file.data_ino = 99
        e.file.data_dev = (8 << 20) | 1
        e.path_len = UInt16(path.utf8.count)
        e.raw_len = UInt16(raw.utf8.count)
        var bytes = withUnsafeBytes(of: &e) { Array($0) }
        let rawOffset = MemoryLayout<ps_open_event>.offset(of: \ps_open_event.strings)!
        let pathOffset = rawOffset + raw.utf8.count + 1  // packed: the path follows the raw path's NUL
        bytes.replaceSubrange(pathOffset..<(pathOffset + path.utf8.count), with: Array(path.utf8))
        bytes.replaceSubrange(rawOffset..<(rawOffset + raw.utf8.count), with: Array(raw.utf8))
        var comm = Array("ps-workload".utf8)
        comm.append(0)
        let commOffset = MemoryLayout<ps_open_event>.offset(of: \ps_open_event.task)! + MemoryLayout<ps_task_context>.offset(of: \ps_task_context.comm)!
        bytes.replaceSubrange(commOffset..<(commOffset + comm.count), with: comm)
        return bytes
    }

    @Test func anUnalignedOpenRecordDecodesToTheSameValues() throws {
        // One byte of padding in front: the ring buffer guarantees no alignment to the reader.
        let record = [0xAA] + Self.openRecord(path: "/etc/passwd", raw: "../etc/passwd")
        let event = record.withUnsafeBytes { EventDecoder().decode(UnsafeRawBufferPointer(rebasing: $0[1...])) }
        guard case .success(.open(let open)) = event else { Issue.record("not decoded: \(event)"); return }
        #expect(open.path?.path == "/etc/passwd")
        #expect(open.rawPath == "../etc/passwd")
        #expect(open.task.comm == "ps-workload")
        #expect(open.task.mountNamespace == 4026532000)
        #expect(open.file?.key == FileKey(device: DeviceNumber(major: 8, minor: 1), inode: 99))
        #expect(open.directoryFD == -100)
        #expect(open.timestampNs == 42)
    }

    @Test func eachSyscallValueDecodesToItsKind() {
        let kinds: [(Int32, OpenSyscall)] = [(PS_SYSCALL_OPENAT, .openat), (PS_SYSCALL_OPENAT2, .openat2),
                                             (PS_SYSCALL_OPEN, .open), (PS_SYSCALL_EXEC_INTERPRETER, .execInterpreter)]
        for (value, kind) in kinds {
            let record = Self.openRecord(path: "/lib64/ld-linux-x86-64.so.2", raw: "", result: 0, syscall: value)
            guard case .success(.open(let open)) = record.withUnsafeBytes({ EventDecoder().decode($0) }) else {
                Issue.record("syscall \(value) not decoded"); continue
            }
            #expect(open.syscall == kind)
            #expect(open.path?.path == "/lib64/ld-linux-x86-64.so.2")
        }
    }

    @Test func aFailedOpenHasNoPathOrFile() {
        var record = Self.openRecord(path: "", raw: "/nope", result: -2)
        let flagsOffset = MemoryLayout<ps_open_event>.offset(of: \ps_open_event.flags)!
        record[flagsOffset] = UInt8(PS_FLAG_PATH_UNRESOLVED)
        let event = record.withUnsafeBytes { EventDecoder().decode($0) }
        guard case .success(.open(let open)) = event else { Issue.record("not decoded"); return }
        #expect(open.errno == 2)
        #expect(open.path == nil && open.file == nil)
    }

    @Test(arguments: [0, 1, 15, 16, 100, 128, 131])
    func aTruncatedRecordIsRejectedNotTrusted(length: Int) {
        let record = Array(Self.openRecord(path: "/a", raw: "/a").prefix(length))
        let result = record.withUnsafeBytes { EventDecoder().decode($0) }
        guard case .failure(let failure) = result else { Issue.record("decoded a \(length)-byte record"); return }
        #expect(failure.reason == .truncated)
    }

    /// The kernel marks in header.size where an open record's data ends (after the path's NUL)
    /// and the reader copies only that much: such a record decodes exactly like the full one.
    @Test func anOpenRecordCutAfterItsPathDecodesLikeTheFullOne() {
        let full = Self.openRecord(path: "/etc/hostname", raw: "hostname")
        let used = MemoryLayout<ps_open_event>.offset(of: \ps_open_event.strings)! + "hostname".utf8.count + 1
            + "/etc/hostname".utf8.count + 1
        let cut = Array(full.prefix(used))
        let a = full.withUnsafeBytes { EventDecoder().decode($0) }
        let b = cut.withUnsafeBytes { EventDecoder().decode($0) }
        #expect((try? a.get()) != nil)
        #expect((try? a.get()) == (try? b.get()))
    }

    @Test func unknownVersionsAndKindsAreRejectedAndNamed() {
        let future = Self.openRecord(path: "/a", raw: "/a", version: 9)
        let r1 = future.withUnsafeBytes { EventDecoder().decode($0) }
        #expect((try? r1.get()) == nil)
        if case .failure(let f) = r1 { #expect(f.reason == .unknownVersion) }

        var unknown = Self.openRecord(path: "/a", raw: "/a")
        unknown[0] = 200
        let r2 = unknown.withUnsafeBytes { EventDecoder().decode($0) }
        if case .failure(let f) = r2 { #expect(f.reason == .unknownKind && f.kind == 200) } else { Issue.record("accepted kind 200") }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var generator = SystemRandomNumberGenerator()
        let base = Self.openRecord(path: "/usr/lib/x86_64-linux-gnu/libc.so.6", raw: "libc.so.6")
        for _ in 0..<2000 {
            var record = base
            for _ in 0..<Int.random(in: 1...32, using: &generator) {
                record[Int.random(in: 0..<record.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            record = Array(record.prefix(Int.random(in: 0...record.count, using: &generator)))
            _ = record.withUnsafeBytes { EventDecoder().decode($0) }
        }
    }

    /// Found by the kernel-record fuzz harness: a record whose timestamp is past Int64's end
    /// (damaged, or a recording edited by hand) trapped in the wall-clock conversion inside the
    /// correlator. Now it saturates, and the event is still handled.
    @Test(arguments: [UInt64.max, UInt64(Int64.max), UInt64(Int64.max) + 1])
    func aTimestampAtTheEndOfTheClockReachesTheCorrelatorWithoutTrapping(timestamp: UInt64) throws {
        var record = Self.openRecord(path: "/app/main.py", raw: "main.py")
        record.withUnsafeMutableBytes { $0.storeBytes(of: timestamp, toByteOffset: 8, as: UInt64.self) }
        let event = try record.withUnsafeBytes { try EventDecoder().decode($0).get() }
        #expect(event.timestampNs == timestamp)
        var correlator = Correlator(clock: WallClock(offsetNs: 1_700_000_000_000_000_000))
        _ = correlator.ingest(.kernel(event))
        _ = correlator.flush()
        #expect(WallClock(offsetNs: 1).unixNanoseconds(monotonic: timestamp) == .max)
        #expect(WallClock(offsetNs: -5).unixNanoseconds(monotonic: 10) == 5)
    }

    /// Found by the kernel-record fuzz harness: a read-range record whose page numbers put its
    /// bytes past UInt64's end trapped where the access tracker turned pages into bytes.
    @Test func aReadRangePastTheEndOfAFileRangeIsClampedNotTrapped() throws {
        var e = ps_read_range_event()
        e.header.kind = UInt16(PS_EVENT_READ_RANGE.rawValue)
        e.header.version = UInt16(PS_EVENT_VERSION)
        e.header.size = UInt32(MemoryLayout<ps_read_range_event>.size)
        e.header.timestamp_ns = 42
        e.mntns = 4026532000
        e.first_page = UInt64.max / 2
        e.page_count = UInt64.max
        let event = try withUnsafeBytes(of: &e) { try EventDecoder().decode($0).get() }
        guard case .readRange(let range) = event else { Issue.record("not a read range: \(event)"); return }
        #expect(range.offsetBytes == .max && range.lengthBytes == .max)
        #expect(range.byteRange == Interval(start: .max, end: .max))
        var tracker = AccessTracker(mountNamespace: 4026532000)
        tracker.add(event)
        var correlator = Correlator(clock: WallClock(offsetNs: 1_700_000_000_000_000_000))
        _ = correlator.ingest(.kernel(event))
    }

    @Test func deviceNumbersConvertBetweenKernelAndStatEncodings() {
        // makedev(259, 3) in glibc's encoding vs the kernel's major << 20 | minor
        let glibc: UInt64 = (259 & 0xfff) << 8 | (3 & 0xff) | ((259 & ~0xfff) << 32) | ((3 & ~0xff) << 12)
        #expect(DeviceNumber(userspace: glibc) == DeviceNumber(major: 259, minor: 3))
        #expect(DeviceNumber(major: 259, minor: 3).rawValue == (259 << 20) | 3)
        #expect(DeviceNumber(userspace: 0x801).description == "8:1")
    }
}
