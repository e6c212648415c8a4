/// What the kernel probes saw, decoded into values. Produced by KernelProbes; consumed by the
/// correlator. Times are CLOCK_MONOTONIC nanoseconds; `WallClock` converts them once.

/// A device number in the kernel's internal encoding (`major << 20 | minor`), as filemap and
/// superblock fields carry it. `stat(2)` reports the userspace encoding; convert with
/// `init(userspace:)` before comparing.
public struct DeviceNumber: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(major: UInt32, minor: UInt32) {
        rawValue = (major << 20) | (minor & 0xFFFFF)
    }

    /// From the glibc `dev_t` encoding returned by stat(2).
    public init(userspace dev: UInt64) {
        let major = UInt32(((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF))
        let minor = UInt32((dev & 0xFF) | ((dev >> 12) & ~0xFF))
        self.init(major: major, minor: minor)
    }

    public var major: UInt32 { rawValue >> 20 }
    public var minor: UInt32 { rawValue & 0xFFFFF }
    public var description: String { "\(major):\(minor)" }
    public static func < (a: DeviceNumber, b: DeviceNumber) -> Bool { a.rawValue < b.rawValue }
}

/// Identity of a file: device and inode.
public struct FileKey: Hashable, Sendable {
    public var device: DeviceNumber
    public var inode: UInt64
    public init(device: DeviceNumber, inode: UInt64) {
        self.device = device
        self.inode = inode
    }
}

/// The task an event happened in.
public struct TaskContext: Hashable, Sendable {
    /// Thread-group id as the host sees it.
    public var pid: UInt32
    public var tid: UInt32
    /// Real parent's thread-group id.
    public var parentPid: UInt32
    /// Pid inside the task's own pid namespace.
    public var namespacePid: UInt32
    /// Mount-namespace inode number: the key that ties a process to a container.
    public var mountNamespace: UInt32
    public var pidNamespace: UInt32
    /// cgroup v2 id (1 where only v1 hierarchies are mounted).
    public var cgroupID: UInt64
    public var comm: String

    public init(pid: UInt32, tid: UInt32, parentPid: UInt32, namespacePid: UInt32, mountNamespace: UInt32,
                pidNamespace: UInt32, cgroupID: UInt64, comm: String) {
        self.pid = pid
        self.tid = tid
        self.parentPid = parentPid
        self.namespacePid = namespacePid
        self.mountNamespace = mountNamespace
        self.pidNamespace = pidNamespace
        self.cgroupID = cgroupID
        self.comm = comm
    }
}

/// The file behind an open, exec or write.
public struct FileIdentity: Hashable, Sendable {
    public var key: FileKey
    /// Inode that holds the data (differs from `key` on stacked file systems).
    public var dataKey: FileKey
    public var sizeBytes: UInt64
    public var mode: UInt32

    public init(key: FileKey, dataKey: FileKey, sizeBytes: UInt64, mode: UInt32) {
        self.key = key
        self.dataKey = dataKey
        self.sizeBytes = sizeBytes
        self.mode = mode
    }

    public var isRegularFile: Bool { mode & 0o170000 == 0o100000 }
}

/// A resolved path and whether it was cut short.
public struct ResolvedPath: Hashable, Sendable {
    /// Absolute path as seen from the task's root directory.
    public var path: String
    /// True when the kernel could not fit the whole path; `path` then keeps the deepest components.
    public var truncated: Bool
    public init(path: String, truncated: Bool) {
        self.path = path
        self.truncated = truncated
    }
}

public struct ExecEvent: Hashable, Sendable {
    public var timestampNs: UInt64
    public var task: TaskContext
    public var file: FileIdentity
    /// The executed file, resolved in the kernel from the task's root.
    public var path: ResolvedPath
    /// The filename argument as passed to execve.
    public var filename: String
    public var arguments: [String]
    public var argumentsTruncated: Bool
    /// The container runtime (containerd, runc, shims) or one of its children, e.g. a CNI plugin.
    public var isRuntimeProcess: Bool
    public var oldPid: UInt32

    public init(timestampNs: UInt64, task: TaskContext, file: FileIdentity, path: ResolvedPath, filename: String, arguments: [String], argumentsTruncated: Bool, isRuntimeProcess: Bool, oldPid: UInt32) {
        self.timestampNs = timestampNs
        self.task = task
        self.file = file
        self.path = path
        self.filename = filename
        self.arguments = arguments
        self.argumentsTruncated = argumentsTruncated
        self.isRuntimeProcess = isRuntimeProcess
        self.oldPid = oldPid
    }
}

public struct ForkEvent: Hashable, Sendable {
    public var timestampNs: UInt64
    public var parent: TaskContext
    public var childPid: UInt32
    public var isRuntimeProcess: Bool

    public init(timestampNs: UInt64, parent: TaskContext, childPid: UInt32, isRuntimeProcess: Bool) {
        self.timestampNs = timestampNs
        self.parent = parent
        self.childPid = childPid
        self.isRuntimeProcess = isRuntimeProcess
    }
}

public struct ExitEvent: Hashable, Sendable {
    public var timestampNs: UInt64
    public var task: TaskContext
    /// Raw wait status: exit status in bits 8–15, terminating signal in bits 0–6.
    public var waitStatus: Int32
    public var isRuntimeProcess: Bool

    public init(timestampNs: UInt64, task: TaskContext, waitStatus: Int32, isRuntimeProcess: Bool) {
        self.timestampNs = timestampNs
        self.task = task
        self.waitStatus = waitStatus
        self.isRuntimeProcess = isRuntimeProcess
    }

    public var exitStatus: Int32 { (waitStatus >> 8) & 0xFF }
    public var signal: Int32 { waitStatus & 0x7F }
}

public enum OpenSyscall: String, Hashable, Sendable {
    case openat, openat2, open
    /// No syscall: the ELF interpreter (ld.so) that execve opened and mapped for a dynamically
    /// linked program. `result` is 0 and the raw path empty; the path is resolved as for an open.
    case execInterpreter = "exec-interpreter"
}

public struct OpenEvent: Hashable, Sendable {
    public var timestampNs: UInt64
    public var task: TaskContext
    public var syscall: OpenSyscall
    /// The file descriptor, or -errno.
    public var result: Int32
    /// The dirfd argument (-100 = AT_FDCWD).
    public var directoryFD: Int32
    public var openFlags: UInt32
    /// The path argument exactly as passed.
    public var rawPath: String
    public var rawPathTruncated: Bool
    /// For successful opens: the absolute path inside the task's root, resolved from the opened file.
    public var path: ResolvedPath?
    /// For successful opens: the file.
    public var file: FileIdentity?
    public var isRuntimeProcess: Bool

    public init(timestampNs: UInt64, task: TaskContext, syscall: OpenSyscall, result: Int32, directoryFD: Int32, openFlags: UInt32, rawPath: String, rawPathTruncated: Bool, path: ResolvedPath?, file: FileIdentity?, isRuntimeProcess: Bool) {
        self.timestampNs = timestampNs
        self.task = task
        self.syscall = syscall
        self.result = result
        self.directoryFD = directoryFD
        self.openFlags = openFlags
        self.rawPath = rawPath
        self.rawPathTruncated = rawPathTruncated
        self.path = path
        self.file = file
        self.isRuntimeProcess = isRuntimeProcess
    }

    public var succeeded: Bool { result >= 0 }
    public var errno: Int32? { result < 0 ? -result : nil }
}

public enum RangeSource: String, Hashable, Sendable {
    /// Pages a task asked for (buffered read, mmap fault or fault-around), cached or not.
    case access
    /// Pages that had to be read from storage into the page cache.
    case fill
}

/// A run of contiguous pages of one file, merged in the kernel.
public struct ReadRangeEvent: Hashable, Sendable {
    public static let pageSize: UInt64 = 4096
    public var timestampNs: UInt64
    public var mountNamespace: UInt32
    /// Device and inode of the data (the lower layer's file on overlayfs).
    public var file: FileKey
    public var firstPage: UInt64
    public var pageCount: UInt64
    public var firstAccessNs: UInt64
    public var pid: UInt32
    public var source: RangeSource

    public init(timestampNs: UInt64, mountNamespace: UInt32, file: FileKey, firstPage: UInt64, pageCount: UInt64, firstAccessNs: UInt64, pid: UInt32, source: RangeSource) {
        self.timestampNs = timestampNs
        self.mountNamespace = mountNamespace
        self.file = file
        self.firstPage = firstPage
        self.pageCount = pageCount
        self.firstAccessNs = firstAccessNs
        self.pid = pid
        self.source = source
    }

    /// Saturating: page numbers come from a ring record, and a damaged one must not trap.
    public var offsetBytes: UInt64 { Self.bytes(pages: firstPage) }
    public var lengthBytes: UInt64 { Self.bytes(pages: pageCount) }
    /// The bytes the run covers as a file range; file offsets end at Int64's end (loff_t).
    public var byteRange: Interval {
        let start = Int64(clamping: offsetBytes)
        return Interval(start: start, end: start.saturatingAdd(Int64(clamping: lengthBytes)))
    }

    private static func bytes(pages: UInt64) -> UInt64 {
        let (product, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? .max : product
    }
}

public enum BlockOperation: String, Hashable, Sendable {
    case read, write, other
}

public struct BlockIOEvent: Hashable, Sendable {
    public var timestampNs: UInt64
    public var device: DeviceNumber
    /// Mount namespace of the submitting task; nil when it cannot be attributed (kernel threads).
    public var mountNamespace: UInt32?
    public var pid: UInt32
    public var comm: String
    public var operation: BlockOperation
    public var sector: UInt64
    public var bytes: UInt32
    public var error: Int32
    public var issueNs: UInt64
    public var latencyNs: UInt64

    public init(timestampNs: UInt64, device: DeviceNumber, mountNamespace: UInt32?, pid: UInt32, comm: String, operation: BlockOperation, sector: UInt64, bytes: UInt32, error: Int32, issueNs: UInt64, latencyNs: UInt64) {
        self.timestampNs = timestampNs
        self.device = device
        self.mountNamespace = mountNamespace
        self.pid = pid
        self.comm = comm
        self.operation = operation
        self.sector = sector
        self.bytes = bytes
        self.error = error
        self.issueNs = issueNs
        self.latencyNs = latencyNs
    }
}

/// First write of a process to a regular file; totals come from `WriteTotal`.
public struct WriteBeginEvent: Hashable, Sendable {
    public var timestampNs: UInt64
    public var task: TaskContext
    public var file: FileIdentity
    public var path: ResolvedPath
    public var isRuntimeProcess: Bool
    /// The inode's generation (i_generation): a file system hands a deleted file's inode number
    /// to the next file it creates, and only the generation tells the two apart.
    public var fileGeneration: UInt32

    public init(timestampNs: UInt64, task: TaskContext, file: FileIdentity, path: ResolvedPath, isRuntimeProcess: Bool,
                fileGeneration: UInt32 = 0) {
        self.timestampNs = timestampNs
        self.task = task
        self.file = file
        self.path = path
        self.isRuntimeProcess = isRuntimeProcess
        self.fileGeneration = fileGeneration
    }
}

/// One FUSE request a task of a starting container sent and waited on (fuse:fuse_request_send →
/// fuse:fuse_request_end). On a lazy-pull snapshotter (stargz: one FUSE file system per layer) it
/// is a lookup, open or read the daemon may answer with a fetch from the registry.
public struct FuseRequestEvent: Hashable, Sendable {
    /// CLOCK_MONOTONIC nanoseconds of the reply (fuse_request_end).
    public var timestampNs: UInt64
    /// The task that sent the request, as it sent it.
    public var task: TaskContext
    /// CLOCK_MONOTONIC nanoseconds of the send.
    public var sendNs: UInt64
    /// The connection's request id.
    public var unique: UInt64
    /// The FUSE connection: the superblock device of its mount (`st_dev` of the mount point).
    public var connection: DeviceNumber
    /// `enum fuse_opcode` (include/uapi/linux/fuse.h).
    public var opcode: UInt32
    /// Bytes of the request and of the reply, their headers included.
    public var requestBytes: UInt32
    public var replyBytes: UInt32
    /// The reply's error: 0 or -errno.
    public var error: Int32
    /// FUSE_READ: the file whose page-cache fill the read serves (its inode on the FUSE file
    /// system), when the kernel saw the task fill it just before; nil otherwise.
    public var file: FileKey?

    public init(timestampNs: UInt64, task: TaskContext, sendNs: UInt64, unique: UInt64, connection: DeviceNumber, opcode: UInt32,
                requestBytes: UInt32, replyBytes: UInt32, error: Int32, file: FileKey?) {
        self.timestampNs = timestampNs
        self.task = task
        self.sendNs = sendNs
        self.unique = unique
        self.connection = connection
        self.opcode = opcode
        self.requestBytes = requestBytes
        self.replyBytes = replyBytes
        self.error = error
        self.file = file
    }

    /// Send → reply: how long the task waited (0 for a damaged record whose ends are reversed).
    public var durationNs: UInt64 { timestampNs >= sendNs ? timestampNs - sendNs : 0 }

    /// The bytes the reply carried past its 16-byte `fuse_out_header`: for a read, the data.
    public var replyDataBytes: UInt64 { UInt64(replyBytes > 16 ? replyBytes - 16 : 0) }

    public static let readOpcode: UInt32 = 15

    /// The opcode's name, lower case without `FUSE_` (`lookup`, `read`, …), or `op<N>`.
    public var opcodeName: String { Self.opcodeName(opcode) }

    /// Every opcode of `enum fuse_opcode` up to FUSE_STATX (Linux 6.18) by its name; later ones
    /// as `op<N>` (two ioctls showed as `op39` in every start on the stargz snapshotter).
    public static func opcodeName(_ opcode: UInt32) -> String {
        switch opcode {
        case 1: "lookup"
        case 2: "forget"
        case 3: "getattr"
        case 4: "setattr"
        case 5: "readlink"
        case 6: "symlink"
        case 8: "mknod"
        case 9: "mkdir"
        case 10: "unlink"
        case 11: "rmdir"
        case 12: "rename"
        case 13: "link"
        case 14: "open"
        case 15: "read"
        case 16: "write"
        case 17: "statfs"
        case 18: "release"
        case 20: "fsync"
        case 21: "setxattr"
        case 22: "getxattr"
        case 23: "listxattr"
        case 24: "removexattr"
        case 25: "flush"
        case 26: "init"
        case 27: "opendir"
        case 28: "readdir"
        case 29: "releasedir"
        case 30: "fsyncdir"
        case 31: "getlk"
        case 32: "setlk"
        case 33: "setlkw"
        case 34: "access"
        case 35: "create"
        case 36: "interrupt"
        case 37: "bmap"
        case 38: "destroy"
        case 39: "ioctl"
        case 40: "poll"
        case 41: "notify_reply"
        case 42: "batch_forget"
        case 43: "fallocate"
        case 44: "readdirplus"
        case 45: "rename2"
        case 46: "lseek"
        case 47: "copy_file_range"
        case 48: "setupmapping"
        case 49: "removemapping"
        case 50: "syncfs"
        case 51: "tmpfile"
        case 52: "statx"
        default: "op\(opcode)"
        }
    }
}

public enum KernelEvent: Hashable, Sendable {
    case exec(ExecEvent)
    case fork(ForkEvent)
    case exit(ExitEvent)
    case open(OpenEvent)
    case readRange(ReadRangeEvent)
    case blockIO(BlockIOEvent)
    case writeBegin(WriteBeginEvent)
    case fuseRequest(FuseRequestEvent)

    public var timestampNs: UInt64 {
        switch self {
        case .exec(let e): e.timestampNs
        case .fork(let e): e.timestampNs
        case .exit(let e): e.timestampNs
        case .open(let e): e.timestampNs
        case .readRange(let e): e.timestampNs
        case .blockIO(let e): e.timestampNs
        case .writeBegin(let e): e.timestampNs
        case .fuseRequest(let e): e.timestampNs
        }
    }

    public var kindName: String {
        switch self {
        case .exec: "exec"
        case .fork: "fork"
        case .exit: "exit"
        case .open: "open"
        case .readRange: "read"
        case .blockIO: "block"
        case .writeBegin: "write"
        case .fuseRequest: "fuse"
        }
    }
}

/// Opens of one file by one mount namespace, counted in the kernel (the first open is an
/// `OpenEvent`; the rest only bump this count).
public struct OpenCount: Hashable, Sendable {
    public var mountNamespace: UInt32
    /// nil for failed opens, which the kernel keys by a hash of the path tried.
    public var file: FileKey?
    public var pathHash: UInt64?
    public var count: UInt64
    public var firstNs: UInt64

    public init(mountNamespace: UInt32, file: FileKey?, pathHash: UInt64?, count: UInt64, firstNs: UInt64) {
        self.mountNamespace = mountNamespace
        self.file = file
        self.pathHash = pathHash
        self.count = count
        self.firstNs = firstNs
    }
}

/// Writes of one process to one regular file, totalled in the kernel.
public struct WriteTotal: Hashable, Sendable {
    public var pid: UInt32
    public var file: FileKey
    /// The inode's generation, as in `WriteBeginEvent.fileGeneration`.
    public var fileGeneration: UInt32
    public var mountNamespace: UInt32
    public var firstNs: UInt64
    public var lastNs: UInt64
    public var bytes: UInt64
    public var writes: UInt64
    public var isRuntimeProcess: Bool

    public init(pid: UInt32, file: FileKey, fileGeneration: UInt32 = 0, mountNamespace: UInt32, firstNs: UInt64, lastNs: UInt64,
                bytes: UInt64, writes: UInt64, isRuntimeProcess: Bool) {
        self.pid = pid
        self.file = file
        self.fileGeneration = fileGeneration
        self.mountNamespace = mountNamespace
        self.firstNs = firstNs
        self.lastNs = lastNs
        self.bytes = bytes
        self.writes = writes
        self.isRuntimeProcess = isRuntimeProcess
    }
}
