import ContainerRuntime
import Foundation
import Testing

/// `OverlayRootfs.imageBytes()`: the unpacked size access profiles divide by.
@Suite struct ImageBytesTests {
    @Test func sumsRegularFilesOfEveryLayerOnceEachIgnoringLinksAndDirectories() throws {
        let root = NSTemporaryDirectory() + "podstart-imagebytes-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/lower0/usr/lib/deep", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/lower1/data", withIntermediateDirectories: true)
        try Data(count: 1000).write(to: URL(fileURLWithPath: "\(root)/lower0/usr/lib/a"))
        try Data(count: 234).write(to: URL(fileURLWithPath: "\(root)/lower0/usr/lib/deep/b"))
        try fm.linkItem(atPath: "\(root)/lower0/usr/lib/a", toPath: "\(root)/lower0/usr/lib/a-hardlink")
        try fm.createSymbolicLink(atPath: "\(root)/lower0/usr/lib/a-symlink", withDestinationPath: "a")
        try fm.createSymbolicLink(atPath: "\(root)/lower0/loop", withDestinationPath: "/")  // never followed
        try Data(count: 5000).write(to: URL(fileURLWithPath: "\(root)/lower1/data/c"))
        try Data(count: 1000).write(to: URL(fileURLWithPath: "\(root)/lower1/usr-a-replaced"))
        let rootfs = OverlayRootfs(mountPoint: "\(root)/merged", lowerDirs: ["\(root)/lower1", "\(root)/lower0"], upperDir: "\(root)/upper")
        #expect(rootfs.imageBytes() == 1000 + 234 + 5000 + 1000)
        #expect(OverlayRootfs(mountPoint: "/x", lowerDirs: [], upperDir: nil).imageBytes() == nil)
        #expect(OverlayRootfs(mountPoint: "/x", lowerDirs: ["\(root)/missing"], upperDir: nil).imageBytes() == nil)
    }
}
