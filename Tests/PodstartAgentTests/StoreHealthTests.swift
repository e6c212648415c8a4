import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore
import PodstartTestSupport
import StateStore
import Testing

/// #16.5: a state store that goes bad under the running hub (disk full, its file removed or
/// overwritten) makes `/readyz` not ready with the reason, counts each refused save, and recovers
/// when saves can go through again. Real SQLite on a real file system: the disk-full case mounts
/// a 2 MiB tmpfs, so it needs root (and fails without it).
@Suite(.serialized) struct StoreHealthTests {
    struct Rig {
        let dir: String
        let logs = CapturedLogs()
        let metrics = MetricsRegistry.forTests()
        let readiness = Readiness()
        let store: TimelineStore
        let health: StoreHealth
        let hub: AgentHub
        static let t0: Int64 = 1_796_526_068_000_000_000

        init(dir: String) throws {
            self.dir = dir
            store = try TimelineStore(directory: dir, logger: logs.logger())
            health = StoreHealth(readiness: readiness, metrics: metrics, logger: logs.logger())
            hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics,
                           logger: logs.logger(), processes: .none, health: health)
            readiness.markReady()  // the sources have started: only the store can make it not ready
        }

        /// One finished start; `nameBytes` makes its trace JSON (and the pages it writes) large.
        func start(_ n: Int, nameBytes: Int = 8) async {
            let uid = "uid-\(n)"
            let t = Self.t0 + Int64(n) * 10_000_000_000
            await hub.ingest([
                .pod(PodSighting(uid: uid, namespace: "shop", name: "web-\(n)-" + String(repeating: "x", count: nameBytes),
                                 createdUnixNs: t, source: .cri)),
                .ready(PodReadiness(uid: uid, atUnixNs: t + 1_000_000_000, source: .prober)),
                .tick(nowUnixNs: t + 5_000_000_000),
            ])
        }

        var healthyGauge: Double? { metrics.sample("podstart_store_healthy") }
        var saveFailures: Double? { metrics.sample("podstart_store_save_failures_total") }
    }

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "podstart-store-health-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aFullDiskMakesReadyzNotReadyWithTheReasonUntilSpaceIsFreed() async throws {
        let mountPoint = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        let (status, output) = try Command.run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "podstart-test", mountPoint])
        try #require(status == 0, "cannot mount a tmpfs (needs root): \(output)")
        defer { _ = try? Command.run("/bin/umount", ["-l", mountPoint]) }

        let rig = try Rig(dir: mountPoint + "/state")
        await rig.start(1)
        #expect(await rig.hub.recorded == 1)
        #expect(rig.readiness.notReadyReason == nil)
        #expect(rig.healthyGauge == 1)

        // fill the file system to the last byte
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        try #require(fd >= 0)
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        #expect(errno == ENOSPC)
        close(fd)

        // starts finish while the disk is full: each refused, counted, never logged as recorded
        await rig.start(2, nameBytes: 64 << 10)
        await rig.start(3, nameBytes: 64 << 10)
        #expect(await rig.hub.recorded == 1)
        #expect(rig.saveFailures == 2)
        #expect(rig.metrics.sourceErrors("state") == 2)
        #expect(rig.logs.messages("pod start recorded").count == 1)
        let reason = try #require(rig.readiness.notReadyReason)
        #expect(reason.hasPrefix("state store: cannot save pod starts:"), "\(reason)")
        #expect(reason.contains("full"), "\(reason)")
        #expect(rig.healthyGauge == 0)
        #expect(rig.logs.messages("state store unhealthy; /readyz answers 503 until it recovers").count == 1)

        // the periodic check while the disk is still full: still not ready
        await rig.health.check(rig.store)
        #expect(rig.readiness.notReadyReason != nil)

        // space freed: the check finds a save would go through, and the next start is recorded
        try FileManager.default.removeItem(atPath: filler)
        await rig.health.check(rig.store)
        #expect(rig.readiness.notReadyReason == nil)
        #expect(rig.healthyGauge == 1)
        #expect(rig.logs.messages("state store healthy again").count == 1)
        await rig.start(4)
        #expect(await rig.hub.recorded == 2)
        #expect(rig.saveFailures == 2)
        try rig.store.close()
    }

    @Test func aDatabaseFileRemovedUnderTheAgentMakesReadyzNotReady() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rig = try Rig(dir: dir)
        await rig.start(1)
        await rig.health.check(rig.store)
        #expect(rig.readiness.notReadyReason == nil)

        for suffix in ["", "-wal", "-shm"] { unlink(rig.store.path + suffix) }
        await rig.health.check(rig.store)
        let reason = try #require(rig.readiness.notReadyReason)
        #expect(reason.contains("was removed while open"), "\(reason)")
        #expect(rig.healthyGauge == 0)
        // saves into the unlinked file succeed, but do not make it healthy: no restart finds them
        await rig.start(2)
        #expect(rig.readiness.notReadyReason == reason)
        try rig.store.close()
    }

    @Test func aDatabaseFileOverwrittenUnderTheAgentIsReportedCorrupt() async throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rig = try Rig(dir: dir)
        await rig.start(1)
        await rig.health.check(rig.store)
        #expect(rig.readiness.notReadyReason == nil)

        let fd = open(rig.store.path, O_WRONLY)
        try #require(fd >= 0)
        let garbage = [UInt8](repeating: 0x5A, count: 4096)
        #expect(garbage.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } == 4096)
        close(fd)
        await rig.health.check(rig.store)
        let reason = try #require(rig.readiness.notReadyReason)
        #expect(reason.hasPrefix("state store: the database file"), "\(reason)")
        #expect(reason.contains("is corrupt"), "\(reason)")
        #expect(rig.healthyGauge == 0)
        try? rig.store.close()
    }
}
