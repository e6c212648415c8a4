import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore
import ServiceLifecycleTestKit
import StateStore
import Testing

/// Issue #18: at SIGTERM the agent logged "eBPF map 'ps_writes' operation failed (errno 9: Bad
/// file descriptor) … kernel housekeeping failed": housekeeping ran on after the session was
/// closed. The kernel source must end its housekeeping before it closes the session. Needs root
/// and BPF, like the agent.
@Suite(.serialized) struct KernelSourceShutdownTests {
    @Test func housekeepingEndsBeforeTheSessionClosesAndNothingFailsAtShutdown() async throws {
        let dir = NSTemporaryDirectory() + "podstart-kernel-shutdown-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logs = CapturedLogs()
        let logger = logs.logger()
        let metrics = MetricsRegistry.forTests()
        let store = try TimelineStore(directory: dir, logger: logger)
        let hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics, logger: logger)
        let kernel = try KernelSource(startupWindow: .seconds(10), hub: hub, metrics: metrics, logger: logger)

        await testGracefulShutdown { trigger in
            let task = Task { await kernel.run() }
            // long enough for housekeeping to read the maps (statistics every 4th round of 500 ms)
            try? await Task.sleep(for: .milliseconds(2300))
            #expect(kernel.housekeepingRunning)
            trigger.triggerGracefulShutdown()
            await task.value
        }
        #expect(kernel.isClosed)
        #expect(!kernel.housekeepingRunning)
        // a housekeeping loop left running would wake on the closed maps within 500 ms
        try await Task.sleep(for: .milliseconds(1200))
        #expect(kernel.housekeepingAfterClose == 0)
        let problems = logs.all.filter { $0.level >= .warning }.map { "\($0.message) \($0.metadata)" }
        #expect(problems.isEmpty, "\(problems)")
        #expect(!problems.contains { $0.contains("Bad file descriptor") || $0.contains("kernel housekeeping failed") })
        #expect((metrics.sourceErrors("kernel") ?? 0) == 0)
        try store.close()
    }
}
