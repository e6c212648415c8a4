import ArgumentParser
import ContainerRuntime
import Exporter
import Foundation
import Logging
import PodstartAgent
import PodstartCore
import StateStore

/// `podstart-bench soak`: churn through the agent's hub and correlator in this process, at full
/// speed and without a kernel: N pod starts shaped as the sources report them (a sandbox whose
/// pause process execs in a mount namespace of its own, a container created, started and exec'd
/// in another, the runtime's overlay of each learnt, readiness; the pod's containers exit
/// `--pod-lifetime` starts later), and M short-lived mount namespaces of no container (build
/// sandboxes, `unshare`), half of them on an overlay, each an exec and its init's exit. Finished
/// starts are saved to a real state store. Resident memory is sampled every `--sample-every`
/// starts; the figures are RSS after the warm-up, the slope per 10,000 starts after it (least
/// squares over the samples), and the entries each map of the hub and the correlator holds at
/// the end. Flat memory means no structure grows with churn.
struct BenchSoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Drive pod starts and short-lived mount namespaces through the hub; report RSS slope and map sizes.",
        discussion: """
            Target: RSS slope after the warm-up <= 1% of the RSS after it per 10,000 starts, and every \
            map at the end within its bound (docs/agent.md, Bounded under churn).
            """
    )

    @Option(help: "Pod starts to drive.")
    var pods = 50_000

    @Option(help: "Short-lived mount namespaces of no container, spread evenly between the starts.")
    var namespaces = 1_000_000

    @Option(help: "Sample resident memory every this many starts.")
    var sampleEvery = 10_000

    /// 20,000: past the 16,384 reported pods the correlator remembers, so every bounded map is
    /// full when the baseline is read.
    @Option(help: "Starts before the RSS baseline (every bounded map fills, the store and the allocator warm up).")
    var warmup = 20_000

    @Option(help: "Starts a pod's containers live before they exit.")
    var podLifetime = 100

    @OptionGroup var format: FigureOutput

    func validate() throws {
        guard pods >= 1, namespaces >= 0, sampleEvery >= 1, warmup >= 0, warmup < pods, podLifetime >= 1 else {
            throw ValidationError("--pods must be positive and above --warmup; --sample-every and --pod-lifetime positive; --namespaces not negative")
        }
    }

    /// The pids and namespace numbers of start `i`, and of the `k`th short-lived namespace.
    struct Shapes {
        static let containerPidBase: UInt32 = 1_000_000
        static let scratchPidBase: UInt32 = 3_000_000
        static let namespaceBase: UInt32 = 4_026_600_000
        static let scratchNamespaceBase: UInt32 = 4_027_000_000

        static func containerID(_ i: Int, sandbox: Bool) -> String {
            String(repeating: sandbox ? "5" : "c", count: 48) + String(format: "%016x", i)
        }
        static func pid(_ i: Int, sandbox: Bool) -> UInt32 { containerPidBase + UInt32(2 * i + (sandbox ? 1 : 0)) }
        static func namespace(_ i: Int, sandbox: Bool) -> UInt32 { namespaceBase + UInt32(2 * i + (sandbox ? 1 : 0)) }
        /// Scratch namespaces' numbers are reused after 200,000 (the kernel reuses inode numbers).
        static func scratchNamespace(_ k: Int) -> UInt32 { scratchNamespaceBase + UInt32(k % 200_000) }
        static func scratchPid(_ k: Int) -> UInt32 { scratchPidBase + UInt32(k % 1_000_000) }

        static func rootfs(_ id: String) -> OverlayRootfs {
            let snapshots = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
            return OverlayRootfs(mountPoint: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/\(id)/rootfs",
                                 lowerDirs: ["\(snapshots)/3/fs", "\(snapshots)/2/fs", "\(snapshots)/1/fs"],
                                 upperDir: "\(snapshots)/\(id.suffix(8))/fs")
        }

        /// /proc as the hub sees it: pod containers' processes in their cgroups, on their overlay;
        /// scratch processes in a user session, every other one on an overlay.
        static let processes = ContainerResolver.Processes(
            mountNamespace: { _ in nil },
            cgroups: { pid in
                let p = UInt32(pid)
                guard p >= containerPidBase, p < scratchPidBase else { return "0::/user.slice/user-0.slice/session-1.scope\n" }
                let i = Int(p - containerPidBase) / 2
                let id = containerID(i, sandbox: (p - containerPidBase) % 2 == 1)
                return "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(i).slice/cri-containerd-\(id).scope\n"
            },
            rootfs: { pid in
                let p = UInt32(pid)
                if p >= scratchPidBase { return p % 2 == 0 ? rootfs("scratch-\(p)") : nil }
                let i = Int(p - containerPidBase) / 2
                return rootfs(containerID(i, sandbox: (p - containerPidBase) % 2 == 1))
            })
    }

    func run() async throws {
        let dir = NSTemporaryDirectory() + "podstart-soak-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logger = Logger(label: "soak") { _ in SwiftLogNoOpLogHandler() }
        let store = try TimelineStore(directory: dir, configuration: .init(maxAgeSeconds: nil, maxBytes: 16 << 20), logger: logger)
        let metrics = MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: PodstartVersion.string)))
        let clock = WallClock.measure()
        let hub = AgentHub(correlator: Correlator(clock: clock), store: store, metrics: metrics, logger: logger,
                           processes: Shapes.processes)
        await hub.setHostMountNamespace(4_026_531_840)

        let s: Int64 = 1_000_000_000
        // an hour after boot, on the kernel's clock: every start's instants convert both ways
        let t0 = clock.offsetNs + 3600 * s
        func mono(_ t: Int64) -> UInt64 { UInt64(t - clock.offsetNs) }
        func task(pid: UInt32, ns: UInt32, comm: String) -> TaskContext {
            TaskContext(pid: pid, tid: pid, parentPid: 1, namespacePid: 1, mountNamespace: ns, pidNamespace: ns, cgroupID: 0, comm: comm)
        }
        func exec(_ pid: UInt32, _ ns: UInt32, at t: Int64, path: String) -> KernelEvent {
            let file = FileIdentity(key: FileKey(device: DeviceNumber(rawValue: 44), inode: UInt64(pid)),
                                    dataKey: FileKey(device: DeviceNumber(rawValue: 44), inode: UInt64(pid)), sizeBytes: 1 << 20, mode: 0o100755)
            return .exec(ExecEvent(timestampNs: mono(t), task: task(pid: pid, ns: ns, comm: "app"), file: file,
                                   path: ResolvedPath(path: path, truncated: false), filename: path, arguments: [path],
                                   argumentsTruncated: false, isRuntimeProcess: false, oldPid: pid))
        }
        func exit(_ pid: UInt32, _ ns: UInt32, at t: Int64) -> KernelEvent {
            .exit(ExitEvent(timestampNs: mono(t), task: task(pid: pid, ns: ns, comm: "app"), waitStatus: 0, isRuntimeProcess: false))
        }

        var samples: [(starts: Int, rssKiB: Int)] = []
        var scratch = 0
        let started = ContinuousClock.now
        for i in 0..<pods {
            let t = t0 + Int64(i) * s
            let uid = "soak-pod-\(i)"
            let sandbox = Shapes.containerID(i, sandbox: true), container = Shapes.containerID(i, sandbox: false)
            // containerd's task-create events carry each task's overlay, the sandbox's too
            await hub.learn(containerID: sandbox, files: .init(rootfs: Shapes.rootfs(sandbox)))
            await hub.ingest([
                .pod(PodSighting(uid: uid, namespace: "soak", name: "pod-\(i)", createdUnixNs: t, source: .cri)),
                .sandbox(SandboxCreation(uid: uid, sandboxID: sandbox, beginUnixNs: t, endUnixNs: t + s / 10, source: .cri)),
            ])
            await hub.ingest(kernel: [exec(Shapes.pid(i, sandbox: true), Shapes.namespace(i, sandbox: true), at: t + s / 20, path: "/pause")])
            await hub.learn(containerID: container, files: .init(rootfs: Shapes.rootfs(container)))
            await hub.ingest([
                .containerCreated(ContainerCreation(uid: uid, containerID: container, name: "main", image: "registry.local/app:\(i % 50)",
                                                    imageDigest: nil, isInit: false, beginUnixNs: t + s / 5, endUnixNs: t + s / 4, source: .cri)),
                .containerStarted(ContainerStart(containerID: container, beginUnixNs: t + s / 4, endUnixNs: t + s * 3 / 10, source: .cri)),
                .containerPid(ContainerInitProcess(containerID: container, pid: Shapes.pid(i, sandbox: false))),
            ])
            await hub.ingest(kernel: [exec(Shapes.pid(i, sandbox: false), Shapes.namespace(i, sandbox: false), at: t + s * 3 / 10, path: "/app")])
            await hub.ingest([.ready(PodReadiness(uid: uid, atUnixNs: t + s / 2, source: .podStatus))])
            // the short-lived namespaces of this second
            let upTo = Int((Double(namespaces) * Double(i + 1) / Double(pods)).rounded(.down))
            var events: [KernelEvent] = []
            while scratch < upTo {
                let at = t + s / 2 + Int64(scratch % 1000) * 100_000
                events.append(exec(Shapes.scratchPid(scratch), Shapes.scratchNamespace(scratch), at: at, path: "/bin/sh"))
                events.append(exit(Shapes.scratchPid(scratch), Shapes.scratchNamespace(scratch), at: at + 50_000))
                scratch += 1
            }
            // the pod started `podLifetime` starts ago is deleted: its container and sandbox exit
            if i >= podLifetime {
                let old = i - podLifetime
                events.append(exit(Shapes.pid(old, sandbox: false), Shapes.namespace(old, sandbox: false), at: t + s * 6 / 10))
                events.append(exit(Shapes.pid(old, sandbox: true), Shapes.namespace(old, sandbox: true), at: t + s * 6 / 10 + 1))
            }
            if !events.isEmpty { await hub.ingest(kernel: events) }
            if i >= podLifetime {
                await hub.ingest([.containerExited(ContainerExit(containerID: Shapes.containerID(i - podLifetime, sandbox: false),
                                                                 atUnixNs: t + s * 6 / 10, exitCode: 0))])
            }
            await hub.ingest([.tick(nowUnixNs: t + s * 9 / 10)])
            if (i + 1) % sampleEvery == 0 || i + 1 == warmup {
                samples.append((i + 1, ResidentMemory.read().rssKiB))
                if !format.json { FileHandle.standardError.write(Data("\(i + 1) starts: RSS \(samples.last!.rssKiB) KiB\n".utf8)) }
            }
        }
        await hub.ingest([.tick(nowUnixNs: t0 + Int64(pods + 10) * s)])
        let elapsed = ContinuousClock.now - started
        let recorded = await hub.recorded
        let sizes = await hub.retainedCounts
        try store.close()

        let after = samples.filter { $0.starts >= warmup }
        let baseline = after.first?.rssKiB ?? samples.first?.rssKiB ?? 0
        let slope = Self.slopeBytesPer10k(after)
        if format.json {
            print(JSON.object([
                ("pods", .int(Int64(pods))), ("namespaces", .int(Int64(scratch))), ("warmupStarts", .int(Int64(warmup))),
                ("recorded", .int(Int64(recorded))),
                ("seconds", .double((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18).rounded(toPlaces: 1))),
                ("rssAfterWarmupBytes", .int(Int64(baseline) * 1024)),
                ("rssSlopeBytesPer10kStarts", .double(slope.rounded())),
                ("rssSamples", .array(samples.map { .object([("starts", .int(Int64($0.starts))), ("rssBytes", .int(Int64($0.rssKiB) * 1024))]) })),
                ("sizes", .object(sizes.map { ($0.name, .int(Int64($0.count))) })),
                ("targetsMet", .object([("flat", .bool(slope <= 0.01 * Double(baseline) * 1024))])),
            ]).rendered())
        } else {
            print("soak: \(pods) pod starts (\(recorded) recorded), \(scratch) short-lived mount namespaces, in \(elapsed)")
            print(String(format: "  RSS after %d warm-up starts: %.1f MiB; slope after it: %+.0f bytes per 10,000 starts (target <= 1%% of it)",
                         warmup, Double(baseline) / 1024, slope))
            print("  samples: " + samples.map { "\($0.starts): \(String(format: "%.1f", Double($0.rssKiB) / 1024)) MiB" }.joined(separator: ", "))
            print("  entries at the end: " + sizes.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        }
    }

    /// Least-squares slope of RSS over starts, in bytes per 10,000 starts (0 with fewer than 2 samples).
    static func slopeBytesPer10k(_ samples: [(starts: Int, rssKiB: Int)]) -> Double {
        guard samples.count >= 2 else { return 0 }
        let xs = samples.map { Double($0.starts) }, ys = samples.map { Double($0.rssKiB) * 1024 }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        let num = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let den = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        return den == 0 ? 0 : num / den * 10_000
    }
}
