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
        #expect(try BPFLinks.attachedTracepointPrograms().contains("tracepoint__syscalls__sys_exit_openat") == false,
                "no openat hook before any start")

        let events = Locked<[KernelEvent]>([])
        let decisions = Locked<[StartWindowTracker.Decision]>([])
        let stream = try session.events()
        let consumer = Task {
            for await batch in stream {
                let decoded = batch.decode()
                events.withLock { $0.append(contentsOf: decoded) }
                if let d = try? driver.handle(decoded) { decisions.withLock { $0.append(contentsOf: d) } }
            }
        }
        let ticker = Task {
            while !Task.isCancelled {
                if let d = try? driver.tick() { decisions.withLock { $0.append(contentsOf: d) } }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { ticker.cancel() }

        let result = try bundle.run()
        #expect(result.status == 0, "runc run failed: \(result.stderr)")
        // The container has exited but its window is still open: the kernel must show our hooks
        // now, or the detach check below would prove nothing.
        let whileOpen = try BPFLinks.attachedTracepointPrograms()
        #expect(driver.isOpen)
        #expect(whileOpen.contains("tracepoint__syscalls__sys_exit_openat"), "openat hook not in the kernel during the window: \(whileOpen)")

        // The window closes 1 s after the container's first exec (no readiness known here).
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, driver.isOpen { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!driver.isOpen, "the start window never closed")
        #expect(session.attachedFamilies == [.process], "hot-path families still attached: \(session.attachedFamilies)")
        let stillAttached = try BPFLinks.attachedTracepointPrograms()
        #expect(!stillAttached.contains("tracepoint__syscalls__sys_exit_openat"), "kernel still has our openat hook: \(stillAttached)")
        #expect(!stillAttached.contains("tracepoint__filemap__mm_filemap_get_pages"))

        session.close()
        await consumer.value
        let all = events.withLock { $0 }

        let runcExec = all.compactMap(\.exec).first { $0.task.comm == "runc" }
        #expect(runcExec?.isRuntimeProcess == true, "runc's exec is reported as the runtime's")
        let entry = try #require(all.compactMap(\.exec).first { $0.path.path == "/ps-workload" },
                                 "the container's first exec was not seen")
        let ns = entry.task.mountNamespace
        #expect(ns != session.hostMountNamespace)
        #expect(entry.isRuntimeProcess == false, "a container's process is not the runtime's")
        // Resolved from the container's root after pivot_root, not from the host's.
        #expect(all.compactMap(\.open).contains { $0.task.mountNamespace == ns && $0.path?.path == "/data/a.txt" },
                "the container's open of /data/a.txt was missed: the window opened too late")
        let d = decisions.withLock { $0 }
        #expect(d.first == .attach)
        #expect(d.contains(.finished(mountNamespace: ns, reason: .startupWindowElapsed)))
        #expect(d.last == .detach)
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
    static func attachedTracepointPrograms() throws -> [String] {
        let links = try run(["bpftool", "-j", "link", "show"]).stdout
        let progs = try run(["bpftool", "-j", "prog", "show"]).stdout
        guard let linkList = try JSONSerialization.jsonObject(with: Data(links.utf8)) as? [[String: Any]],
              let progList = try JSONSerialization.jsonObject(with: Data(progs.utf8)) as? [[String: Any]]
        else { return [] }
        var names: [Int: String] = [:]
        for p in progList { if let id = p["id"] as? Int, let name = p["name"] as? String { names[id] = name } }
        return linkList.compactMap { link in (link["prog_id"] as? Int).flatMap { names[$0] } }
    }
}
