import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore
import StateStore
import Testing

/// #16.5: a start the store refused is counted and never logged as recorded.
@Suite struct HubAccountingTests {
    @Test func aFailedSaveIsCountedAndNeverLoggedAsRecorded() async throws {
        let dir = NSTemporaryDirectory() + "podstart-hub-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logs = CapturedLogs()
        let metrics = MetricsRegistry.forTests()
        let store = try TimelineStore(directory: dir + "/state", logger: logs.logger())
        try store.close()  // every save now fails, as on a store gone bad at run time
        let hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics,
                           logger: logs.logger(), processes: .none)
        let t0: Int64 = 1_796_526_068_000_000_000
        let inputs: [CorrelatorInput] = [
            .pod(PodSighting(uid: "u", namespace: "shop", name: "web", createdUnixNs: t0, source: .cri)),
            .ready(PodReadiness(uid: "u", atUnixNs: t0 + 2_000_000_000, source: .prober)),
        ]
        await hub.ingest(inputs)
        let (ready, _) = await hub.flush()
        #expect(ready == 1, "the start was finished")
        #expect(logs.messages("cannot save a pod start").count == 1)
        #expect(logs.messages("pod start recorded").isEmpty)
        #expect(await hub.recorded == 0)
        #expect(metrics.sourceErrors("state") == 1)
    }
}
