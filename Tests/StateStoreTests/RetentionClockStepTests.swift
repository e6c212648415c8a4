import Foundation
import PodstartCore
import StateStore
import Synchronization
import Testing

/// #16.7: retention's "now" follows CLOCK_MONOTONIC from the moment the store opened, so a step
/// of the wall clock — forward by a month, or back — deletes no start early. Clocks injected:
/// the wall clock is stepped, monotonic time passes as it does.
@Suite struct RetentionClockStepTests {
    final class SteppedClock: Sendable {
        private let state = Mutex((wall: StoreFixtures.t0 + 3600 * StoreFixtures.s, monotonic: UInt64(1_000) * 1_000_000_000))
        func pass(_ ns: Int64) { state.withLock { $0.wall += ns; $0.monotonic += UInt64(ns) } }
        func step(_ ns: Int64) { state.withLock { $0.wall += ns } }
        var wall: Int64 { state.withLock { $0.wall } }
        var clock: TimelineStore.Clock { TimelineStore.Clock(wall: { self.wall }, monotonic: { self.state.withLock { $0.monotonic } }) }
    }

    static let day = 86_400 * StoreFixtures.s

    @Test func aWallClockSteppedForwardAMonthDeletesNothingEarly() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = SteppedClock()
        let store = try TimelineStore(directory: dir, configuration: .init(maxAgeSeconds: 7 * 86_400, maxBytes: nil), clock: clock.clock)
        // three starts of the last hour, by the wall clock
        for i in 0..<3 { try await store.save(StoreFixtures.trace(i, created: clock.wall - 3600 * StoreFixtures.s + Int64(i) * StoreFixtures.s)) }
        clock.step(30 * Self.day)
        clock.pass(60 * StoreFixtures.s)
        try await store.save(StoreFixtures.trace(3, created: clock.wall))
        #expect(try store.totals().traces == 4, "the wall clock's step made retention delete starts")
        try store.close()
    }

    @Test func retentionStillDeletesByAgeAsMonotonicTimePassesAfterAStepBack() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = SteppedClock()
        let store = try TimelineStore(directory: dir, configuration: .init(maxAgeSeconds: 7 * 86_400, maxBytes: nil), clock: clock.clock)
        let first = clock.wall
        try await store.save(StoreFixtures.trace(0, created: first))
        // stepped back a day: nothing that was kept goes
        clock.step(-Self.day)
        try await store.save(StoreFixtures.trace(1, created: clock.wall))
        #expect(try store.totals().traces == 2)
        // eight days pass (monotonic): the first start is past the limit by either clock's reading
        clock.pass(9 * Self.day)
        try await store.save(StoreFixtures.trace(2, created: clock.wall))
        let kept = try await store.recent(limit: 10, offset: 0).map(\.pod.uid)
        #expect(!kept.contains("uid-0"), "\(kept)")
        #expect(kept.contains("uid-2"))
        try store.close()
    }
}
