import Foundation
import KernelProbes
import PodstartCore
import Synchronization
import Testing

/// A real runc container start, with only the always-on hooks attached at first: runc's exec
/// must open a start window early enough that the container's own opens are seen, and the end
/// of the window must take the hot-path programs out of the kernel again.
extension RealKernel {
@Suite("Start windows with runc")
struct StartWindowTests {
    @Test func aRuncStartAttachesTheHotHooksInTimeAndTheirEndDetachesThem() async throws {
        let root = try TestRoot(name: "runc")
        try root.write("data/a.txt", bytes: 321)
        let bundle = try RuncBundle(rootfs: root.path, args: ["/ps-workload", "open", "/data/a.txt", "read", "/data/a.txt", "0", "321"])

        let session = try openSession()
        defer { session.close() }
        var windows = StartWindowTracker.Configuration()
        windows.startupWindowNs = 1_000_000_000
        windows.runtimeIdleNs = 1_000_000_000
        let driver = StartWindowDriver(session: session, configuration: windows)
        try session.attach([.process])
        #expect(session.attachedFamilies == [.process])
        // Only this session's programs count: other tracers (other sessions, other tests, a
        // `podstart probe`) may have programs of the same names attached at the same time.
        let ours = Set(session.programIDs.values)
        let before = try BPFLinks.attachedPrograms(ids: ours)
        #expect(!before.contains("tracepoint__syscalls__sys_exit_openat"), "no openat hook before any start: \(before)")

        let events = Locked<[KernelEvent]>([])
        // Each decision with the CLOCK_MONOTONIC time it had been applied (hooks attached or
        // detached), to set against the kernel's event timestamps when something is late.
        let decisions = Locked<[(decision: StartWindowTracker.Decision, appliedNs: UInt64)]>([])
        func record(_ d: [StartWindowTracker.Decision]) {
            let now = WallClock.monotonicNow()
            decisions.withLock { $0.append(contentsOf: d.map { ($0, now) }) }
        }
        let stream = try session.events()
        // Only this test's runc (started by this process; its arguments name the container) and
        // its descendants (execs, forks, exits) drive the window: other containerd and runc processes on the machine
        // (other engineers' tests) open windows of their own, which is right for an agent but
        // not what this test checks.
        let containerID = bundle.id
        let testPid = UInt32(getpid())
        let ourPids = Locked<Set<UInt32>>([])
        let consumer = Task {
            for await batch in stream {
                let decoded = batch.decode()
                events.withLock { $0.append(contentsOf: decoded) }
                let ours = ourPids.withLock { pids in
                    decoded.filter { event in
                        switch event {
                        case .exec(let e):
                            if e.task.parentPid == testPid || e.arguments.contains(containerID) { pids.insert(e.task.pid) }
                            return pids.contains(e.task.pid)
                        case .fork(let f):
                            guard pids.contains(f.parent.pid) else { return false }
                            pids.insert(f.childPid)
                            return true
                        case .exit(let e):
                            return pids.contains(e.task.pid)
                        default:
                            return false
                        }
                    }
                }
                if let d = try? driver.handle(ours) { record(d) }
            }
        }
        // The window can only close on a tick (or an event): no ticks until the kernel's view
        // during the window has been checked, so a slow machine cannot close it before the check.
        let ticking = Locked(false)
        let ticker = Task {
            while !Task.isCancelled {
                if ticking.withLock({ $0 }), let d = try? driver.tick() { record(d) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { ticker.cancel() }

        let runStartNs = WallClock.monotonicNow()
        let result = try bundle.run()
        let runEndNs = WallClock.monotonicNow()
        #expect(result.status == 0, "runc run failed: \(result.stderr)")
        // The container has exited but its window is still open: the kernel must show our hooks
        // now, or the detach check below would prove nothing.
        let whileOpen = try BPFLinks.attachedPrograms(ids: ours)
        #expect(driver.isOpen)
        #expect(whileOpen.contains("tracepoint__syscalls__sys_exit_openat"), "openat hook not in the kernel during the window: \(whileOpen)")
        ticking.withLock { $0 = true }

        // The window closes 1 s after the container's first exec (no readiness known here).
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, driver.isOpen { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!driver.isOpen, "the start window never closed")
        #expect(session.attachedFamilies == [.process], "hot-path families still attached: \(session.attachedFamilies)")
        let stillAttached = try BPFLinks.attachedPrograms(ids: ours)
        #expect(!stillAttached.contains("tracepoint__syscalls__sys_exit_openat"), "kernel still has our openat hook: \(stillAttached)")
        #expect(!stillAttached.contains("tracepoint__filemap__mm_filemap_get_pages"), "\(stillAttached)")

        session.close()
        await consumer.value
        let all = events.withLock { $0 }

        let runcExec = all.compactMap(\.exec).first { $0.task.comm == "runc" }
        #expect(runcExec?.isRuntimeProcess == true, "runc's exec is reported as the runtime's")
        let applied = decisions.withLock { $0 }
        let d = applied.map(\.decision)
        // Every time on one line, in ms after `runc run` was started, for whatever fails below.
        func ms(_ ns: UInt64?) -> String {
            guard let ns else { return "never" }
            return String(format: "%+.1f ms", (Double(ns) - Double(runStartNs)) / 1e6)
        }
        let entryExec = all.compactMap(\.exec).first { $0.path.path == "/ps-workload" }
        let timings = "runc exec \(ms(runcExec?.timestampNs)), hooks attached \(ms(applied.first { $0.decision == .attach }?.appliedNs)), "
            + "container's first exec \(ms(entryExec?.timestampNs)), runc run returned \(ms(runEndNs)), "
            + "decisions \(applied.map { "\($0.decision)@\(ms($0.appliedNs))" })"
        let entry = try #require(entryExec, "the container's first exec was not seen; \(timings)")
        let ns = entry.task.mountNamespace
        #expect(ns != session.hostMountNamespace)
        #expect(entry.isRuntimeProcess == false, "a container's process is not the runtime's")
        // Resolved from the container's root after pivot_root, not from the host's.
        #expect(all.compactMap(\.open).contains { $0.task.mountNamespace == ns && $0.path?.path == "/data/a.txt" },
                "the container's open of /data/a.txt was missed: the window opened too late; \(timings)")
        #expect(d.first == .attach, "\(timings)")
        // The container exits at once: its window ends with its init (its namespace is gone, so
        // it is not ignored — the kernel hands the number to the next container).
        #expect(d.contains(.finished(mountNamespace: ns, reason: .exited)), "\(timings)")
        #expect(d.last == .detach, "\(timings)")
    }
}

}

/// A runc bundle over a root file system, with its own state directory.
struct RuncBundle {
    let directory: String
    let state: String
    let id: String

    init(rootfs: String, args: [String]) throws {
        directory = rootfs + ".bundle"
        state = rootfs + ".runc"
        id = "podstart-test-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try KernelProbesTests.run(["runc", "spec", "--bundle", directory])
        let url = URL(filePath: "\(directory)/config.json")
        var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var process = spec["process"] as! [String: Any]
        process["args"] = args
        process["terminal"] = false
        spec["process"] = process
        spec["root"] = ["path": rootfs, "readonly": false]
        try JSONSerialization.data(withJSONObject: spec).write(to: url)
    }

    func run() throws -> (status: Int32, stdout: String, stderr: String) {
        defer {
            _ = try? KernelProbesTests.run(["runc", "--root", state, "delete", "--force", id], allowFailure: true)
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: state)
        }
        return try KernelProbesTests.run(["runc", "--root", state, "run", "--bundle", directory, id], allowFailure: true)
    }
}

/// What the kernel itself says is attached: BPF links and the names of their programs.
enum BPFLinks {
    /// Names of the attached programs among `ids` (a session's `programIDs`).
    static func attachedPrograms(ids: Set<UInt32>) throws -> [String] {
        try attachedPrograms().filter { ids.contains($0.id) }.map(\.name).sorted()
    }

    static func attachedPrograms() throws -> [(id: UInt32, name: String)] {
        let links = try run(["bpftool", "-j", "link", "show"]).stdout
        let progs = try run(["bpftool", "-j", "prog", "show"]).stdout
        guard let linkList = try JSONSerialization.jsonObject(with: Data(links.utf8)) as? [[String: Any]],
              let progList = try JSONSerialization.jsonObject(with: Data(progs.utf8)) as? [[String: Any]]
        else { return [] }
        var names: [Int: String] = [:]
        for p in progList { if let id = p["id"] as? Int, let name = p["name"] as? String { names[id] = name } }
        return linkList.compactMap { link in
            (link["prog_id"] as? Int).flatMap { id in names[id].map { (UInt32(id), $0) } }
        }
    }
}
