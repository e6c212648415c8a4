import Foundation
import PodstartCore
import Testing
@testable import ContainerRuntime

/// Membership from containerd's task events joined to kernel records, in either order, for pids
/// /proc no longer has (pids above the kernel's pid_max limit, so /proc can never answer).
@Suite struct ResolverMembershipTests {
    static let initPid: UInt32 = 4_194_400
    static let childPid: UInt32 = 4_194_401
    static let helperPid: UInt32 = 4_194_399
    static let mntns: UInt32 = 4_026_599_001
    static let cgroup: UInt64 = 987_654

    static func task(_ pid: UInt32, mntns: UInt32 = mntns, cgroup: UInt64 = cgroup) -> TaskContext {
        TaskContext(pid: pid, tid: pid, parentPid: 1, namespacePid: 1, mountNamespace: mntns, pidNamespace: 1,
                    cgroupID: cgroup, comm: "busybox")
    }

    static func lifecycle(_ id: String) -> [ContainerdEvent] {
        let payloads: [ContainerdEvent.Payload] = [
            .containerCreate(id: id, image: "127.0.0.1:5000/x:latest", runtime: "io.containerd.runc.v2"),
            .taskCreate(containerID: id, bundle: "/run/x/\(id)", pid: initPid),
            .taskStart(containerID: id, pid: initPid),
            .taskExit(containerID: id, execID: "", pid: initPid, exitStatus: 7, exitedAt: 5),
            .taskDelete(containerID: id, pid: initPid, exitStatus: 7, exitedAt: 5),
            .containerDelete(id: id),
        ]
        return payloads.enumerated().map { ContainerdEvent(timestamp: Int64($0.offset), namespace: "ns1", topic: "", payload: $0.element) }
    }

    func expectResolved(_ resolver: ContainerResolver, _ id: String) async throws {
        for pid in [Self.initPid, Self.childPid] {
            let meta = try await resolver.metadata(pid: Int32(pid))
            #expect(meta?.containerID == id, "pid \(pid)")
        }
        let meta = try #require(await resolver.metadata(mountNamespaceInode: UInt64(Self.mntns)))
        #expect(meta.containerID == id)
        #expect(meta.containerdNamespace == "ns1")
        #expect(meta.image == "127.0.0.1:5000/x:latest")
        #expect(meta.state == .exited && meta.exitCode == 7)
        #expect(meta.pid == nil)
        #expect(meta.cgroupID == Self.cgroup)
        #expect(await resolver.metadata(cgroupID: Self.cgroup)?.containerID == id)
    }

    @Test func kernelRecordsBeforeTheTaskEventsBind() async throws {
        let resolver = ContainerResolver(endpoint: CRIEndpoint(socketPath: "/nonexistent.sock"))
        await resolver.apply(Self.lifecycle("web-1")[0])
        await resolver.observe(Self.task(Self.initPid))
        for event in Self.lifecycle("web-1").dropFirst() { await resolver.apply(event) }
        await resolver.observe(Self.task(Self.childPid))
        try await expectResolved(resolver, "web-1")
    }

    @Test func kernelRecordsAfterTheTaskEventsBind() async throws {
        let resolver = ContainerResolver(endpoint: CRIEndpoint(socketPath: "/nonexistent.sock"))
        for event in Self.lifecycle("web-1") { await resolver.apply(event) }
        await resolver.observe(Self.task(Self.initPid))
        await resolver.observe(Self.task(Self.childPid))
        try await expectResolved(resolver, "web-1")
    }

    @Test func runtimeHelpersInTheHostMountNamespaceNeverBindIt() async throws {
        let resolver = ContainerResolver(endpoint: CRIEndpoint(socketPath: "/nonexistent.sock"))
        var st = stat()
        #expect(stat("/proc/self/ns/mnt", &st) == 0)
        let own = UInt32(st.st_ino)
        for event in Self.lifecycle("web-1").prefix(2) { await resolver.apply(event) }
        // runc init before it unshares, and a stray record of the init pid, in the host namespace.
        await resolver.observe(Self.task(Self.helperPid, mntns: own))
        await resolver.observe(Self.task(Self.initPid, mntns: own))
        #expect(await resolver.metadata(mountNamespaceInode: UInt64(own)) == nil)
        #expect(try await resolver.metadata(pid: Int32(Self.helperPid)) == nil)
        #expect(await resolver.metadata(containerID: "web-1")?.mountNamespaceInode == nil)
        // The real record of the init pid, in the container's own namespace, binds.
        await resolver.observe(Self.task(Self.initPid))
        #expect(await resolver.metadata(containerID: "web-1")?.mountNamespaceInode == UInt64(Self.mntns))
    }

    @Test func theRootCgroupOfV1OnlyHostsIsNoContainer() async throws {
        let resolver = ContainerResolver(endpoint: CRIEndpoint(socketPath: "/nonexistent.sock"))
        for event in Self.lifecycle("web-1").prefix(3) { await resolver.apply(event) }
        await resolver.observe(Self.task(Self.initPid, cgroup: 1))
        #expect(await resolver.metadata(containerID: "web-1")?.mountNamespaceInode == UInt64(Self.mntns))
        #expect(await resolver.metadata(containerID: "web-1")?.cgroupID == nil)
        #expect(await resolver.metadata(cgroupID: 1) == nil)
    }
}
