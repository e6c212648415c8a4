import Foundation
import Testing
@testable import ContainerRuntime

/// Container membership from recorded /proc/PID/cgroup and mountinfo of cgroup v1 hybrid and v2
/// hosts (Fixtures/cgroup/SOURCES.md says where each came from).
@Suite struct CgroupSampleTests {
    static func fixture(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/cgroup/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    static let v2ContainerID = "0f552b87ec46483d405433894b4abaaef3ed64d8bc819f2a2c52500a5fe720eb"

    @Test func ctrRunIdOfAnyShapeIsFoundOnAHybridHostWhenKnown() throws {
        let text = try Self.fixture("hybrid-ctr-web-1.cgroup")
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: ["web-1", "web-2"]) == "web-1")
        // Not 64-hex: without the known ids nothing claims it.
        #expect(CgroupPaths.containerID(procCgroup: text) == nil)
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: []) == nil)
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: ["web-2"]) == nil)
        #expect(CgroupPaths.unifiedPath(procCgroup: text) == "/podstart-sample/web-1")
    }

    @Test func v1OnlyLinesStillNameTheContainer() throws {
        let text = try Self.fixture("hybrid-ctr-web-1.cgroup")
        let v1Only = text.split(separator: "\n").filter { !$0.hasPrefix("0::") }.joined(separator: "\n")
        #expect(v1Only.count < text.count)
        #expect(CgroupPaths.containerID(procCgroup: v1Only, knownIDs: ["web-1"]) == "web-1")
        #expect(CgroupPaths.unifiedPath(procCgroup: v1Only) == nil)
    }

    @Test func theDeepestKnownComponentWinsOverTheNamespaceComponent() throws {
        let text = try Self.fixture("hybrid-ctr-web-1.cgroup")
        // A container named like the ctr namespace must not capture its siblings.
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: ["podstart-sample", "web-1"]) == "web-1")
    }

    @Test func systemdScopeOfAV2NodeGivesTheContainerID() throws {
        let text = try Self.fixture("v2-systemd-cri-containerd.cgroup")
        #expect(CgroupPaths.containerID(procCgroup: text) == Self.v2ContainerID)
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: [Self.v2ContainerID]) == Self.v2ContainerID)
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: ["web-1"]) == Self.v2ContainerID)
        #expect(CgroupPaths.unifiedPath(procCgroup: text)?.hasSuffix("cri-containerd-\(Self.v2ContainerID).scope") == true)
    }

    @Test func hostInitOfAV2HostIsNoContainer() throws {
        let text = try Self.fixture("v2-init.cgroup")
        #expect(CgroupPaths.containerID(procCgroup: text, knownIDs: ["web-1"]) == nil)
        #expect(CgroupPaths.unifiedPath(procCgroup: text) == "/init.scope")
    }

    @Test func hybridMountinfoPutsTheUnifiedHierarchyUnderUnified() throws {
        let mounts = CgroupMounts.parse(mountinfo: try Self.fixture("hybrid.mountinfo"))
        #expect(mounts.unified == "/sys/fs/cgroup/unified")
        #expect(mounts.unifiedRoot == "/")
        #expect(mounts.v1["memory"] == "/sys/fs/cgroup/memory")
        #expect(mounts.v1["name=systemd"] == "/sys/fs/cgroup/systemd")
        #expect(mounts.v1.count == 9)
        #expect(CgroupMounts.parse(mountinfo: try Self.fixture("hybrid-lxc.mountinfo")).unified == "/sys/fs/cgroup/unified")
    }

    @Test func v2MountinfoIsRecognisedByFileSystemTypeNotSource() throws {
        let mounts = CgroupMounts.parse(mountinfo: try Self.fixture("v2-docker-desktop.mountinfo"))
        #expect(mounts.unified == "/sys/fs/cgroup")
        #expect(mounts.v1.isEmpty)
    }

    @Test func aHostWithoutCgroup2SaysSoByName() throws {
        let text = try Self.fixture("hybrid.mountinfo").split(separator: "\n")
            .filter { !$0.contains(" - cgroup2 ") }.joined(separator: "\n")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-v1-\(getpid()).mountinfo").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect(CgroupMounts.parse(mountinfo: text).unified == nil)
        #expect(throws: CgroupError.noUnifiedHierarchy(mountinfo: path)) { try CgroupIndex(mountinfoPath: path) }
        #expect("\(CgroupError.noUnifiedHierarchy(mountinfo: path))".contains("cgroup2"))
    }

    /// The real unified hierarchy of this machine: a cgroup made by the test maps id ↔ path.
    @Test func cgroupIDOfAFreshCgroupMapsBackToItsPath() throws {
        #expect(getuid() == 0, "needs root to make a cgroup")
        let index = try CgroupIndex()
        let name = "/podstart-cgroupindex-test-\(getpid())"
        let full = index.mountPoint + name
        #expect(mkdir(full, 0o755) == 0, "mkdir \(full): \(String(cString: strerror(errno)))")
        defer { rmdir(full) }
        var st = stat()
        #expect(stat(full, &st) == 0)
        #expect(index.cgroupID(path: name) == UInt64(st.st_ino))
        // A fresh index has to find it by walking.
        #expect(CgroupIndex(mountPoint: index.mountPoint).path(cgroupID: UInt64(st.st_ino)) == name)
        #expect(CgroupIndex(mountPoint: index.mountPoint).path(cgroupID: 1 << 60) == nil)
    }
}
