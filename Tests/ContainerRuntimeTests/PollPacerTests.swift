import ContainerRuntime
import Testing

@Suite("CRI poll pacing")
struct PollPacerTests {
    /// The wakes of one minute, 200 ms apart, and which of them list.
    static func listings(_ pacer: PollPacer, events: Set<Int> = [], flowing: (Int) -> Bool = { _ in true }) -> [Int] {
        let t0 = ContinuousClock.now
        var listed: [Int] = []
        for wake in 0..<300 {
            let now = t0 + .milliseconds(200 * wake)
            pacer.eventsFlowing(flowing(wake))
            if events.contains(wake) { pacer.nudge(at: now) }
            if pacer.shouldPoll(at: now) { listed.append(wake) }
        }
        return listed
    }

    @Test func anIdleNodeIsListedOncePerIdleIntervalWhileEventsFlow() {
        let listed = Self.listings(PollPacer(idleInterval: .seconds(2)))
        #expect(listed == Array(stride(from: 0, to: 300, by: 10)), "one listing per 2 s, the first at once")
    }

    @Test func anEventBringsBackTheFastCadenceForTheActiveWindow() {
        let listed = Self.listings(PollPacer(idleInterval: .seconds(2), activeWindow: .seconds(10)), events: [103])
        #expect(listed.contains(103), "the wake after the event lists")
        // every wake for 10 s after it, then back to every 2 s from the last listing
        #expect(Array(103..<153).allSatisfy(listed.contains))
        #expect(listed.filter { $0 < 103 } == Array(stride(from: 0, through: 100, by: 10)))
        #expect(listed.filter { $0 > 152 } == Array(stride(from: 162, to: 300, by: 10)))
    }

    @Test func withoutTheEventStreamEveryWakeLists() {
        #expect(Self.listings(PollPacer(), flowing: { _ in false }).count == 300)
        // the stream drops at 5 s and comes back at 20 s
        let listed = Self.listings(PollPacer(idleInterval: .seconds(2)), flowing: { !(25..<100).contains($0) })
        #expect(Array(25..<100).allSatisfy(listed.contains))
        #expect(listed.filter { $0 >= 100 }.count <= 21)
    }
}
