import CPodstartBPF
import PodstartCore

/// Turns raw ring-buffer records into `KernelEvent`s. Records may be unaligned: fixed parts are
/// read with `loadUnaligned`, strings straight from their offsets. A record that is too short for
/// its kind, of an unknown kind, or of another version is skipped and counted, never trusted.
public struct EventDecoder: Sendable {
    public enum Rejection: String, Sendable, CaseIterable {
        case truncated, unknownKind, unknownVersion
    }

    public init() {}

    public func decode(_ record: UnsafeRawBufferPointer) -> Result<KernelEvent, DecodeFailure> {
        guard record.count >= MemoryLayout<ps_event_header>.size else {
            return .failure(DecodeFailure(reason: .truncated, kind: 0))
        }
        let header = record.loadUnaligned(as: ps_event_header.self)
        guard header.version == PS_EVENT_VERSION else {
            return .failure(DecodeFailure(reason: .unknownVersion, kind: header.kind))
        }
        func need<T>(_: T.Type) -> Bool { record.count >= MemoryLayout<T>.size }
        // Open and write-begin records may end right after their path's NUL (header.size).
        func needUpTo<T>(_: T.Type, _ lastField: PartialKeyPath<T>) -> Bool {
            record.count >= MemoryLayout<T>.offset(of: lastField)! + 1
        }
        switch UInt32(header.kind) {
        case PS_EVENT_EXEC.rawValue:
            guard need(ps_exec_event.self) else { break }
            return .success(.exec(decodeExec(record, header)))
        case PS_EVENT_FORK.rawValue:
            guard need(ps_fork_event.self) else { break }
            let e = record.loadUnaligned(as: ps_fork_event.self)
            return .success(.fork(ForkEvent(
                timestampNs: header.timestamp_ns, parent: Self.task(e.task, record, at: Self.offset(\ps_fork_event.task)),
                childPid: e.child_pid, isRuntimeProcess: e.flags & UInt32(PS_FLAG_RUNTIME_PROCESS) != 0)))
        case PS_EVENT_EXIT.rawValue:
            guard need(ps_exit_event.self) else { break }
            let e = record.loadUnaligned(as: ps_exit_event.self)
            return .success(.exit(ExitEvent(
                timestampNs: header.timestamp_ns, task: Self.task(e.task, record, at: Self.offset(\ps_exit_event.task)),
                waitStatus: e.exit_code, isRuntimeProcess: e.flags & UInt32(PS_FLAG_RUNTIME_PROCESS) != 0)))
        case PS_EVENT_OPEN.rawValue:
            guard needUpTo(ps_open_event.self, \ps_open_event.strings) else { break }
            guard let open = decodeOpen(record, header) else { break }
            return .success(.open(open))
        case PS_EVENT_READ_RANGE.rawValue:
            guard need(ps_read_range_event.self) else { break }
            let e = record.loadUnaligned(as: ps_read_range_event.self)
            return .success(.readRange(ReadRangeEvent(
                timestampNs: header.timestamp_ns, mountNamespace: e.mntns,
                file: FileKey(device: DeviceNumber(rawValue: e.dev), inode: e.ino),
                firstPage: e.first_page, pageCount: e.page_count, firstAccessNs: e.first_ns, pid: e.pid,
                source: e.source == UInt32(PS_RANGE_FILL) ? .fill : .access)))
        case PS_EVENT_BLOCK_IO.rawValue:
            guard need(ps_block_event.self) else { break }
            let e = record.loadUnaligned(as: ps_block_event.self)
            let op: BlockOperation = switch e.op {
            case UInt32(PS_BLOCK_READ): .read
            case UInt32(PS_BLOCK_WRITE): .write
            default: .other
            }
            return .success(.blockIO(BlockIOEvent(
                timestampNs: header.timestamp_ns, device: DeviceNumber(rawValue: e.dev),
                mountNamespace: e.mntns == 0 ? nil : e.mntns, pid: e.pid,
                comm: Self.string(record, at: Self.offset(\ps_block_event.comm), maxLength: Int(PS_COMM_LEN)),
                operation: op, sector: e.sector, bytes: e.bytes, error: e.error, issueNs: e.issue_ns,
                latencyNs: e.latency_ns)))
        case PS_EVENT_WRITE_BEGIN.rawValue:
            guard needUpTo(ps_write_begin_event.self, \ps_write_begin_event.path) else { break }
            let e = Self.loadPadded(record, as: ps_write_begin_event.self)
            let flags = UInt32(e.flags)
            return .success(.writeBegin(WriteBeginEvent(
                timestampNs: header.timestamp_ns,
                task: Self.task(e.task, record, at: Self.offset(\ps_write_begin_event.task)),
                file: Self.file(e.file),
                path: ResolvedPath(
                    path: Self.string(record, at: Self.offset(\ps_write_begin_event.path), maxLength: Int(e.path_len)),
                    truncated: flags & UInt32(PS_FLAG_PATH_TRUNCATED) != 0),
                isRuntimeProcess: flags & UInt32(PS_FLAG_RUNTIME_PROCESS) != 0,
                fileGeneration: e.generation)))
        case PS_EVENT_FUSE_REQUEST.rawValue:
            guard need(ps_fuse_event.self) else { break }
            let e = record.loadUnaligned(as: ps_fuse_event.self)
            let named = e.flags & UInt32(PS_FUSE_FILE_FROM_FILL) != 0
            return .success(.fuseRequest(FuseRequestEvent(
                timestampNs: header.timestamp_ns, task: Self.task(e.task, record, at: Self.offset(\ps_fuse_event.task)),
                sendNs: e.send_ns, unique: e.unique, connection: DeviceNumber(rawValue: e.connection), opcode: e.opcode,
                requestBytes: e.in_len, replyBytes: e.out_len, error: e.error,
                file: named ? FileKey(device: DeviceNumber(rawValue: e.file_dev), inode: e.file_ino) : nil)))
        default:
            return .failure(DecodeFailure(reason: .unknownKind, kind: header.kind))
        }
        return .failure(DecodeFailure(reason: .truncated, kind: header.kind))
    }

    private func decodeExec(_ record: UnsafeRawBufferPointer, _ header: ps_event_header) -> ExecEvent {
        let e = record.loadUnaligned(as: ps_exec_event.self)
        let flags = UInt32(e.flags)
        let argsOffset = Self.offset(\ps_exec_event.args)
        let argsLength = min(Int(e.args_len), Int(PS_ARGS_LEN))
        let args = UnsafeRawBufferPointer(rebasing: record[argsOffset..<(argsOffset + argsLength)])
            .split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        return ExecEvent(
            timestampNs: header.timestamp_ns,
            task: Self.task(e.task, record, at: Self.offset(\ps_exec_event.task)),
            file: Self.file(e.file),
            path: ResolvedPath(
                path: Self.string(record, at: Self.offset(\ps_exec_event.path), maxLength: Int(e.path_len)),
                truncated: flags & UInt32(PS_FLAG_PATH_TRUNCATED) != 0),
            filename: Self.string(record, at: Self.offset(\ps_exec_event.filename), maxLength: Int(e.filename_len)),
            arguments: args.last == "" ? Array(args.dropLast()) : args,
            argumentsTruncated: flags & UInt32(PS_FLAG_ARGS_TRUNCATED) != 0,
            isRuntimeProcess: flags & UInt32(PS_FLAG_RUNTIME_PROCESS) != 0,
            oldPid: e.old_pid)
    }

    /// nil when the record ends before its strings do (truncated).
    private func decodeOpen(_ record: UnsafeRawBufferPointer, _ header: ps_event_header) -> OpenEvent? {
        let e = Self.loadPadded(record, as: ps_open_event.self)
        // raw path and NUL, then the resolved path and its NUL (PS_EVENT_VERSION 2)
        let rawAt = Self.offset(\ps_open_event.strings)
        let pathAt = rawAt + Int(ps_open_path_at(UInt32(e.raw_len)))
        guard record.count >= pathAt + Int(e.path_len) else { return nil }
        let flags = UInt32(e.flags)
        let succeeded = e.result >= 0 && flags & UInt32(PS_FLAG_PATH_UNRESOLVED) == 0
        let syscall: OpenSyscall = switch Int32(e.syscall) {
        case PS_SYSCALL_OPENAT2: .openat2
        case PS_SYSCALL_OPEN: .open
        case PS_SYSCALL_EXEC_INTERPRETER: .execInterpreter
        default: .openat
        }
        return OpenEvent(
            timestampNs: header.timestamp_ns,
            task: Self.task(e.task, record, at: Self.offset(\ps_open_event.task)),
            syscall: syscall, result: e.result, directoryFD: e.dirfd, openFlags: e.open_flags,
            rawPath: Self.string(record, at: rawAt, maxLength: Int(e.raw_len)),
            rawPathTruncated: flags & UInt32(PS_FLAG_RAW_TRUNCATED) != 0,
            path: succeeded ? ResolvedPath(
                path: Self.string(record, at: pathAt, maxLength: Int(e.path_len)),
                truncated: flags & UInt32(PS_FLAG_PATH_TRUNCATED) != 0) : nil,
            file: succeeded ? Self.file(e.file) : nil,
            isRuntimeProcess: flags & UInt32(PS_FLAG_RUNTIME_PROCESS) != 0)
    }

    /// The record as a full struct, zero-filled past its end (records may stop after their path).
    static func loadPadded<T: BitwiseCopyable>(_ record: UnsafeRawBufferPointer, as: T.Type) -> T {
        if record.count >= MemoryLayout<T>.size { return record.loadUnaligned(as: T.self) }
        return withUnsafeTemporaryAllocation(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.copyMemory(from: record)
            return buffer.load(as: T.self)
        }
    }

    static func offset<Root>(_ key: PartialKeyPath<Root>) -> Int {
        MemoryLayout<Root>.offset(of: key)!
    }

    /// A NUL-terminated string of at most `maxLength` bytes at `offset`.
    static func string(_ record: UnsafeRawBufferPointer, at offset: Int, maxLength: Int) -> String {
        let end = min(record.count, offset + max(0, maxLength))
        guard offset < end else { return "" }
        let bytes = UnsafeRawBufferPointer(rebasing: record[offset..<end])
        let length = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<length]), as: UTF8.self)
    }

    static func task(_ t: ps_task_context, _ record: UnsafeRawBufferPointer, at offset: Int) -> TaskContext {
        TaskContext(
            pid: t.pid, tid: t.tid, parentPid: t.ppid, namespacePid: t.ns_pid, mountNamespace: t.mntns,
            pidNamespace: t.pidns, cgroupID: t.cgroup_id,
            comm: string(record, at: offset + Self.offset(\ps_task_context.comm), maxLength: Int(PS_COMM_LEN)))
    }

    static func file(_ f: ps_file_identity) -> FileIdentity {
        FileIdentity(
            key: FileKey(device: DeviceNumber(rawValue: f.dev), inode: f.ino),
            dataKey: FileKey(device: DeviceNumber(rawValue: f.data_dev), inode: f.data_ino),
            sizeBytes: f.size_bytes, mode: f.mode)
    }
}

public struct DecodeFailure: Error, Hashable, Sendable {
    public var reason: EventDecoder.Rejection
    public var kind: UInt16
}
