import PodstartCore
import ServiceLifecycle

/// Time passes for the correlator even when no source speaks (timeouts, grace periods): a tick
/// every 500 ms until shutdown. Each tick also measures the wall/monotonic offset again
/// (issue #16.7): when the wall clock was stepped (or slewed past `stepThresholdNs`), a
/// `.clockOffset` input goes before the tick, so kernel records are converted with the new offset
/// and open starts keep their CLOCK_MONOTONIC deadlines.
public struct CorrelatorClock: Service {
    public let hub: AgentHub
    public var interval: Duration = .milliseconds(500)
    /// A change of the offset below this is not reported: NTP slews the clock by at most 500 ppm,
    /// 0.25 ms between two ticks, so slews are reported once they add up to this.
    public var stepThresholdNs: Int64 = 1_000_000
    /// The offset and the wall time now (injected by tests to step the wall clock).
    public var read: @Sendable () -> (clock: WallClock, wallNowUnixNs: Int64) = { (WallClock.measure(), WallClock.unixNow()) }

    public init(hub: AgentHub) { self.hub = hub }

    /// What one tick hands the correlator, given the offset it converts with now.
    public static func inputs(current: WallClock, measured: WallClock, wallNowUnixNs: Int64, stepThresholdNs: Int64) -> [CorrelatorInput] {
        let change = measured.offsetNs.saturatingSubtract(current.offsetNs)
        let stepped = change.magnitude >= UInt64(max(0, stepThresholdNs))
        return (stepped ? [.clockOffset(offsetNs: measured.offsetNs)] : []) + [.tick(nowUnixNs: wallNowUnixNs)]
    }

    /// One tick: measure, tell the hub.
    public func tick() async {
        let (measured, wallNow) = read()
        let inputs = Self.inputs(current: await hub.clock, measured: measured, wallNowUnixNs: wallNow, stepThresholdNs: stepThresholdNs)
        await hub.ingest(inputs)
    }

    public func run() async {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await tick()
            }
        }
    }
}
