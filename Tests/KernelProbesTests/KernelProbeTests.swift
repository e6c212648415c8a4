import CPodstartBPF
import Foundation
import KernelProbes
import PodstartCore
import Testing

/// Real eBPF programs on the real kernel, watching a workload in fresh mount and pid namespaces.
/// Root is required; on a machine that refuses BPF these tests fail and say why.
/// Every test that loads programs into the kernel runs under this one serialized suite: two
/// sessions at once would see each other's hooks (StartWindowTests asks the kernel what is attached).
@Suite("Real kernel", .serialized)
enum RealKernel {}

extension RealKernel {
@Suite("Kernel probes on the running kernel")
struct KernelProbeTests {
    /// One workload run does every operation; each expectation below checks one of them.
    @Test func everyFileOperationArrivesWithExactPathsRangesAndNamespace() async throws {
        let root = try TestRoot(name: "ops")
        for name in ["a", "b", "c", "d", "e", "f"] { try root.write("data/\(name).txt", bytes: 100 + name.utf8.first!.hashValue % 7) }
        try root.symlink("data/link-to-d", to: "d.txt")
        try root.write("data/big.bin", bytes: 1 << 20)
        try run(["sync"])
        let loop = try root.mountLoopFileSystem(bytes: 64 * 1024)
        let dataOffset = try root.physicalOffset("mnt/loop/data.bin")
        var loopStat = stat()
        stat(loop, &loopStat)
        let loopDevice = DeviceNumber(userspace: UInt64(loopStat.st_rdev))

        let session = try openSession()
        defer { session.close() }
        try session.attach(Set(ProbeFamily.allCases))
        let collector = try EventCollector(session: session)

        // The host's own opens (this test process, host mount namespace) must not be reported.
        let hostMarker = FileManager.default.temporaryDirectory.appending(path: "podstart-host-marker-\(getpid())").path
        _ = FileManager.default.createFile(atPath: hostMarker, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: hostMarker) }

        let result = try root.runWorkload([
            "open", "/data/a.txt",
            "chdir", "/data", "open", "b.txt",
            "dirfd", "/data", "c.txt",
            "open", "/data/link-to-d",
            "open", "/data/sub/../e.txt",
            "open", "/data/missing-file",
            "open2", "/data/f.txt",
            "read", "/data/big.bin", "8192", "4096",
            "dontneed", "/data/big.bin",
            "read", "/data/big.bin", "65536", "8192",
            "mmap", "/data/big.bin", "100", "200",
            "odirect", "/mnt/loop/data.bin", "4096", "4096",
            "write", "/data/out.txt", "1000",
            "exec", "/bin/busybox", "true",
        ])
        #expect(result.status == 0, "workload failed: \(result.stderr)")
        _ = try String(contentsOfFile: hostMarker, encoding: .utf8)

        let sawExit = await collector.waitFor { events in
            events.contains { $0.exit?.task.comm == "busybox" }
        }
        #expect(sawExit, "no exit event of the workload arrived")
        session.detach(ProbeFamily.startHooks)
        let pendingRanges = try session.drainReadRanges()
        let writeTotals = try session.writeTotals()
        let stats = try session.statistics()
        session.close()
        await collector.finish()
        let events = collector.snapshot + pendingRanges.map { .readRange($0) }

        // The workload's mount namespace comes from its exec; every expectation is scoped to it.
        let exec = try #require(events.compactMap(\.exec).first { $0.path.path == "/ps-workload" },
                                "the workload's exec was not reported")
        let ns = exec.task.mountNamespace
        #expect(ns != session.hostMountNamespace)
        #expect(exec.arguments.first == "/ps-workload")
        #expect(exec.task.namespacePid == 1, "the workload is PID 1 of its pid namespace")
        let opens = events.compactMap(\.open).filter { $0.task.mountNamespace == ns }

        struct Case { var raw: String; var path: String; var file: String?; var syscall: OpenSyscall = .openat }
        let cases = [
            Case(raw: "/data/a.txt", path: "/data/a.txt", file: "data/a.txt"),
            Case(raw: "b.txt", path: "/data/b.txt", file: "data/b.txt"),            // relative after chdir
            Case(raw: "c.txt", path: "/data/c.txt", file: "data/c.txt"),            // through a dirfd
            Case(raw: "/data/link-to-d", path: "/data/d.txt", file: "data/d.txt"),  // through a symlink
            Case(raw: "/data/sub/../e.txt", path: "/data/e.txt", file: "data/e.txt"), // through ..
            Case(raw: "/data/f.txt", path: "/data/f.txt", file: "data/f.txt", syscall: .openat2),
        ]
        for c in cases {
            let open = opens.first { $0.rawPath == c.raw }
            #expect(open != nil, "no open event for \(c.raw)")
            guard let open else { continue }
            #expect(open.path?.path == c.path, "\(c.raw) resolved to \(open.path?.path ?? "nil")")
            #expect(open.path?.truncated == false)
            #expect(open.result >= 0)
            #expect(open.syscall == c.syscall)
            #expect(open.task.comm == "ps-workload")
            if let file = c.file {
                let key = try root.fileKey(file)
                #expect(open.file?.key == key, "\(c.raw): inode/device \(String(describing: open.file?.key)) ≠ \(key)")
                #expect(open.file?.sizeBytes == UInt64(try FileManager.default.attributesOfItem(atPath: "\(root.path)/\(file)")[.size] as! Int))
            }
        }
        let dirfdOpen = opens.first { $0.rawPath == "c.txt" }
        #expect((dirfdOpen?.directoryFD ?? -1) >= 0, "the dirfd argument is reported")

        let missing = opens.first { $0.rawPath == "/data/missing-file" }
        #expect(missing?.result == -ENOENT)
        #expect(missing?.path == nil)

        // Byte ranges: pread(8192, 4096) is page 2; after DONTNEED, pread(65536, 8192) is pages
        // 16–17 and had to come from storage; mmap touched pages 100 and 200.
        let big = try root.fileKey("data/big.bin")
        let ranges = events.compactMap(\.readRange).filter { $0.mountNamespace == ns && $0.file == big }
        func covered(_ page: UInt64, _ source: RangeSource) -> Bool {
            ranges.contains { $0.source == source && $0.firstPage <= page && page < $0.firstPage + $0.pageCount }
        }
        #expect(covered(2, .access), "page 2 read: \(ranges)")
        #expect(covered(16, .access) && covered(17, .access), "pages 16-17 read: \(ranges)")
        #expect(covered(16, .fill) && covered(17, .fill), "pages 16-17 came from storage after DONTNEED: \(ranges)")
        #expect(!covered(2, .fill), "page 2 was cached: no fill expected")
        #expect(covered(100, .access) && covered(200, .access), "mmap pages 100 and 200: \(ranges)")
        #expect(!ranges.contains { $0.source == .access && $0.firstPage <= 50 && 50 < $0.firstPage + $0.pageCount },
                "page 50 was never touched")

        // O_DIRECT read from the loop device: one 4 KiB read, attributed to the workload.
        let blocks = events.compactMap(\.blockIO).filter { $0.device == loopDevice }
        let expectedSector = (dataOffset + 4096) / 512  // byte 4096 of the file, in 512-byte sectors
        #expect(blocks.contains { $0.operation == .read && $0.bytes == 4096 && $0.mountNamespace == ns && $0.sector == expectedSector },
                "O_DIRECT read on \(loop) (\(loopDevice)) not seen at sector \(expectedSector): \(blocks)")

        // The write: first-write record with the path, totals from the kernel.
        let out = try root.fileKey("data/out.txt")
        #expect(events.compactMap(\.writeBegin).contains { $0.path.path == "/data/out.txt" && $0.task.mountNamespace == ns })
        let total = writeTotals.first { $0.file == out }
        #expect(total?.bytes == 1000)
        #expect(total?.writes == 1)

        // The final exec replaced the workload with busybox.
        #expect(events.compactMap(\.exec).contains {
            $0.task.mountNamespace == ns && $0.path.path == "/bin/busybox" && $0.arguments == ["/bin/busybox", "true"]
        })

        // Nothing of the host's own.
        #expect(!events.contains { $0.open?.rawPath.contains("podstart-host-marker") == true })
        #expect(!opens.isEmpty && events.compactMap(\.open).allSatisfy { $0.task.mountNamespace != session.hostMountNamespace || $0.isRuntimeProcess })

        // Nothing lost at this rate, nothing undecodable.
        for (program, s) in stats { #expect(s.lost == 0, "\(program) lost \(s.lost)") }
        #expect(collector.rejectedCount == 0)
    }

    /// Both builds of the open programs: with bpf_rdonly_cast (kernels 6.2+, chosen on this one
    /// when it has the kfunc) and the one every supported kernel loads.
    @Test(arguments: [true, false])
    func repeatedOpensOfOneFileAreCountedInTheKernelNotSent(useKernelCasts: Bool) async throws {
        let root = try TestRoot(name: "repeat")
        try root.write("data/a.txt", bytes: 10)
        let session = try openSession { $0.useKernelCasts = useKernelCasts }
        defer { session.close() }
        let castsAvailable = try run(["grep", "-qw", "bpf_rdonly_cast", "/proc/kallsyms"], allowFailure: true).status == 0
        #expect(session.loadedObjects[.opens] == (useKernelCasts && castsAvailable ? "files_cast" : "files"),
                "kernel has bpf_rdonly_cast: \(castsAvailable)")
        try session.attach([.process, .opens])
        // Typed events straight from the session's AsyncSequence.
        let sequence = try session.kernelEvents()
        let consumer = Task {
            var seen: [KernelEvent] = []
            for await event in sequence {
                seen.append(event)
                if event.exit?.task.comm == "ps-workload" { break }
            }
            return seen
        }
        let result = try root.runWorkload(["loop", "500", "/data/a.txt", "10"])
        #expect(result.status == 0, "\(result.stderr)")
        let events = await consumer.value
        let ns = try #require(events.compactMap(\.exec).first { $0.path.path == "/ps-workload" }).task.mountNamespace
        let counts = try session.openCounts(mountNamespaces: [ns])
        session.close()
        #expect(sequence.rejected.total == 0)
        let records = events.compactMap(\.open).filter { $0.task.mountNamespace == ns && $0.rawPath == "/data/a.txt" }
        #expect(records.count == 1, "one record for the first open, got \(records.count)")
        let key = try root.fileKey("data/a.txt")
        #expect(counts.first { $0.file == key }?.count == 500)
    }

    /// Re-reading pages already inside the open run is answered from a per-CPU cache in the
    /// kernel; the runs must come out exactly as without it: a read elsewhere still ends the run,
    /// a re-read after that starts a new one, and a re-read after user space drained the runs
    /// starts a fresh run instead of being taken for part of the drained one.
    @Test func rereadPagesKeepExactRunsAcrossReplacementsAndDrains() async throws {
        let root = try TestRoot(name: "reread")
        try root.write("data/r.bin", bytes: 64 * 1024)
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens, .reads])
        let collector = try EventCollector(session: session)
        let key = try root.fileKey("data/r.bin")
        let go = "\(root.path)/tmp/go"
        let workload = Task.detached {
            try root.runWorkload(["loop", "30", "/data/r.bin", "4096", "read", "/data/r.bin", "40960", "4096",
                                  "loop", "30", "/data/r.bin", "4096", "wait", "/tmp/go",
                                  "loop", "5", "/data/r.bin", "4096"])
        }
        let sawOpen = await collector.waitFor { $0.contains { $0.open?.rawPath == "/data/r.bin" } }
        #expect(sawOpen)
        let ns = try #require(collector.snapshot.compactMap(\.open).first { $0.rawPath == "/data/r.bin" }).task.mountNamespace
        func pages(_ ranges: [ReadRangeEvent]) -> [[UInt64]] {
            ranges.filter { $0.file == key && $0.source == .access }.map { [$0.firstPage, $0.pageCount] }
        }
        // wait until the workload is parked on /tmp/go: its second loop has replaced the run
        let parked = await collector.waitFor { events in
            pages(events.compactMap(\.readRange)).count >= 2
        }
        #expect(parked, "the runs ended by the read of page 10 and by the re-read never arrived")
        try await Task.sleep(for: .milliseconds(100))
        let firstDrain = try session.drainReadRanges(mountNamespaces: [ns])
        _ = FileManager.default.createFile(atPath: go, contents: Data())
        let result = try await workload.value
        #expect(result.status == 0, "\(result.stderr)")
        _ = await collector.waitFor { $0.contains { $0.exit?.task.comm == "ps-workload" } }
        let secondDrain = try session.drainReadRanges(mountNamespaces: [ns])
        session.close()
        await collector.finish()

        let records = collector.snapshot.compactMap(\.readRange).filter { $0.mountNamespace == ns }
        #expect(pages(records) == [[0, 1], [10, 1]], "runs emitted by replacement")
        #expect(pages(firstDrain) == [[0, 1]], "the run open while the workload waited")
        #expect(pages(secondDrain) == [[0, 1]], "a re-read after the drain must start a new run")
    }

    /// The container runtime's own writes (content-store ingest, snapshot unpack) are what later
    /// split a pull into download and decompress: they are reported for the runtime and for every
    /// child it forks (unpigz, CNI plugins), on the host's mount namespace, totalled in the kernel.
    @Test func runtimeProcessesAndTheirChildrenHaveTheirWritesTotalled() async throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "podstart-runtime-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A binary whose name the kernel recognises as the runtime's ("containerd…").
        let fakeRuntime = "\(dir)/containerd-fake"
        try FileManager.default.copyItem(atPath: try workloadBinary.get(), toPath: fakeRuntime)

        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .writes])
        let collector = try EventCollector(session: session)
        // The "runtime" writes itself, then execs a shell whose forked child (dd) writes too.
        let result = try run([fakeRuntime, "write", "\(dir)/ingest-data", "70000",
                              "exec", "/bin/busybox", "sh", "-c",
                              "/bin/busybox dd if=/dev/zero of=\(dir)/unpacked bs=4096 count=3 2>/dev/null; /bin/busybox true"])
        #expect(result.status == 0, "\(result.stderr)")
        _ = await collector.waitFor { events in events.compactMap(\.writeBegin).count >= 2 }
        let totals = try session.writeTotals()
        session.close()
        await collector.finish()
        let begins = collector.snapshot.compactMap(\.writeBegin)

        let ingest = try #require(begins.first { $0.path.path == "\(dir)/ingest-data" }, "runtime write not reported: \(begins)")
        #expect(ingest.isRuntimeProcess)
        #expect(ingest.task.mountNamespace == session.hostMountNamespace)
        let unpacked = try #require(begins.first { $0.path.path == "\(dir)/unpacked" }, "child's write not reported")
        #expect(unpacked.isRuntimeProcess, "a forked child of the runtime is the runtime's")
        #expect(unpacked.task.comm == "busybox")
        #expect(unpacked.task.pid != ingest.task.pid)

        #expect(totals.first { $0.file == ingest.file.key }?.bytes == 70000)
        #expect(totals.first { $0.file == unpacked.file.key }?.bytes == 3 * 4096)
        #expect(totals.first { $0.file == unpacked.file.key }?.writes == 3)
        let t = try #require(totals.first { $0.file == unpacked.file.key })
        #expect(t.firstNs <= t.lastNs && t.isRuntimeProcess)

        // An ordinary host process writing is not the runtime: nothing reported for it.
        #expect(!begins.contains { !$0.isRuntimeProcess && $0.task.mountNamespace == session.hostMountNamespace })
    }

    /// containerd 2.x deletes small files of its ingest directory during a pull, and ext4 hands
    /// their inode numbers to the layer files unpacked right after, by the same process. The
    /// unpacked file's writes must begin a record of their own (and be decompress), not fold into
    /// the deleted download's entry (issue #19: whole pulls reported as download).
    @Test func anUnpackedFileReusingADeletedIngestFilesInodeIsDecompress() async throws {
        let root = try TestRoot(name: "reuse")
        // one block group (4 KiB blocks): the next file created gets the lowest free inode number
        _ = try root.mountLoopFileSystem(bytes: 4096, mkfsOptions: ["-b", "4096"])
        let fs = "\(root.path)/mnt/loop/containerd"
        let ingest = "\(fs)/io.containerd.content.v1.content/ingest/0123abcd"
        let snapshot = "\(fs)/io.containerd.snapshotter.v1.overlayfs/snapshots/7/fs"
        for dir in [ingest, snapshot] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let fakeRuntime = "\(root.path)/containerd-fake"  // a name the kernel takes for the runtime's
        try FileManager.default.copyItem(atPath: try workloadBinary.get(), toPath: fakeRuntime)

        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .writes])
        let collector = try EventCollector(session: session)
        let clock = WallClock.measure()
        let result = try run([fakeRuntime, "write", "\(ingest)/updatedat", "24", "unlink", "\(ingest)/updatedat",
                              "write", "\(snapshot)/layer.bin", "70000"])
        #expect(result.status == 0, "\(result.stderr)")
        _ = await collector.waitFor { $0.contains { $0.exit?.task.comm == "containerd-fake" } }
        let totals = try session.writeTotals()
        session.close()
        await collector.finish()
        let begins = collector.snapshot.compactMap(\.writeBegin).filter { $0.task.comm == "containerd-fake" }

        let download = try #require(begins.first { $0.path.path == "\(ingest)/updatedat" }, "ingest write not reported: \(begins)")
        let unpacked = try root.fileKey("mnt/loop/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/7/fs/layer.bin")
        // Without the reuse this test proves nothing.
        try #require(download.file.key == unpacked, "the file system did not reuse the inode number: \(download.file.key) vs \(unpacked)")

        let begin = begins.first { $0.path.path == "\(snapshot)/layer.bin" }
        #expect(begin != nil, "the unpacked file's first write folded into the deleted ingest file's entry: \(begins)")
        #expect(begin?.file.key == unpacked && begin?.fileGeneration != download.fileGeneration)
        let mine = totals.filter { $0.pid == download.task.pid }
        #expect(mine.first { PullWriteClassifier.WriteKey($0) == .init(download) }?.bytes == 24, "\(mine)")
        if let begin { #expect(mine.first { PullWriteClassifier.WriteKey($0) == .init(begin) }?.bytes == 70000, "\(mine)") }

        // What the correlator makes of them: one download, one decompress.
        let split = PullWriteClassifier.intervals(begins: begins, totals: mine, clock: clock)
        #expect(split.download.count == 1)
        #expect(split.decompress.count == 1, "the unpack was taken for download: \(split)")
    }

    /// Inside an overlayfs root (how containerd mounts a container), page-cache reads name the
    /// lower layer's file on the host — the same device and inode as stat on the file in the
    /// layer directory — while the open names the overlay's inode. Joining the two goes through
    /// the layer that provides the path.
    @Test func overlayReadsNameTheLowerLayersFile() async throws {
        let lower = try TestRoot(name: "lower")
        try FileManager.default.createDirectory(atPath: "\(lower.path)/dev", withIntermediateDirectories: true)
        try lower.write("data/layer-file.bin", bytes: 64 * 1024)
        let merged = try lower.mountOverlay()
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens, .reads])
        let collector = try EventCollector(session: session)
        let result = try run(["unshare", "--mount", "--fork", "chroot", merged, "/ps-workload",
                              "read", "/data/layer-file.bin", "8192", "8192"], allowFailure: true)
        #expect(result.status == 0, "\(result.stderr)")
        _ = await collector.waitFor { $0.contains { $0.exit?.task.comm == "ps-workload" } }
        session.detach(ProbeFamily.startHooks)
        let pending = try session.drainReadRanges()
        session.close()
        await collector.finish()
        let events = collector.snapshot + pending.map { .readRange($0) }

        let open = try #require(events.compactMap(\.open).first { $0.rawPath == "/data/layer-file.bin" })
        let ns = open.task.mountNamespace
        let lowerKey = try lower.fileKey("data/layer-file.bin")
        #expect(open.path?.path == "/data/layer-file.bin")
        #expect(open.file?.key.device != lowerKey.device, "the open sees the overlay's device")
        let ranges = events.compactMap(\.readRange).filter { $0.mountNamespace == ns && $0.source == .access }
        #expect(ranges.contains { $0.file == lowerKey && $0.firstPage <= 2 && 3 < $0.firstPage + $0.pageCount },
                "pages 2-3 of the lower file \(lowerKey) not reported: \(ranges)")
    }

    /// An overlay whose layers are on different file systems (a lazy-pull snapshotter's: one FUSE
    /// mount per layer) gives each lower file the inode number it has in its layer, so two files
    /// of two layers can share the overlay's (device, inode) — on stargz /etc/passwd and
    /// /data/random.bin were both 7. Each is a different file, and each first open is a record:
    /// the second was once taken for a repeat of the first, and never named.
    @Test func twoFilesAnOverlayNumbersAlikeAreEachRecorded() async throws {
        let root = try TestRoot(name: "layers")
        var layers: [String] = []
        defer { for layer in layers { _ = try? run(["umount", layer], allowFailure: true); try? FileManager.default.removeItem(atPath: layer) } }
        // two fresh tmpfs layers numbered alike: the same directories and one file each
        for name in ["a", "b"] {
            let layer = root.path + ".layer-\(name)"
            try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: true)
            try run(["mount", "-t", "tmpfs", "tmpfs", layer])
            layers.append(layer)
            try FileManager.default.createDirectory(atPath: "\(layer)/data", withIntermediateDirectories: true)
            try Data(repeating: 0x61, count: name == "a" ? 30 : 4096).write(to: URL(filePath: "\(layer)/data/\(name).bin"))
        }
        let merged = try root.mountOverlay(layersAbove: layers, options: ["xino=off"])
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens])
        let collector = try EventCollector(session: session)
        // one CPU: the second open meets the per-CPU slot the first one took
        let result = try run(["taskset", "--cpu-list", "0", "unshare", "--mount", "--fork", "chroot", merged, "/ps-workload",
                              "open", "/data/a.bin", "open", "/data/b.bin", "open", "/data/a.bin"], allowFailure: true)
        #expect(result.status == 0, "\(result.stderr)")
        _ = await collector.waitFor { $0.contains { $0.exit?.task.comm == "ps-workload" } }
        session.close()
        await collector.finish()
        let opens = collector.snapshot.compactMap(\.open).filter { $0.rawPath.hasPrefix("/data/") }
        let a = try #require(opens.first { $0.rawPath == "/data/a.bin" }, "\(opens)")
        let b = try #require(opens.first { $0.rawPath == "/data/b.bin" }, "the second file's first open was taken for a repeat of the first: \(opens)")
        // what makes this case: the overlay gave both files one (device, inode)
        #expect(a.file?.key == b.file?.key, "the layers did not number the files alike: \(a.file?.key as Any) vs \(b.file?.key as Any)")
        #expect(b.path?.path == "/data/b.bin" && b.file?.sizeBytes == 4096)
        #expect(opens.filter { $0.rawPath == "/data/a.bin" }.count == 1, "a repeat of a.bin was recorded again: \(opens)")
    }

    /// A dynamically linked program starts in its ELF interpreter, which execve opens itself (no
    /// open syscall any hook sees). It is reported as an open of kind exec-interpreter, with the
    /// path inside the container and the layer's file, so its page reads join it; a static
    /// program (busybox) gets none.
    @Test func theELFInterpreterExecveLoadsIsReportedWithTheLayersFile() async throws {
        let interpreter = "lib64/ld-linux-x86-64.so.2"
        let program = try Data(contentsOf: URL(filePath: "/usr/bin/true"))
        try #require(program.range(of: Data(("/" + interpreter).utf8)) != nil,
                     "/usr/bin/true does not name /\(interpreter) as its interpreter")
        let lower = try TestRoot(name: "dynamic")
        try lower.copyFromHost("/usr/bin/true", to: "usr/bin/true")
        try lower.copyFromHost("/" + interpreter, to: interpreter)
        try lower.copyFromHost("/lib/x86_64-linux-gnu/libc.so.6", to: "lib/x86_64-linux-gnu/libc.so.6")
        let merged = try lower.mountOverlay()
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens, .reads])
        let collector = try EventCollector(session: session)
        for command in [["/usr/bin/true"], ["/bin/busybox", "true"]] {
            let result = try run(["unshare", "--mount", "--fork", "chroot", merged] + command, allowFailure: true)
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        _ = await collector.waitFor { $0.filter { $0.exit?.task.comm == "true" || $0.exit?.task.comm == "busybox" }.count >= 2 }
        session.detach(ProbeFamily.startHooks)
        let pending = try session.drainReadRanges()
        session.close()
        await collector.finish()
        let events = collector.snapshot + pending.map { .readRange($0) }

        let exec = try #require(events.compactMap(\.exec).first { $0.path.path == "/usr/bin/true" })
        let loaded = events.compactMap(\.open).filter { $0.syscall == .execInterpreter }
        // chroot (dynamic, on the host's root) ran in the same process first: take the record
        // that follows this exec.
        let open = try #require(loaded.filter { $0.task.pid == exec.task.pid && $0.timestampNs >= exec.timestampNs }
            .min { $0.timestampNs < $1.timestampNs }, "no interpreter reported: \(loaded)")
        #expect(open.path?.path == "/" + interpreter)
        #expect(open.task.mountNamespace == exec.task.mountNamespace)
        #expect(open.result == 0 && open.rawPath.isEmpty)
        let layerKey = try lower.fileKey(interpreter)
        #expect(open.file?.key == layerKey, "the mapping holds the layer's file")
        #expect(open.file?.isRegularFile == true)
        let ranges = events.compactMap(\.readRange).filter { $0.file == layerKey && $0.source == .access }
        #expect(!ranges.isEmpty, "no page reads of the interpreter's layer file")
        // busybox is static: it starts in its own text and loads no interpreter.
        let busybox = try #require(events.compactMap(\.exec).first { $0.path.path == "/bin/busybox" })
        #expect(!loaded.contains { $0.task.pid == busybox.task.pid && $0.timestampNs >= busybox.timestampNs }, "\(loaded)")
    }

    /// The kernel caches its last filter verdict per CPU; ignoring a namespace must take effect
    /// at once all the same (a finished start stops being traced mid-flight).
    @Test func ignoringANamespaceStopsItsRecordsImmediately() async throws {
        let root = try TestRoot(name: "ignore")
        try root.write("data/before.txt", bytes: 10)
        try root.write("data/after.txt", bytes: 10)
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens])
        let collector = try EventCollector(session: session)
        let workload = Task.detached { try root.runWorkload(["open", "/data/before.txt", "wait", "/tmp/go", "open", "/data/after.txt"]) }
        let sawBefore = await collector.waitFor { $0.contains { $0.open?.rawPath == "/data/before.txt" } }
        #expect(sawBefore)
        let ns = try #require(collector.snapshot.compactMap(\.open).first { $0.rawPath == "/data/before.txt" }).task.mountNamespace
        try session.ignore(mountNamespace: ns)
        #expect(try session.isIgnored(mountNamespace: ns))
        _ = FileManager.default.createFile(atPath: "\(root.path)/tmp/go", contents: Data())
        let result = try await workload.value
        #expect(result.status == 0, "\(result.stderr)")
        try await Task.sleep(for: .milliseconds(200))
        session.close()
        await collector.finish()
        #expect(!collector.snapshot.contains { $0.open?.rawPath == "/data/after.txt" }, "an ignored namespace was still traced")
    }

    /// Removing a namespace's open counts forgets its files everywhere, the per-CPU repeat slots
    /// included: the kernel gives a finished container's mount-namespace number to the next one,
    /// whose first open of the same file (same image, same layer file) must be a record, not a
    /// repeat of the old container's. Here one namespace stands for both (counts removed between
    /// its two opens), on one CPU, so the second open meets the slot the first one took.
    @Test func removedOpenCountsMakeTheNextOpenAFirstOneAgain() async throws {
        let root = try TestRoot(name: "forget")
        try root.write("data/x.txt", bytes: 10)
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens])
        let collector = try EventCollector(session: session)
        let workload = Task.detached {
            try root.runWorkload(["open", "/data/x.txt", "wait", "/tmp/go", "open", "/data/x.txt"], cpu: 0)
        }
        func opens() -> [OpenEvent] { collector.snapshot.compactMap(\.open).filter { $0.rawPath == "/data/x.txt" } }
        let sawFirst = await collector.waitFor { _ in !opens().isEmpty }
        #expect(sawFirst)
        let ns = try #require(opens().first).task.mountNamespace
        let counts = try session.openCounts(mountNamespaces: [ns], remove: true)
        #expect(counts.contains { $0.file == opens().first?.file?.key && $0.count == 1 })
        _ = FileManager.default.createFile(atPath: "\(root.path)/tmp/go", contents: Data())
        let result = try await workload.value
        #expect(result.status == 0, "\(result.stderr)")
        let sawSecond = await collector.waitFor { _ in opens().count == 2 }
        #expect(sawSecond, "the open after its count was removed was taken for a repeat")
    }

    /// Batches are read in place: a batch holds its stretch of the ring until it goes, the
    /// producers lose (and count) what finds the ring full, and the space comes back once every
    /// batch is gone, in whatever order they go. A detached copy decodes the same.
    @Test func heldBatchesHoldTheRingAndReleaseItInAnyOrder() async throws {
        let root = try TestRoot(name: "held")
        for i in 0..<600 { try root.write("data/f\(i)", bytes: 1) }
        for i in 0..<40 { try root.write("data/g\(i)", bytes: 1) }
        // 64 KiB: well under 600 open records, well over 40
        let session = try openSession { $0.ringBufferBytes = 64 << 10 }
        defer { session.close() }
        try session.attach([.process, .opens])
        let stream = try session.events()
        let holding = Locked(true)
        let held = Locked<[RawEventBatch]>([])
        let decoded = Locked<[KernelEvent]>([])
        let detachedMatches = Locked(true)
        let consumer = Task {
            for await batch in stream {
                if holding.withLock({ $0 }) {
                    held.withLock { $0.append(batch) }
                } else {
                    let events = batch.decode()
                    if batch.detached().decode() != events { detachedMatches.withLock { $0 = false } }
                    decoded.withLock { $0.append(contentsOf: events) }
                }
            }
        }

        let first = try root.runWorkload((0..<600).flatMap { ["open", "/data/f\($0)"] })
        #expect(first.status == 0, "\(first.stderr)")
        try await Task.sleep(for: .milliseconds(200))
        let lostWhileHeld = try session.statistics()[.open]?.lost ?? 0
        let heldOpens = held.withLock { $0.reduce(0) { $0 + $1.decode().filter { $0.open != nil }.count } }
        #expect(lostWhileHeld > 0, "600 opens fitted in a 64 KiB ring the consumer never released")
        #expect(heldOpens + Int(lostWhileHeld) >= 600, "records neither delivered nor counted lost")

        // Let go of the batches newest first: the space returns only when the oldest goes.
        holding.withLock { $0 = false }
        held.withLock { batches in
            while !batches.isEmpty { batches.removeLast() }
        }
        let second = try root.runWorkload((0..<40).flatMap { ["open", "/data/g\($0)"] })
        #expect(second.status == 0, "\(second.stderr)")
        let deadline = Date().addingTimeInterval(5)
        func secondOpens() -> Set<String> {
            Set(decoded.withLock { $0 }.compactMap(\.open?.rawPath).filter { $0.hasPrefix("/data/g") })
        }
        while secondOpens().count < 40, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(secondOpens().count == 40, "after every held batch went, only \(secondOpens().count) of 40 opens arrived")
        #expect(try session.statistics()[.open]?.lost == lostWhileHeld, "records lost after the ring was released")
        #expect(detachedMatches.withLock { $0 })
        session.close()
        await consumer.value
    }

    /// Open records are reserved small when their two strings (raw path, resolved path, each
    /// with its NUL) fit PS_OPEN_SMALL_STRINGS bytes and large otherwise: paths on both sides of
    /// that edge arrive whole.
    @Test func pathsAroundTheSmallRecordEdgeArriveWhole() async throws {
        let root = try TestRoot(name: "edge")
        // raw and resolved path alike, L bytes each: the strings take 2L + 2 bytes
        let small = Int(PS_OPEN_SMALL_STRINGS)
        let lengths = [small / 2 - 2, small / 2 - 1, small / 2, small / 2 + 1]
        let paths = lengths.map { "/data/" + String(repeating: "p", count: $0 - 6) }
        for path in paths { try root.write(String(path.dropFirst()), bytes: 3) }
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens])
        let collector = try EventCollector(session: session)
        let result = try root.runWorkload(paths.flatMap { ["open", $0] })
        #expect(result.status == 0, "\(result.stderr)")
        let seen = await collector.waitFor { events in
            Set(events.compactMap(\.open?.rawPath)).isSuperset(of: paths)
        }
        session.close()
        await collector.finish()
        #expect(seen)
        for path in paths {
            let open = collector.snapshot.compactMap(\.open).first { $0.rawPath == path }
            #expect(open?.path?.path == path, "strings of \(2 * path.utf8.count + 2) bytes")
            #expect(open?.path?.truncated == false)
            #expect(open?.rawPathTruncated == false)
            #expect(open?.file?.sizeBytes == 3)
        }
    }

    @Test func longPathsAreTruncatedWithAFlagNotDropped() async throws {
        let root = try TestRoot(name: "long")
        var relative = "data"
        for i in 0..<30 { relative += "/directory-with-a-long-name-\(i)" }
        try FileManager.default.createDirectory(atPath: "\(root.path)/\(relative)", withIntermediateDirectories: true)
        try root.write("\(relative)/leaf.txt", bytes: 5)
        let session = try openSession()
        defer { session.close() }
        try session.attach([.process, .opens])
        let collector = try EventCollector(session: session)
        let result = try root.runWorkload(["chdir", "/\(relative)", "open", "leaf.txt"])
        #expect(result.status == 0, "\(result.stderr)")
        let seen = await collector.waitFor { $0.contains { $0.open?.rawPath == "leaf.txt" } }
        session.close()
        await collector.finish()
        #expect(seen)
        let open = try #require(collector.snapshot.compactMap(\.open).first { $0.rawPath == "leaf.txt" })
        #expect(open.path?.truncated == true)
        #expect(open.path?.path.hasSuffix("/directory-with-a-long-name-29/leaf.txt") == true)
        #expect((open.path?.path.utf8.count ?? 0) < Int(512))
    }

    @Test func sessionsWithoutPermissionFailWithTheCauseNamed() throws {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let fake = FileManager.default.temporaryDirectory.appending(path: "status-\(getpid())")
        try status.replacingOccurrences(of: #"CapEff:\s*[0-9a-f]+"#, with: "CapEff:\t0000000000000000", options: .regularExpression)
            .write(to: fake, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: fake) }
        #expect(ProbeEnvironment.missingCapabilities(statusPath: fake.path) == ["CAP_BPF", "CAP_PERFMON"])
        let message = BPFError.notPermitted(missing: ["CAP_BPF", "CAP_PERFMON"]).description
        #expect(message.contains("CAP_BPF") && message.contains("root"))
    }

    /// EACCES from a program load is the verifier's verdict when it ran (its log says how many
    /// instructions it processed), and a permission problem otherwise: the message says which.
    @Test func aVerifierRejectionIsNotCalledAPermissionProblem() {
        let log = "826: (85) call bpf_probe_read_kernel#113\ninvalid access to memory, mem_size=384 off=128 size=513\n"
            + "processed 2760 insns (limit 1000000) max_states_per_insn 4 total_states 201"
        let rejected = BPFError.load(object: "process", errno: EACCES, verifierLog: log).description
        #expect(rejected.contains("the verifier rejected a program"))
        #expect(!rejected.contains("Run as root"))
        #expect(rejected.contains("invalid access to memory"))
        let refused = BPFError.load(object: "process", errno: EACCES, verifierLog: "").description
        #expect(refused.contains("Run as root"))
        #expect(!refused.contains("verifier rejected"))
    }
}
}
