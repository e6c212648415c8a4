import CPodstartBPF
#if canImport(Glibc)
import Glibc
#endif

/// What the kernel measured of one eBPF program: how often it ran and for how long in total.
/// Counted only while run-time statistics are on (`RunTimeStatistics`); independent of the load
/// other processes put on the machine, unlike a workload's wall or CPU time.
public struct ProgramRunTime: Hashable, Sendable {
    public var runCount: UInt64
    /// Total nanoseconds spent in the program (the kernel's own clock reads around each run).
    public var runTimeNs: UInt64

    public init(runCount: UInt64, runTimeNs: UInt64) {
        self.runCount = runCount
        self.runTimeNs = runTimeNs
    }

    public var nanosecondsPerRun: Double { runCount == 0 ? 0 : Double(runTimeNs) / Double(runCount) }

    /// The runs between two readings of the same program.
    public static func - (later: ProgramRunTime, earlier: ProgramRunTime) -> ProgramRunTime {
        ProgramRunTime(runCount: later.runCount &- earlier.runCount, runTimeNs: later.runTimeNs &- earlier.runTimeNs)
    }
}

/// While an instance lives the kernel measures the run time of every eBPF program on the machine
/// (BPF_ENABLE_STATS). That adds two clock reads to every run of every program, so hold it only
/// around a measurement; closing the descriptor (deinit) switches it off again unless
/// `kernel.bpf_stats_enabled` or another holder keeps it on.
public final class RunTimeStatistics: @unchecked Sendable {
    private let fd: Int32

    public init() throws {
        let fd = bpf_enable_stats(BPF_STATS_RUN_TIME)
        if fd < 0 { throw BPFError.map(name: "BPF_ENABLE_STATS", errno: -fd) }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }
}

extension BPFObject {
    /// The kernel's ids of the object's loaded programs, by program name.
    func programIDs() -> [String: UInt32] {
        var result: [String: UInt32] = [:]
        for name in programNames where disabledPrograms[name] == nil {
            guard let prog = program(named: name) else { continue }
            let fd = bpf_program__fd(prog)
            var id: UInt32 = 0
            if fd >= 0, podstart_prog_id(fd, &id) == 0 { result[name] = id }
        }
        return result
    }

    /// Run-time readings of the object's loaded programs, by program name.
    func programRunTimes() -> [String: ProgramRunTime] {
        var result: [String: ProgramRunTime] = [:]
        for name in programNames where disabledPrograms[name] == nil {
            guard let prog = program(named: name) else { continue }
            let fd = bpf_program__fd(prog)
            guard fd >= 0 else { continue }
            var ns: UInt64 = 0
            var count: UInt64 = 0
            if podstart_prog_run_stats(fd, &ns, &count) == 0 {
                result[name] = ProgramRunTime(runCount: count, runTimeNs: ns)
            }
        }
        return result
    }
}
