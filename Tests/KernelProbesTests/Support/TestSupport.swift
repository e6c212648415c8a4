import Foundation
import KernelProbes
import PodstartCore
import Synchronization

/// Runs a program to completion and returns its status and output.
@discardableResult
func run(_ arguments: [String], environment: [String: String]? = nil, allowFailure: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(filePath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
    process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let result = (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    if !allowFailure && result.0 != 0 {
        throw TestFailure("\(arguments.joined(separator: " ")) exited \(result.0): \(result.2)")
    }
    return result
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The directory of this test target's fixtures (C sources of workloads).
let fixturesDirectory = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appending(path: "Fixtures")

/// Compiles the static test workload once per test process.
let workloadBinary: Result<String, Error> = Result {
    let output = FileManager.default.temporaryDirectory.appending(path: "ps-workload-\(getpid())").path
    try run(["cc", "-static", "-O2", "-o", output, fixturesDirectory.appending(path: "ps-workload.c").path])
    return output
}

/// A root file system for a "container": busybox-static, the workload, and known files.
final class TestRoot {
    let path: String
    private var loopDevice: String?
    private var loopMount: String?
    private var overlayBase: String?

    init(name: String = "root") throws {
        path = FileManager.default.temporaryDirectory
            .appending(path: "podstart-test-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max))").path
        let fm = FileManager.default
        for dir in ["bin", "data/sub", "mnt/loop", "proc", "tmp"] {
            try fm.createDirectory(atPath: "\(path)/\(dir)", withIntermediateDirectories: true)
        }
        guard fm.fileExists(atPath: "/bin/busybox") else {
            throw TestFailure("/bin/busybox is missing: run scripts/install-deps.sh (package busybox-static)")
        }
        try fm.copyItem(atPath: "/bin/busybox", toPath: "\(path)/bin/busybox")
        try fm.copyItem(atPath: try workloadBinary.get(), toPath: "\(path)/ps-workload")
    }

    func write(_ relative: String, bytes: Int, seed: UInt8 = 0) throws {
        var data = [UInt8](repeating: 0, count: bytes)
        for i in 0..<bytes { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed)) }
        try Data(data).write(to: URL(filePath: "\(path)/\(relative)"))
    }

    func symlink(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: "\(path)/\(relative)", withDestinationPath: target)
    }

    /// (device in kernel encoding, inode) of a file inside the root, as the kernel reports it.
    func fileKey(_ relative: String) throws -> FileKey {
        var st = stat()
        guard stat("\(path)/\(relative)", &st) == 0 else { throw TestFailure("stat \(relative): \(errno)") }
        return FileKey(device: DeviceNumber(userspace: UInt64(st.st_dev)), inode: UInt64(st.st_ino))
    }

    /// Makes an ext4 file system on a loop device mounted at /mnt/loop inside the root, with a
    /// file `data.bin` of `bytes` bytes; returns the loop device's path.
    func mountLoopFileSystem(bytes: Int, mkfsOptions: [String] = []) throws -> String {
        let image = "\(path).img"
        try run(["truncate", "-s", "16M", image])
        try run(["mkfs.ext4", "-q", "-F"] + mkfsOptions + [image])
        let device = try run(["losetup", "--find", "--show", image]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        loopDevice = device
        try run(["mount", device, "\(path)/mnt/loop"])
        loopMount = "\(path)/mnt/loop"
        try write("mnt/loop/data.bin", bytes: bytes, seed: 7)
        try run(["sync"])
        return device
    }

    /// Mounts an overlay with this root as its lowest layer (how containerd mounts a container's
    /// root), `layersAbove` over it (topmost first), and returns the merged directory.
    func mountOverlay(layersAbove: [String] = [], options: [String] = []) throws -> String {
        let base = path + ".ovl"
        for dir in ["upper", "work", "merged"] {
            try FileManager.default.createDirectory(atPath: "\(base)/\(dir)", withIntermediateDirectories: true)
        }
        let lowers = (layersAbove + [path]).joined(separator: ":")
        try run(["mount", "-t", "overlay", "overlay", "-o",
                 (["lowerdir=\(lowers)", "upperdir=\(base)/upper", "workdir=\(base)/work"] + options).joined(separator: ","), "\(base)/merged"])
        overlayBase = base
        return "\(base)/merged"
    }

    /// Copies a host file into the root as a regular file (symlinks followed).
    func copyFromHost(_ hostPath: String, to relative: String) throws {
        let target = "\(path)/\(relative)"
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let resolved = URL(filePath: hostPath).resolvingSymlinksInPath().path
        try FileManager.default.copyItem(atPath: resolved, toPath: target)
    }

    /// Byte offset on the device of a file's first byte (from FIEMAP, via filefrag).
    func physicalOffset(_ relative: String) throws -> UInt64 {
        let out = try run(["filefrag", "-e", "\(path)/\(relative)"]).stdout
        // "File size of … is 65536 (64 blocks of 1024 bytes)"
        guard let sizeLine = out.split(separator: "\n").first(where: { $0.contains("blocks of") }),
              let blockSize = sizeLine.split(separator: " ").reversed().dropFirst().first.flatMap({ UInt64($0) })
        else { throw TestFailure("cannot read the block size of \(relative): \(out)") }
        for line in out.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("0:") {
            let fields = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "." }).filter { !$0.isEmpty }
            // 0 : logical_start logical_end : physical_start physical_end : length
            if fields.count >= 4, let block = UInt64(fields[3]) { return block * blockSize }
        }
        throw TestFailure("cannot read the extents of \(relative): \(out)")
    }

    /// Runs the workload as PID 1 of fresh mount and pid namespaces, chrooted into this root.
    /// With `cpu`, the workload stays on that CPU (for what the kernel keeps per CPU).
    func runWorkload(_ ops: [String], cpu: Int? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let pin = cpu.map { ["taskset", "--cpu-list", String($0)] } ?? []
        return try run(pin + ["unshare", "--mount", "--pid", "--fork", "--kill-child", "chroot", path, "/ps-workload"] + ops,
                       allowFailure: true)
    }

    deinit {
        if let overlayBase {
            _ = try? run(["umount", "\(overlayBase)/merged"], allowFailure: true)
            try? FileManager.default.removeItem(atPath: overlayBase)
        }
        if let loopMount { _ = try? run(["umount", "-l", loopMount], allowFailure: true) }
        if let loopDevice { _ = try? run(["losetup", "-d", loopDevice], allowFailure: true) }
        try? FileManager.default.removeItem(atPath: "\(path).img")
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Collects every decoded event of a session on a background task.
final class EventCollector: Sendable {
    private let events = Mutex<[KernelEvent]>([])
    private let rejected = Mutex<Int>(0)
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(session: KernelProbeSession) throws {
        let stream = try session.events()
        let t = Task { [self] in
            for await batch in stream {
                let decoded = batch.decode(rejected: { _ in self.rejected.withLock { $0 += 1 } })
                self.events.withLock { $0.append(contentsOf: decoded) }
            }
        }
        task.withLock { $0 = t }
    }

    var snapshot: [KernelEvent] { events.withLock { $0 } }
    var rejectedCount: Int { rejected.withLock { $0 } }

    /// Waits until `predicate` holds on the events seen so far, or the timeout passes.
    func waitFor(seconds: Double = 5, _ predicate: ([KernelEvent]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if predicate(snapshot) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return predicate(snapshot)
    }

    func finish() async {
        await task.withLock { $0 }?.value
    }
}

extension KernelEvent {
    var open: OpenEvent? { if case .open(let e) = self { e } else { nil } }
    var exec: ExecEvent? { if case .exec(let e) = self { e } else { nil } }
    var exit: ExitEvent? { if case .exit(let e) = self { e } else { nil } }
    var readRange: ReadRangeEvent? { if case .readRange(let e) = self { e } else { nil } }
    var blockIO: BlockIOEvent? { if case .blockIO(let e) = self { e } else { nil } }
    var writeBegin: WriteBeginEvent? { if case .writeBegin(let e) = self { e } else { nil } }
    var fuseRequest: FuseRequestEvent? { if case .fuseRequest(let e) = self { e } else { nil } }
    var mountNamespace: UInt32? {
        switch self {
        case .exec(let e): e.task.mountNamespace
        case .fork(let e): e.parent.mountNamespace
        case .exit(let e): e.task.mountNamespace
        case .open(let e): e.task.mountNamespace
        case .readRange(let e): e.mountNamespace
        case .blockIO(let e): e.mountNamespace
        case .writeBegin(let e): e.task.mountNamespace
        case .fuseRequest(let e): e.task.mountNamespace
        }
    }
}

/// Opens a probe session or fails the test with the reason the machine gave: these tests need
/// root, BTF and tracefs, and must not skip when the machine refuses them.
func openSession(_ configure: (inout KernelProbeSession.Configuration) -> Void = { _ in }) throws -> KernelProbeSession {
    var config = KernelProbeSession.Configuration()
    config.pollIntervalMs = 20
    configure(&config)
    do {
        return try KernelProbeSession(configuration: config)
    } catch {
        throw TestFailure("the kernel probes could not start on this machine (these tests need root, BTF and tracefs): \(error)")
    }
}

/// A value shared between test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
