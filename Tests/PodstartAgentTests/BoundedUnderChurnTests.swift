import ContainerRuntime
import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore
import StateStore
import Testing

/// #16.6: what the hub and the correlator keep stays within its bound however many starts and
/// short-lived mount namespaces pass (docs/agent.md, Bounded under churn). Counts, not time:
/// `podstart-bench soak` measures the memory.
@Suite struct BoundedUnderChurnTests {
    static let s: Int64 = 1_000_000_000
    static let t0: Int64 = 1_796_526_068_000_000_000

    static func count(_ counts: [(name: String, count: Int)], _ name: String) -> Int {
        counts.first { $0.name == name }?.count ?? -1
    }

    static func task(pid: UInt32, ns: UInt32) -> TaskContext {
        TaskContext(pid: pid, tid: pid, parentPid: 1, namespacePid: 1, mountNamespace: ns, pidNamespace: ns, cgroupID: 0, comm: "sh")
    }
    static func exec(pid: UInt32, ns: UInt32, atMonotonic t: UInt64) -> KernelEvent {
        let key = FileKey(device: DeviceNumber(rawValue: 44), inode: UInt64(pid))
        return .exec(ExecEvent(timestampNs: t, task: task(pid: pid, ns: ns), file: FileIdentity(key: key, dataKey: key, sizeBytes: 1, mode: 0o100755),
                               path: ResolvedPath(path: "/bin/sh", truncated: false), filename: "/bin/sh", arguments: ["sh"],
                               argumentsTruncated: false, isRuntimeProcess: false, oldPid: pid))
    }
    static func exit(pid: UInt32, ns: UInt32, atMonotonic t: UInt64) -> KernelEvent {
        .exit(ExitEvent(timestampNs: t, task: task(pid: pid, ns: ns), waitStatus: 0, isRuntimeProcess: false))
    }

    @Test func aRecentSetKeepsAtMostItsCapacityAndTheMostRecentlyTouched() {
        var set = RecentSet<Int>(capacity: 100)
        set.insert(-1)
        var evicted: [Int] = []
        for i in 0..<10_000 {
            if let gone = set.insert(i) { evicted.append(gone) }
            set.touch(-1)  // named again and again: never forgotten
        }
        #expect(evicted.count == 10_001 - 100)
        #expect(!evicted.contains(-1))
        #expect(evicted.first == 0)
        #expect(set.count == 100)
        #expect(set.contains(-1))
        #expect(set.contains(9_999) && !set.contains(9_900))
        #expect(set.remove(9_999) && !set.contains(9_999))
    }

    /// 20,000 starts: the correlator remembers at most `forgottenPods` reported pods; a late
    /// record of a pod it remembers opens no new start.
    @Test func theCorrelatorRemembersABoundedNumberOfReportedPods() {
        var correlator = Correlator(clock: WallClock(offsetNs: 0))
        var reported = 0
        for i in 0..<20_000 {
            let t = Self.t0 + Int64(i) * Self.s
            reported += correlator.ingest(.pod(PodSighting(uid: "u\(i)", namespace: "n", name: "p\(i)", createdUnixNs: t, source: .cri))).count
            reported += correlator.ingest(.ready(PodReadiness(uid: "u\(i)", atUnixNs: t + Self.s / 2, source: .podStatus))).count
            reported += correlator.ingest(.tick(nowUnixNs: t + Self.s * 3)).count
        }
        #expect(reported == 20_000)
        let counts = correlator.retainedCounts
        #expect(Self.count(counts, "reportedUIDs") == Correlator.MemoryBounds.forgottenPods)
        #expect(Self.count(counts, "pods") == 0)
        // the most recent pods are still known: their late records open nothing
        let late = Self.t0 + 20_001 * Self.s
        _ = correlator.ingest(.ready(PodReadiness(uid: "u19999", atUnixNs: late, source: .podStatus)))
        #expect(correlator.openStarts == 0)
    }

    /// 5,000 short-lived namespaces of no container (exec, then its init exits), no start at all:
    /// their records are swept once idle, though no start finishes.
    @Test func idleNamespacesOfNoContainerAreSweptWithoutAnyStart() {
        var correlator = Correlator(clock: WallClock(offsetNs: 0))
        let base: UInt64 = 1_000 * 1_000_000_000
        for k in 0..<5_000 {
            let t = base + UInt64(k) * 1_000_000
            _ = correlator.ingest(.kernel(Self.exec(pid: 10_000 + UInt32(k), ns: 4_026_600_000 + UInt32(k), atMonotonic: t)))
            _ = correlator.ingest(.kernel(Self.exit(pid: 10_000 + UInt32(k), ns: 4_026_600_000 + UInt32(k), atMonotonic: t + 1000)))
        }
        #expect(Self.count(correlator.retainedCounts, "trackers") == 5_000)
        _ = correlator.ingest(.tick(nowUnixNs: Int64(base) + 5 * Self.s + Correlator.MemoryBounds.idleNamespaceNs))
        let counts = correlator.retainedCounts
        #expect(Self.count(counts, "trackers") == 0)
        #expect(Self.count(counts, "exitedNamespaces") == 0)
    }

    static func hub(dir: String, processes: ContainerResolver.Processes) throws -> (AgentHub, TimelineStore) {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let store = try TimelineStore(directory: dir, logger: logger)
        let metrics = MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: "test")))
        return (AgentHub(correlator: Correlator(clock: WallClock(offsetNs: 0)), store: store, metrics: metrics, logger: logger,
                         processes: processes), store)
    }

    static func overlay(_ name: String) -> OverlayRootfs {
        OverlayRootfs(mountPoint: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/\(name)/rootfs",
                      lowerDirs: ["/var/lib/containerd/snapshots/1/fs"], upperDir: "/var/lib/containerd/snapshots/\(name)/fs")
    }

    /// 10,000 short-lived namespaces on overlays (build containers) and 5,000 sandboxes whose
    /// overlays containerd reported: the hub keeps at most its bounds of each.
    @Test func theHubKeepsBoundedOverlaysOfNamespacesAndContainersOfNoStart() async throws {
        let dir = NSTemporaryDirectory() + "podstart-bounds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let processes = ContainerResolver.Processes(mountNamespace: { _ in nil }, cgroups: { _ in "0::/user.slice\n" },
                                                    rootfs: { Self.overlay("scratch-\($0)") })
        let (hub, store) = try Self.hub(dir: dir, processes: processes)
        await hub.setHostMountNamespace(4_026_531_840)
        for k in 0..<10_000 {
            let t = UInt64(k) * 1_000_000
            let ns = 4_026_600_000 + UInt32(k), pid = 10_000 + UInt32(k)
            await hub.ingest(kernel: [Self.exec(pid: pid, ns: ns, atMonotonic: t), Self.exit(pid: pid, ns: ns, atMonotonic: t + 1000)])
        }
        for i in 0..<5_000 { await hub.learn(containerID: "sandbox-\(i)", files: .init(rootfs: Self.overlay("sandbox-\(i)"))) }
        let counts = await hub.retainedCounts
        #expect(Self.count(counts, "hub.rootfsByNamespace") <= AgentHub.MemoryBounds.exitedNamespaces)
        #expect(Self.count(counts, "hub.exitedNamespaces") == AgentHub.MemoryBounds.exitedNamespaces)
        #expect(Self.count(counts, "hub.triedNamespaces") <= 4097)
        #expect(Self.count(counts, "hub.containerFiles") <= 2 * AgentHub.MemoryBounds.unclaimedContainers)
        #expect(Self.count(counts, "hub.learnedOrder") <= 4 * AgentHub.MemoryBounds.unclaimedContainers)
        try store.close()
    }

    /// Containers created for pods the correlator opens no start for (they ran before the agent,
    /// or were reported: a restarted container) are not kept as some start's.
    @Test func containersOfPodsWithNoOpenStartAreNotKept() async throws {
        let dir = NSTemporaryDirectory() + "podstart-bounds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (hub, store) = try Self.hub(dir: dir, processes: .none)
        for i in 0..<3_000 {
            let t = Self.t0 + Int64(i) * Self.s
            await hub.ingest([
                .preexisting(uid: "old-\(i)"),
                .containerCreated(ContainerCreation(uid: "old-\(i)", containerID: "c-\(i)", name: "main", image: "app", imageDigest: nil,
                                                    isInit: false, beginUnixNs: t, endUnixNs: t, source: .cri)),
            ])
        }
        let counts = await hub.retainedCounts
        #expect(Self.count(counts, "hub.startContainers") == 0)
        #expect(Self.count(counts, "hub.containerNames") == 0)
        try store.close()
    }
}
