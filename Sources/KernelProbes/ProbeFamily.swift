/// A group of eBPF programs that are loaded from one object and attached or detached together.
public enum ProbeFamily: String, CaseIterable, Hashable, Sendable, Comparable {
    /// exec, fork, exit: rare events, attached all the time (they also announce starts).
    case process
    /// open, openat, openat2 exits.
    case opens
    /// page-cache reads, faults, fault-around and fills.
    case reads
    /// block I/O start/done.
    case block
    /// write, pwrite64, writev exits (runtime download/unpack, container writes).
    case writes
    /// FUSE request send/end: what a container waited on a FUSE daemon for (a lazy-pull
    /// snapshotter's remote fetches). Fires only on FUSE traffic, so it costs nothing without it.
    case fuse

    /// The families whose hooks sit on hot paths (every syscall or every read): attached only
    /// while some container is starting.
    public static let startHooks: Set<ProbeFamily> = [.opens, .reads, .block, .writes, .fuse]

    /// The object the family's programs are loaded from; `kernelCasts`: the running kernel has
    /// bpf_rdonly_cast (6.2+) and the opens may use the build that takes it.
    func skeleton(kernelCasts: Bool) -> any PodstartObjectSkeleton.Type {
        switch self {
        case .process: BPFSkeleton.Process.self
        case .opens: kernelCasts ? BPFSkeleton.FilesCast.self : BPFSkeleton.Files.self
        case .reads: BPFSkeleton.Filemap.self
        case .block: BPFSkeleton.Blockio.self
        case .writes: BPFSkeleton.Writes.self
        case .fuse: BPFSkeleton.Fuse.self
        }
    }

    /// The family a program belongs to, from the hook its name spells.
    static func family(ofProgram name: String) -> ProbeFamily? {
        if name.contains("sched_process") { return .process }
        if name.contains("sys_exit_open") { return .opens }
        if name.contains("filemap") { return .reads }
        if name.contains("block_") { return .block }
        if name.contains("sys_exit_write") || name.contains("sys_exit_pwrite") { return .writes }
        if name.contains("fuse_request") { return .fuse }
        return nil
    }

    public static func < (a: ProbeFamily, b: ProbeFamily) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses `open,exec,read,block,write` style names (as `podstart probe --kinds` takes them).
    public static func parse(kind: String) -> ProbeFamily? {
        switch kind.lowercased() {
        case "exec", "fork", "exit", "process": .process
        case "open", "opens": .opens
        case "read", "reads": .reads
        case "block", "blockio": .block
        case "write", "writes": .writes
        case "fuse", "lazy", "lazy_fetch": .fuse
        default: nil
        }
    }
}

/// Per-program counters kept in the kernel (summed over CPUs).
public struct ProgramStatistics: Hashable, Sendable {
    /// Records submitted to the ring buffer.
    public var events: UInt64
    /// Records dropped because the ring buffer was full.
    public var lost: UInt64
    /// Occurrences folded into an in-kernel aggregate instead of a record.
    public var aggregated: UInt64
}

/// Names of the counters in the kernel's ps_stats array, in index order.
public enum ProbeProgram: String, CaseIterable, Sendable {
    case exec, fork, exit, open, read, block, write, fuse
}
