import PodstartCore
import Testing

@Suite("Access lists from kernel records")
struct AccessTrackerTests {
    static let ns: UInt32 = 4026532200
    static let overlayDev = DeviceNumber(major: 0, minor: 40)
    static let hostDev = DeviceNumber(major: 254, minor: 0)

    static func task(_ mntns: UInt32 = ns) -> TaskContext {
        TaskContext(pid: 10, tid: 10, parentPid: 1, namespacePid: 1, mountNamespace: mntns, pidNamespace: 2, cgroupID: 1, comm: "app")
    }
    static func file(_ ino: UInt64, size: UInt64, mode: UInt32 = 0o100644) -> FileIdentity {
        FileIdentity(key: FileKey(device: overlayDev, inode: ino), dataKey: FileKey(device: overlayDev, inode: ino), sizeBytes: size, mode: mode)
    }
    static func open(_ path: String, _ ino: UInt64, size: UInt64, at t: UInt64, mntns: UInt32 = ns, mode: UInt32 = 0o100644) -> KernelEvent {
        .open(OpenEvent(timestampNs: t, task: task(mntns), syscall: .openat, result: 3, directoryFD: -100, openFlags: 0,
                        rawPath: path, rawPathTruncated: false, path: ResolvedPath(path: path, truncated: false),
                        file: file(ino, size: size, mode: mode), isRuntimeProcess: false))
    }
    static func range(_ ino: UInt64, page: UInt64, count: UInt64, at t: UInt64) -> KernelEvent {
        .readRange(ReadRangeEvent(timestampNs: t, mountNamespace: ns, file: FileKey(device: hostDev, inode: ino),
                                  firstPage: page, pageCount: count, firstAccessNs: t, pid: 10, source: .access))
    }
    static func exec(_ path: String, _ ino: UInt64, at t: UInt64) -> KernelEvent {
        .exec(ExecEvent(timestampNs: t, task: task(), file: file(ino, size: 50_000, mode: 0o100755),
                        path: ResolvedPath(path: path, truncated: false), filename: path, arguments: [path],
                        argumentsTruncated: false, isRuntimeProcess: false, oldPid: 10))
    }

    @Test func accessesJoinOpensToLowerLayerRangesOrderedByFirstAccess() {
        var t = AccessTracker(mountNamespace: Self.ns)
        for e in [
            Self.exec("/bin/app", 1, at: 1_000_000),
            Self.range(1, page: 0, count: 2, at: 1_100_000),
            Self.open("/etc/app.conf", 2, size: 100, at: 3_000_000),
            Self.range(2, page: 0, count: 1, at: 3_100_000),
            Self.open("/data/big", 3, size: 1 << 20, at: 2_000_000),
            Self.range(3, page: 4, count: 2, at: 2_100_000),
            Self.range(3, page: 5, count: 3, at: 2_200_000),
            Self.open("/proc/self/status", 4, size: 0, at: 2_500_000),
            Self.open("/etc", 5, size: 4096, at: 2_600_000, mode: 0o040755),
            Self.open("/elsewhere", 6, size: 10, at: 1_500_000, mntns: 77),
        ] { t.add(e) }
        t.add(openCounts: [OpenCount(mountNamespace: Self.ns, file: FileKey(device: Self.overlayDev, inode: 2), pathHash: nil, count: 5, firstNs: 3_000_000)])

        let accesses = t.accesses { path, file in
            LayerLocation(layerDigest: "sha256:layer-\(path.split(separator: "/").first!)",
                          dataFile: FileKey(device: Self.hostDev, inode: file.key.inode))
        }
        #expect(accesses.map(\.path) == ["/bin/app", "/data/big", "/etc/app.conf"], "directories, /proc and other containers are left out")
        #expect(accesses[0].firstAccessMs == 0)
        #expect(accesses[1].firstAccessMs == 1.0)
        #expect(accesses[1].ranges == [[16384, 4 * 4096]], "overlapping runs (pages 4-5 and 5-7) merge")
        #expect(accesses[1].bytes == 4 * 4096)
        #expect(accesses[2].bytes == 100, "a page read of a 100-byte file is 100 bytes")
        #expect(accesses[2].opens == 5, "kernel counts include the repeats")
        #expect(accesses[0].layerDigest == "sha256:layer-bin")
    }

    @Test func theRuntimesOpensBeforeTheFirstExecCountOnlyWhenFromTheImage() {
        var t = AccessTracker(mountNamespace: Self.ns)
        t.add(Self.open("/run/containerd/task/abc/rootfs/etc/hostname", 7, size: 5, at: 500))  // runc, host side
        t.add(Self.open("/etc/passwd", 8, size: 900, at: 600))                                  // runc, from the image
        t.add(Self.exec("/bin/app", 1, at: 1000))
        let accesses = t.accesses { path, file in
            path.hasPrefix("/run/") ? nil : LayerLocation(layerDigest: "sha256:l", dataFile: file.key)
        }
        #expect(accesses.map(\.path) == ["/etc/passwd", "/bin/app"])
        #expect(accesses.first?.firstAccessMs == -0.0004)
    }

    @Test func runtimeWritesSplitIntoDownloadAndDecompressByPath() {
        let clock = WallClock(offsetNs: 1_000)
        func begin(_ pid: UInt32, _ ino: UInt64, _ path: String) -> WriteBeginEvent {
            WriteBeginEvent(timestampNs: 0, task: Self.task(1), file: Self.file(ino, size: 0), path: ResolvedPath(path: path, truncated: false),
                            isRuntimeProcess: true)
        }
        var b1 = begin(5, 1, "/var/lib/containerd/io.containerd.content.v1.content/ingest/abc/data")
        b1.task.pid = 5
        var b2 = begin(5, 2, "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs/usr/bin/x")
        b2.task.pid = 5
        var b3 = begin(5, 3, "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db")
        b3.task.pid = 5
        let totals = [
            WriteTotal(pid: 5, file: b1.file.key, mountNamespace: 1, firstNs: 100, lastNs: 500, bytes: 10, writes: 3, isRuntimeProcess: true),
            WriteTotal(pid: 5, file: b2.file.key, mountNamespace: 1, firstNs: 450, lastNs: 900, bytes: 10, writes: 3, isRuntimeProcess: true),
            WriteTotal(pid: 5, file: b3.file.key, mountNamespace: 1, firstNs: 0, lastNs: 2000, bytes: 10, writes: 3, isRuntimeProcess: true),
        ]
        let (download, decompress) = PullWriteClassifier.intervals(begins: [b1, b2, b3], totals: totals, clock: clock)
        #expect(download == [Interval(start: 1100, end: 1501)])
        #expect(decompress == [Interval(start: 1450, end: 1901)])
        #expect(PullWriteClassifier.classify(path: "/var/lib/containerd/tmpmounts/containerd-mount123/etc/x") == .decompress)
        // byte matching: at the very end, a near miss, shorter than the pattern, not UTF-8 native
        #expect(PullWriteClassifier.classify(path: "/x/io.containerd.content.v1.content/ingest/") == .download)
        #expect(PullWriteClassifier.classify(path: "/x/io.containerd.content.v1.content/ingest") == nil)
        #expect(PullWriteClassifier.classify(path: "/io.containerd.snapshotter.v1.overlayfs/snapshot/12/fs") == nil)
        #expect(PullWriteClassifier.classify(path: "/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs/é") == .decompress)
        #expect(PullWriteClassifier.classify(path: "/tmp") == nil)
        #expect(PullWriteClassifier.classify(path: "") == nil)
        #expect(PullWriteClassifier.classify(path: String("/a/tmpmounts/containerd-mount9/b".reversed().reversed())) == .decompress)
    }

    /// A layer of many small files is unpacked from its first write to its last, gaps included:
    /// between two files the applier reads the tar stream and sets owners, modes and times. Seen
    /// on the small-files test image: the union of the files' own writes was 0.03 s of an unpack
    /// the snapshot's inode changes put at 0.6 s, and pull_other took the rest.
    @Test func anUnpackIsOneIntervalPerLayerFromItsFirstWriteToItsLast() {
        let clock = WallClock(offsetNs: 0)
        let root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
        var begins: [WriteBeginEvent] = [], totals: [WriteTotal] = []
        func write(_ ino: UInt64, _ path: String, at ns: UInt64) {
            var b = WriteBeginEvent(timestampNs: ns, task: Self.task(1), file: Self.file(ino, size: 0),
                                    path: ResolvedPath(path: path, truncated: false), isRuntimeProcess: true)
            b.task.pid = 5
            begins.append(b)
            totals.append(WriteTotal(pid: 5, file: b.file.key, mountNamespace: 1, firstNs: ns, lastNs: ns + 10, bytes: 1024, writes: 1, isRuntimeProcess: true))
        }
        // layer 12: a file every 300 µs; layer 13 (an applier's temporary mount) after a pause
        for i in 0..<100 { write(UInt64(100 + i), "\(root)/12/fs/data/f\(i).txt", at: 1_000_000 + UInt64(i) * 300_000) }
        for i in 0..<10 { write(UInt64(300 + i), "/var/lib/containerd/tmpmounts/containerd-mount77/f\(i)", at: 60_000_000 + UInt64(i) * 1_000_000) }
        let (download, decompress) = PullWriteClassifier.intervals(begins: begins, totals: totals, clock: clock)
        #expect(download.isEmpty)
        #expect(decompress == [Interval(start: 1_000_000, end: 1_000_000 + 99 * 300_000 + 11),
                               Interval(start: 60_000_000, end: 60_000_000 + 9 * 1_000_000 + 11)])
        #expect(PullWriteClassifier.target(path: "\(root)/12/fs/data/f1.txt")?.unit == "\(root)/12")
        #expect(PullWriteClassifier.target(path: "/var/lib/containerd/tmpmounts/containerd-mount77/f1")?.unit
                == "/var/lib/containerd/tmpmounts/containerd-mount77")
        #expect(PullWriteClassifier.target(path: "/var/lib/containerd/io.containerd.content.v1.content/ingest/abc/data")
                == PullWriteClassifier.Target(kind: .download, unit: "/var/lib/containerd/io.containerd.content.v1.content/ingest/abc"))
    }

    /// containerd opens a blob's ingest (writing its `ref` and `startedat` files), then sends the
    /// request and writes the data 1 MiB at a time, each once its buffer is full: a blob of 1 MiB
    /// or less is written in one go when all of it has arrived. Its download is the ingest's
    /// first write to its last. Seen at 1 MiB/s: 1 s at the registry, 0.03 s of data writes.
    @Test func aDownloadRunsFromTheIngestsFirstWriteToItsLast() {
        let clock = WallClock(offsetNs: 0)
        let ingest = "/var/lib/containerd/io.containerd.content.v1.content/ingest/5f1d"
        var begins: [WriteBeginEvent] = [], totals: [WriteTotal] = []
        for (ino, name, first, last) in [(UInt64(1), "ref", UInt64(1_000_000), UInt64(1_000_000)),
                                         (2, "startedat", 1_100_000, 1_100_000),
                                         (3, "data", 990_000_000, 1_000_000_000)] {
            var b = WriteBeginEvent(timestampNs: first, task: Self.task(1), file: Self.file(ino, size: 0),
                                    path: ResolvedPath(path: "\(ingest)/\(name)", truncated: false), isRuntimeProcess: true)
            b.task.pid = 5
            begins.append(b)
            totals.append(WriteTotal(pid: 5, file: b.file.key, mountNamespace: 1, firstNs: first, lastNs: last, bytes: 100, writes: 1, isRuntimeProcess: true))
        }
        let (download, decompress) = PullWriteClassifier.intervals(begins: begins, totals: totals, clock: clock)
        #expect(download == [Interval(start: 1_000_000, end: 1_000_000_001)])
        #expect(decompress.isEmpty)
    }
}
