#if canImport(Glibc)
import Glibc
#endif

/// One instant read on both clocks podstart uses: wall time for outputs, CLOCK_MONOTONIC to line
/// up with the kernel probes' timestamps.
public struct Instant: Sendable, Hashable, Comparable {
    /// Nanoseconds since the Unix epoch (CLOCK_REALTIME).
    public var unixNs: Int64
    /// Nanoseconds since boot, excluding suspend (CLOCK_MONOTONIC, the bpf_ktime_get_ns clock).
    public var monotonicNs: UInt64

    public init(unixNs: Int64, monotonicNs: UInt64) {
        self.unixNs = unixNs
        self.monotonicNs = monotonicNs
    }

    public static func now() -> Instant {
        var mono = timespec(), real = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_REALTIME, &real)
        return Instant(unixNs: Int64(real.tv_sec) * 1_000_000_000 + Int64(real.tv_nsec),
                       monotonicNs: UInt64(mono.tv_sec) * 1_000_000_000 + UInt64(mono.tv_nsec))
    }

    public static func < (a: Instant, b: Instant) -> Bool { a.monotonicNs < b.monotonicNs }

    /// Seconds from `self` to `later` on the monotonic clock.
    public func seconds(to later: Instant) -> Double {
        Double(Int64(bitPattern: later.monotonicNs &- monotonicNs)) / 1e9
    }
}

/// The wall-clock begin and end of one CRI call as podstart made it.
public struct CallTiming: Sendable, Hashable {
    /// The CRI method, e.g. `RunPodSandbox`.
    public var method: String
    public var begin: Instant
    public var end: Instant
    /// Whether the call returned without error.
    public var succeeded: Bool

    public var seconds: Double { begin.seconds(to: end) }
}
