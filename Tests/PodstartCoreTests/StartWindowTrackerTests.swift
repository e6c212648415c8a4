import PodstartCore
import Testing

@Suite("When the hot-path probes are attached")
struct StartWindowTrackerTests {
    static let host: UInt32 = 1000
    static func task(_ ns: UInt32, _ comm: String) -> TaskContext {
        TaskContext(pid: 1, tid: 1, parentPid: 0, namespacePid: 1, mountNamespace: ns, pidNamespace: 1, cgroupID: 1, comm: comm)
    }
    static func exec(at ns: UInt64, in mntns: UInt32, runtime: Bool = false, comm: String = "app") -> KernelEvent {
        let file = FileIdentity(key: FileKey(device: DeviceNumber(rawValue: 1), inode: 1),
                                dataKey: FileKey(device: DeviceNumber(rawValue: 1), inode: 1), sizeBytes: 1, mode: 0o100755)
        return .exec(ExecEvent(timestampNs: ns, task: task(mntns, comm), file: file, path: ResolvedPath(path: "/x", truncated: false),
                               filename: "/x", arguments: [], argumentsTruncated: false, isRuntimeProcess: runtime, oldPid: 1))
    }

    var config: StartWindowTracker.Configuration {
        var c = StartWindowTracker.Configuration()
        c.startupWindowNs = 10
        c.runtimeIdleNs = 5
        return c
    }

    static func exit(at ns: UInt64, in mntns: UInt32) -> KernelEvent {
        .exit(ExitEvent(timestampNs: ns, task: task(mntns, "app"), waitStatus: 0, isRuntimeProcess: false))
    }

    @Test func aContainersInitExitingEndsItsWindowAndFreesTheNamespaceNumberForTheNext() {
        var t = StartWindowTracker(configuration: config)
        #expect(t.observe(Self.exec(at: 100, in: 7), hostMountNamespace: Self.host) == [.attach])
        // gone before its window elapsed: not ignored, the kernel reuses the number
        #expect(t.observe(Self.exit(at: 102, in: 7), hostMountNamespace: Self.host) == [.finished(mountNamespace: 7, reason: .exited), .detach])
        // a finished (ignored) container's init exits later: the next container with that number is traced
        #expect(t.observe(Self.exec(at: 200, in: 8), hostMountNamespace: Self.host) == [.attach])
        #expect(t.markReady(mountNamespace: 8, nowNs: 201) == [.finished(mountNamespace: 8, reason: .ready), .detach])
        #expect(t.observe(Self.exec(at: 202, in: 8), hostMountNamespace: Self.host).isEmpty, "ignored while it lives")
        #expect(t.observe(Self.exit(at: 203, in: 8), hostMountNamespace: Self.host).isEmpty)
        #expect(t.observe(Self.exec(at: 204, in: 8), hostMountNamespace: Self.host) == [.attach], "a new container under the old number")
    }

    @Test func nothingStartingMeansNothingAttached() {
        var t = StartWindowTracker(configuration: config)
        #expect(t.tick(nowNs: 100).isEmpty)
        #expect(t.observe(Self.exec(at: 100, in: Self.host), hostMountNamespace: Self.host).isEmpty,
                "a host process that is not the runtime opens no window")
        #expect(!t.isOpen)
    }

    @Test func runtimeActivityOpensAWindowThatClosesWhenIdle() {
        var t = StartWindowTracker(configuration: config)
        #expect(t.observe(Self.exec(at: 100, in: Self.host, runtime: true, comm: "runc"), hostMountNamespace: Self.host) == [.attach])
        #expect(t.tick(nowNs: 104).isEmpty)
        #expect(t.tick(nowNs: 105) == [.detach])
    }

    @Test func aContainerWindowLastsUntilReadyAndItsNamespaceIsIgnoredAfter() {
        var t = StartWindowTracker(configuration: config)
        _ = t.observe(Self.exec(at: 100, in: Self.host, runtime: true, comm: "runc"), hostMountNamespace: Self.host)
        #expect(t.observe(Self.exec(at: 102, in: 7), hostMountNamespace: Self.host).isEmpty)
        #expect(t.tick(nowNs: 106).isEmpty, "runtime idle but the container is still starting")
        #expect(t.markReady(mountNamespace: 7, nowNs: 107) == [.finished(mountNamespace: 7, reason: .ready), .detach])
        #expect(t.observe(Self.exec(at: 108, in: 7), hostMountNamespace: Self.host).isEmpty, "a finished container is not a start again")
        #expect(!t.isOpen)
    }

    @Test func withoutReadinessTheStartupWindowEndsTheStart() {
        var t = StartWindowTracker(configuration: config)
        #expect(t.observe(Self.exec(at: 100, in: 9), hostMountNamespace: Self.host) == [.attach])
        #expect(t.tick(nowNs: 109).isEmpty)
        #expect(t.tick(nowNs: 110) == [.finished(mountNamespace: 9, reason: .startupWindowElapsed), .detach])
    }

    @Test func overlappingStartsKeepTheHooksUntilTheLastEnds() {
        var t = StartWindowTracker(configuration: config)
        #expect(t.observe(Self.exec(at: 100, in: 7), hostMountNamespace: Self.host) == [.attach])
        #expect(t.observe(Self.exec(at: 105, in: 8), hostMountNamespace: Self.host).isEmpty)
        #expect(t.tick(nowNs: 110) == [.finished(mountNamespace: 7, reason: .startupWindowElapsed)])
        #expect(t.tick(nowNs: 115) == [.finished(mountNamespace: 8, reason: .startupWindowElapsed), .detach])
    }
}
