import ContainerRuntime
import Foundation
import Testing

/// Mount tables as the kernel writes them (Fixtures/mountinfo/SOURCES.md), and what the agent
/// concludes from them about the runtime's rootfs mounts.
@Suite struct MountInfoTests {
    static func fixture(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test func everyLineOfARealTableIsReadWithItsFieldsAndEscapes() throws {
        let text = try Self.fixture("mountinfo/private-namespace.txt")
        let entries = MountInfoEntry.parse(text)
        #expect(entries.count == text.split(separator: "\n").count)
        let root = try #require(entries.first { $0.mountPoint == "/" })
        #expect(root.fileSystemType == "ext4" && root.source == "/dev/vda" && root.root == "/")
        #expect(root.propagation == .private && root.optionalFields.isEmpty)
        let spaced = try #require(entries.last)
        #expect(spaced.mountPoint == "/tmp/ps run dir")
        #expect(spaced.fileSystemType == "tmpfs" && spaced.superOptions == "rw")
        #expect(spaced.parentID == root.mountID)
    }

    @Test(arguments: [("shared-namespace.txt", MountInfoEntry.Propagation.shared), ("slave-namespace.txt", .slave),
                      ("private-namespace.txt", .private)])
    func propagationIsReadFromTheOptionalFields(file: String, expected: MountInfoEntry.Propagation) throws {
        let entries = MountInfoEntry.parse(try Self.fixture("mountinfo/\(file)"))
        #expect(MountInfoEntry.covering("/run/containerd/io.containerd.runtime.v2.task", in: entries)?.propagation == expected)
    }

    @Test func theCoveringMountIsTheLongestWholeComponentPrefix() throws {
        let entries = MountInfoEntry.parse(try Self.fixture("mountinfo/private-namespace.txt"))
        #expect(MountInfoEntry.covering("/tmp/ps run dir/k8s.io/x/rootfs", in: entries)?.mountPoint == "/tmp/ps run dir")
        #expect(MountInfoEntry.covering("/tmp/ps run dirt", in: entries)?.mountPoint == "/")
        #expect(MountInfoEntry.covering("/proc/self", in: entries)?.fileSystemType == "proc")
        #expect(MountInfoEntry.covering("/x", in: []) == nil)
    }

    @Test func linesThatAreNotMountinfoAreLeftOut() {
        #expect(MountInfoEntry.parse("garbage\n1 2 3\nx y 0:1 / / rw - ext4 /dev/vda rw\n\n").isEmpty)
        #expect(MountInfoEntry.parse("27 1 254:0 / / rw,relatime - ext4").isEmpty)
    }

    @Test func privateStateMountsAreNamedAndTheHostNamespaceIsAlwaysVisible() throws {
        let task = "/run/containerd/io.containerd.runtime.v2.task"
        let privateTable = try Self.fixture("mountinfo/private-namespace.txt")
        #expect(RuntimeMountVisibility.check(taskDirectory: task, mountInfo: privateTable, sameNamespaceAsInit: false)
                    == .notPropagated(mountPoint: "/"))
        #expect(RuntimeMountVisibility.check(taskDirectory: task, mountInfo: privateTable, sameNamespaceAsInit: true) == .sameNamespace)
        let slave = RuntimeMountVisibility.check(taskDirectory: task, mountInfo: try Self.fixture("mountinfo/slave-namespace.txt"),
                                                 sameNamespaceAsInit: false)
        #expect(slave == .propagated(mountPoint: "/", .slave) && slave.isVisible == true && slave.label == "slave")
        let none = RuntimeMountVisibility.check(taskDirectory: task, mountInfo: "", sameNamespaceAsInit: false)
        #expect(none.isVisible == nil && none.label == "unknown")
    }

    @Test func containerd2sConfigNamesItsRootAndState() throws {
        let layout = try #require(RuntimeLayout(configJSON: try Self.fixture("containerd-2.3-cri-config.json")))
        #expect(layout.containerdRoot == "/run/ctrd2/root")
        #expect(layout.containerdState == "/run/ctrd2/cstate")
        #expect(layout.taskDirectory == "/run/ctrd2/cstate/io.containerd.runtime.v2.task")
        #expect(RuntimeLayout(configJSON: "not json") == nil)
        #expect(RuntimeLayout(configJSON: "{}") == RuntimeLayout(containerdRoot: nil, containerdState: nil, snapshotter: nil))
    }
}
