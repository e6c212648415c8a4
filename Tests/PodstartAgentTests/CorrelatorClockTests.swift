import Exporter
import Foundation
import PodstartAgent
import PodstartCore
import StateStore
import Synchronization
import Testing

/// #16.7: the agent's clock measures the wall/monotonic offset again at every tick and hands a
/// step to the correlator before the tick, so an open start keeps its monotonic deadline. The
/// clock's readings are injected: the wall clock is stepped, monotonic time passes as it does.
@Suite struct CorrelatorClockTests {
    static let s: Int64 = 1_000_000_000

    final class SteppedReadings: Sendable {
        /// monotonic "now" and the offset wall − monotonic
        private let state = Mutex((monotonic: Int64(1_000) * 1_000_000_000, offset: Int64(1_796_526_000) * 1_000_000_000))
        func pass(_ ns: Int64) { state.withLock { $0.monotonic += ns } }
        func step(_ ns: Int64) { state.withLock { $0.offset += ns } }
        var wall: Int64 { state.withLock { $0.monotonic + $0.offset } }
        var read: @Sendable () -> (clock: WallClock, wallNowUnixNs: Int64) {
            { self.state.withLock { (WallClock(offsetNs: $0.offset), $0.monotonic + $0.offset) } }
        }
        var clock: WallClock { read().clock }
    }

    @Test func smallOffsetChangesAreNotStepsAndLargeOnesGoBeforeTheTick() {
        let base = WallClock(offsetNs: 1_000 * Self.s)
        let slewed = WallClock(offsetNs: base.offsetNs + 250_000)
        #expect(CorrelatorClock.inputs(current: base, measured: slewed, wallNowUnixNs: 7, stepThresholdNs: 1_000_000) == [.tick(nowUnixNs: 7)])
        for step in [Self.s, -Self.s, 1_000_000] {
            let stepped = WallClock(offsetNs: base.offsetNs + step)
            #expect(CorrelatorClock.inputs(current: base, measured: stepped, wallNowUnixNs: 7, stepThresholdNs: 1_000_000)
                    == [.clockOffset(offsetNs: stepped.offsetNs), .tick(nowUnixNs: 7)])
        }
    }

    @Test(arguments: [3600 * s, -3600 * s])
    func anOpenStartTimesOutAfterItsMonotonicLimitThroughTheAgentsClock(step: Int64) async throws {
        let dir = NSTemporaryDirectory() + "podstart-clock-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let readings = SteppedReadings()
        var configuration = Correlator.Configuration()
        configuration.startTimeoutNs = 10 * Self.s
        let store = try TimelineStore(directory: dir + "/state")
        defer { try? store.close() }
        let recorded = Mutex<[CorrelatorInput]>([])
        let hub = AgentHub(correlator: Correlator(configuration: configuration, clock: readings.clock), store: store,
                           metrics: MetricsRegistry.forTests(), logger: .init(label: "test"), processes: .none)
        await hub.record(inputsTo: { input in recorded.withLock { $0.append(input) } })
        var clock = CorrelatorClock(hub: hub)
        clock.read = readings.read
        await hub.ingest([.pod(PodSighting(uid: "u", namespace: "ns", name: "stuck", createdUnixNs: readings.wall, source: .podStatus))])
        readings.pass(4 * Self.s)
        await clock.tick()
        readings.step(step)
        readings.pass(1 * Self.s)
        await clock.tick()
        #expect(await hub.clock == readings.clock, "the offset was not measured again")
        #expect(await hub.openStarts == 1, "the step closed the start")
        readings.pass(4_900_000_000)  // 9.9 s of monotonic time
        await clock.tick()
        #expect(await hub.openStarts == 1, "closed before its 10 s")
        readings.pass(200_000_000)  // 10.1 s
        await clock.tick()
        #expect(await hub.openStarts == 0, "not closed after its 10 s (step \(step))")
        // the recording says when the offset changed, once
        let offsets = recorded.withLock { $0 }.filter { if case .clockOffset = $0 { true } else { false } }
        #expect(offsets == [.clockOffset(offsetNs: readings.clock.offsetNs)])
        await hub.flush()
    }
}
