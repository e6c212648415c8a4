#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Converts CLOCK_MONOTONIC nanoseconds (the kernel probes' clock) to wall time. The offset is
/// measured once, so every event of a run shares one conversion and durations stay exact.
public struct WallClock: Sendable, Hashable {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, in nanoseconds, when the mapping was taken.
    public var offsetNs: Int64

    public init(offsetNs: Int64) { self.offsetNs = offsetNs }

    /// Measures the offset now, taking the tightest of a few paired readings.
    public static func measure() -> WallClock {
        var best: (gap: Int64, offset: Int64) = (.max, 0)
        for _ in 0..<5 {
            let m1 = readClock(CLOCK_MONOTONIC)
            let r = readClock(CLOCK_REALTIME)
            let m2 = readClock(CLOCK_MONOTONIC)
            let gap = m2 - m1
            if gap < best.gap { best = (gap, r - (m1 + gap / 2)) }
        }
        return WallClock(offsetNs: best.offset)
    }

    /// Nanoseconds since the Unix epoch for a CLOCK_MONOTONIC reading. Saturates: a reading
    /// comes from a record (a ring slot, a recording) and must never trap, however damaged.
    public func unixNanoseconds(monotonic ns: UInt64) -> Int64 { Int64(clamping: ns).saturatingAdd(offsetNs) }

    public static func monotonicNow() -> UInt64 { UInt64(readClock(CLOCK_MONOTONIC)) }

    /// Nanoseconds since the Unix epoch, now (CLOCK_REALTIME).
    public static func unixNow() -> Int64 { readClock(CLOCK_REALTIME) }

    private static func readClock(_ id: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
