import Exporter
import Foundation
import KernelProbes
import Logging
import PodstartAgent
import PodstartCore
import PodstartTestSupport
import ServiceLifecycleTestKit
import StateStore
import Synchronization
import Testing

/// #16.5: kernel records lost in user space are exported: records the decoder rejects, by reason,
/// and records the reader's queue to the hub had no room for.
@Suite(.serialized) struct ProbeLossAccountingTests {
    /// A ring-buffer record: the 16-byte header (kind, version, size, timestamp), then `body` zeros.
    static func record(kind: UInt16, version: UInt16, length: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() where offset + i < length { bytes[offset + i] = b } }
        }
        put(kind, at: 0)
        put(version, at: 2)
        put(UInt32(length), at: 4)
        put(UInt64(42), at: 8)
        return bytes
    }

    @Test func rejectedRecordsAreCountedByReasonAndTheRestDecoded() {
        let metrics = MetricsRegistry.forTests()
        for reason in ["truncated", "unknown_kind", "unknown_version"] {
            #expect(metrics.sample("podstart_probe_events_rejected_total{reason=\"\(reason)\"}") == 0, "\(reason) absent before any reject")
        }
        let exitKind: UInt16 = 3, version: UInt16 = 2
        let batch = RawEventBatch(copying: [
            Array(Self.record(kind: exitKind, version: version, length: 16).prefix(8)),  // shorter than a header
            Self.record(kind: exitKind, version: version, length: 16),                   // an exit without its body
            Self.record(kind: 200, version: version, length: 72),                        // a kind this build does not know
            Self.record(kind: exitKind, version: 99, length: 72),                        // a layout this build does not know
            Self.record(kind: exitKind, version: version, length: 72),                   // a whole exit record
        ])
        let events = KernelSource.decode(batch, metrics: metrics)
        #expect(events.count == 1)
        if case .exit? = events.first {} else { Issue.record("expected the exit record, got \(events)") }
        #expect(metrics.sample(#"podstart_probe_events_rejected_total{reason="truncated"}"#) == 2)
        #expect(metrics.sample(#"podstart_probe_events_rejected_total{reason="unknown_kind"}"#) == 1)
        #expect(metrics.sample(#"podstart_probe_events_rejected_total{reason="unknown_version"}"#) == 1)
    }

    /// The hub made slow (each input it sees waits) and a queue of one batch between the ring
    /// reader and the hub: execs of short processes overflow the queue, and the agent's metrics
    /// say how many records were dropped. Real eBPF: needs root and BPF.
    @Test func recordsTheQueueToTheHubDropsAreExported() async throws {
        let dir = NSTemporaryDirectory() + "podstart-drops-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logger = CapturedLogs().logger()
        let metrics = MetricsRegistry.forTests()
        let store = try TimelineStore(directory: dir, logger: logger)
        let hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics, logger: logger, processes: .none)
        final class Flag: Sendable { let on = Atomic<Bool>(true) }
        let slow = Flag()
        await hub.record { _ in if slow.on.load(ordering: .relaxed) { usleep(2_000) } }
        var probes = KernelProbeSession.Configuration()
        probes.bufferedBatches = 1
        probes.pollIntervalMs = 2
        let kernel = try KernelSource(startupWindow: .seconds(10), hub: hub, metrics: metrics, logger: logger, probes: probes)
        #expect(metrics.sample("podstart_probe_events_dropped_total") == 0)

        var dropped: Double = 0
        await testGracefulShutdown { trigger in
            let task = Task { await kernel.run() }
            let deadline = ContinuousClock.now + .seconds(60)
            while dropped == 0, ContinuousClock.now < deadline {
                // execs in new mount namespaces: each is a record and opens a start window (the
                // kernel reports only the runtime's and new namespaces' tasks; a host /bin/true
                // produces nothing, and this test then depended on other activity on the machine)
                for _ in 0..<50 { _ = try? Command.run("/usr/bin/unshare", ["--mount", "/bin/busybox", "cat", "/etc/hostname", "/etc/passwd"]) }
                try? await Task.sleep(for: .milliseconds(200))
                dropped = metrics.sample("podstart_probe_events_dropped_total") ?? 0
            }
            slow.on.store(false, ordering: .relaxed)
            trigger.triggerGracefulShutdown()
            await task.value
        }
        #expect(dropped > 0, "no record was dropped: the queue never overflowed")
        try store.close()
    }
}
