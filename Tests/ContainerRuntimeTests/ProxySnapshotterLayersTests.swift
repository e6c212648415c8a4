import Foundation
import PodstartCore
import Testing
@testable import ContainerRuntime

/// A proxy snapshotter (stargz) mounts each layer under its own directory
/// (`<its root>/snapshotter/snapshots/<N>/fs`), which does not lead to containerd's root: the
/// image's layers must come from the root the runtime reports, and a path's data file (what the
/// kernel's page-cache fills and FUSE reads name) from the layer's copy of it either way. Before
/// this, `trace` on the stargz snapshotter resolved no path at all and named no lazily fetched
/// read (issue #17).
@Suite struct ProxySnapshotterLayersTests {
    static func hex(_ c: Character) -> String { String(repeating: c, count: 64) }

    @Test func aStargzRootfsFindsItsLayersUnderTheRuntimesRootAndEachPathsDataFileInItsLayer() throws {
        let files = FileManager.default
        let base = files.temporaryDirectory.appendingPathComponent("podstart-proxy-layers-\(UUID().uuidString)").path
        defer { try? files.removeItem(atPath: base) }
        // containerd's content store: the manifest and config a lazy pull leaves (no layer blobs)
        let containerdRoot = "\(base)/containerd/root"
        let blobs = "\(containerdRoot)/io.containerd.content.v1.content/blobs/sha256"
        try files.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let bottom = "sha256:" + Self.hex("1"), top = "sha256:" + Self.hex("2")
        let manifest = """
            {"schemaVersion":2,"config":{"digest":"sha256:\(Self.hex("c"))"},"layers":[\
            {"digest":"\(bottom)","size":10,"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"},\
            {"digest":"\(top)","size":20,"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}]}
            """
        try manifest.write(toFile: "\(blobs)/\(Self.hex("a"))", atomically: true, encoding: .utf8)
        try #"{"rootfs":{"type":"layers","diff_ids":[]}}"#.write(toFile: "\(blobs)/\(Self.hex("c"))", atomically: true, encoding: .utf8)
        // the snapshotter's layers, topmost first, and the container's writable layer
        let snapshots = "\(base)/stargz/root/snapshotter/snapshots"
        for dir in ["6/fs/data", "5/fs/bin", "8/fs"] {
            try files.createDirectory(atPath: "\(snapshots)/\(dir)", withIntermediateDirectories: true)
        }
        try "random".write(toFile: "\(snapshots)/6/fs/data/random.bin", atomically: true, encoding: .utf8)
        try "busybox".write(toFile: "\(snapshots)/5/fs/bin/busybox", atomically: true, encoding: .utf8)
        let rootfs = OverlayRootfs(mountPoint: "\(base)/containerd/state/io.containerd.runtime.v2.task/k8s.io/\(Self.hex("d"))/rootfs",
                                   lowerDirs: ["\(snapshots)/6/fs", "\(snapshots)/5/fs"], upperDir: "\(snapshots)/8/fs")
        let manifestDigest = "sha256:" + Self.hex("a")

        #expect(rootfs.containerdRoot == nil, "no overlayfs snapshotter path leads to containerd's root")
        #expect(rootfs.imageLayers(digest: manifestDigest) == nil)
        let layers = try #require(rootfs.imageLayers(digest: manifestDigest, runtimeRoot: containerdRoot))
        #expect(layers.layers.map(\.digest) == [bottom, top])

        // the open names the overlay's inode; the location names the layer and the layer's file
        let overlayFile = FileKey(device: DeviceNumber(rawValue: 46), inode: 3)
        let opened = FileIdentity(key: overlayFile, dataKey: overlayFile, sizeBytes: 6, mode: 0o100644)
        var st = stat()
        try #require(stat("\(snapshots)/6/fs/data/random.bin", &st) == 0)
        let random = rootfs.location(of: "/data/random.bin", file: opened, layers: layers)
        #expect(random == LayerLocation(layerDigest: top,
                                        dataFile: FileKey(device: DeviceNumber(userspace: UInt64(st.st_dev)), inode: UInt64(st.st_ino))))
        #expect(rootfs.location(of: "/bin/busybox", file: opened, layers: layers).layerDigest == bottom)
        // without the layers the data file is still the layer's copy, only the digest is unknown
        #expect(rootfs.location(of: "/data/random.bin", file: opened, layers: nil) == LayerLocation(layerDigest: nil, dataFile: random.dataFile))
        // a path no layer has keeps the open's own data inode
        #expect(rootfs.location(of: "/etc/missing", file: opened, layers: layers) == LayerLocation(layerDigest: nil, dataFile: overlayFile))
    }
}
