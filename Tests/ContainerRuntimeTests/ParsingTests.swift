import Testing
@testable import ContainerRuntime
import PodstartCore

@Suite struct CgroupPathTests {
    static let id = String(repeating: "ab12", count: 16)

    @Test(arguments: [
        "/kubepods/burstable/pod0b4b1c1e-1111-2222-3333-444455556666/\(id)",
        "/podstart/pod0b4b1c1e-1111-2222-3333-444455556666/\(id)",
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b4b.slice/cri-containerd-\(id).scope",
        "/system.slice/docker-\(id).scope",
        "/kubepods.slice/crio-\(id).scope",
    ])
    func containerIDIsFoundInEveryCgroupLayout(path: String) {
        #expect(CgroupPaths.containerID(inPath: Substring(path)) == Self.id)
    }

    @Test func podAndSystemCgroupsAreNotContainers() {
        #expect(CgroupPaths.containerID(inPath: "/kubepods/burstable/pod0b4b1c1e-1111-2222-3333-444455556666") == nil)
        #expect(CgroupPaths.containerID(inPath: "/user.slice/user-0.slice/session-1.scope") == nil)
        #expect(CgroupPaths.containerID(inPath: "/") == nil)
        #expect(CgroupPaths.containerID(inPath: Substring("/x/" + Self.id.uppercased())) == nil)
    }

    @Test func procCgroupOfAHybridHostGivesTheIdAndTheUnifiedPath() {
        let text = """
        12:pids:/podstart/podabc/\(Self.id)
        11:memory:/podstart/podabc/\(Self.id)
        1:name=systemd:/podstart/podabc/\(Self.id)
        0::/podstart/podabc/\(Self.id)
        """
        #expect(CgroupPaths.containerID(procCgroup: text) == Self.id)
        #expect(CgroupPaths.unifiedPath(procCgroup: text) == "/podstart/podabc/\(Self.id)")
        #expect(CgroupPaths.containerID(procCgroup: "0::/user.slice\n") == nil)
    }
}

@Suite struct OverlayRootfsParsingTests {
    @Test func rootfsOverlayOfTheContainerIsFoundWithLowerDirsTopmostFirst() throws {
        let id = String(repeating: "c", count: 64)
        let root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
        let text = """
        22 1 0:21 / /proc rw,nosuid - proc proc rw
        310 29 0:64 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/\(String(repeating: "d", count: 64))/rootfs rw,relatime - overlay overlay rw,lowerdir=\(root)/1/fs,upperdir=\(root)/9/fs,workdir=\(root)/9/work
        311 29 0:65 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/\(id)/rootfs rw,relatime shared:5 - overlay overlay rw,lowerdir=\(root)/7/fs:\(root)/6/fs:\(root)/5/fs,upperdir=\(root)/8/fs,workdir=\(root)/8/work,index=off
        """
        let rootfs = try #require(OverlayRootfs.parse(mountInfo: text, containerID: id))
        #expect(rootfs.mountPoint == "/run/containerd/io.containerd.runtime.v2.task/k8s.io/\(id)/rootfs")
        #expect(rootfs.lowerDirs == ["\(root)/7/fs", "\(root)/6/fs", "\(root)/5/fs"])
        #expect(rootfs.upperDir == "\(root)/8/fs")
        #expect(rootfs.containerdRoot == "/var/lib/containerd")
        #expect(OverlayRootfs.parse(mountInfo: text, containerID: String(repeating: "e", count: 64)) == nil)
    }

    @Test func escapedSpacesInMountPathsAreDecoded() throws {
        let id = String(repeating: "f", count: 64)
        let text = "1 1 0:1 / /state\\040dir/k8s.io/\(id)/rootfs rw - overlay overlay rw,lowerdir=/a\\040b/fs,upperdir=/u/fs,workdir=/w"
        let rootfs = try #require(OverlayRootfs.parse(mountInfo: text, containerID: id))
        #expect(rootfs.mountPoint == "/state dir/k8s.io/\(id)/rootfs")
        #expect(rootfs.lowerDirs == ["/a b/fs"])
    }
}

// RFC 3339 formatting is PodstartCore's Timestamp, tested in PodstartCoreTests.
@Suite struct ReadinessFlagTests {
    @Test func readyHTTPFlagParsesPortAndPath() {
        #expect(ReadinessCheck.parseHTTP("8080/healthz") == .http(port: 8080, path: "/healthz"))
        #expect(ReadinessCheck.parseHTTP("8080") == .http(port: 8080, path: "/"))
        #expect(ReadinessCheck.parseHTTP("x/y") == nil)
        #expect(ReadinessCheck.parseHTTP("0/") == nil)
    }
}

@Suite struct ColdStartNameTests {
    @Test(arguments: [
        ("127.0.0.1:35000/podstart-test/reader:latest", "podstart-test/reader:latest"),
        ("127.0.0.1:41234/podstart-test/reader", "podstart-test/reader:latest"),
        ("busybox", "library/busybox:latest"),
        ("docker.io/library/busybox:1.36", "library/busybox:1.36"),
        ("registry.k8s.io/pause:3.9@sha256:abc", "pause:3.9"),
    ])
    func theSameRepositoryAndTagOnAnyHostCompareEqual(reference: String, expected: String) {
        #expect(ImageReference(ignoringDigest: reference)?.repositoryAndTag == expected)
    }
}
