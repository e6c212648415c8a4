import ArgumentParser
import Foundation
import PodstartCore
import Synchronization

/// `podstart agent --record-inputs FILE`: writes every correlator input, in the correlator's
/// order, as `CorrelatorInputCodec` JSON lines (header first). Called from inside the hub, so
/// `record` only renders into a buffer under a lock; the buffer is written when it grows past
/// 64 KiB, every 200 ms by a timer, and at process exit (the agent calls nothing at stop).
final class InputRecorder: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var lines = 0
        var failed: String?
    }

    let path: String
    private let fd: Int32
    private let state = Mutex(State())
    nonisolated(unsafe) private let timer: DispatchSourceTimer  // set up once in init, then only the queue touches it
    private static let flushAt = 64 * 1024

    /// Recorders to flush at exit (atexit takes no context).
    private static let open = Mutex<[InputRecorder]>([])

    /// Creates (truncates) `path` and writes the header with the clock kernel times convert with.
    init(path: String, clock: WallClock) throws {
        self.path = path
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw InputRecorderError(message: "--record-inputs \(path): cannot create the file: \(String(cString: strerror(errno)))")
        }
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "podstart.input-recorder"))
        state.withLock { $0.buffer += Array((CorrelatorInputCodec.header(clock: clock).rendered() + "\n").utf8) }
        flush()
        timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        timer.setEventHandler { [weak self] in self?.flush() }
        timer.resume()
        let first = Self.open.withLock { list in
            list.append(self)
            return list.count == 1
        }
        if first { atexit { InputRecorder.flushAll() } }
    }

    /// The hub's recording hook.
    func record(_ input: CorrelatorInput) {
        var line = CorrelatorInputCodec.line(input)
        line += "\n"
        let full = state.withLock { s in
            s.buffer += line.utf8
            s.lines += 1
            return s.buffer.count >= Self.flushAt
        }
        if full { flush() }
    }

    var linesRecorded: Int { state.withLock { $0.lines } }

    /// Writes what is buffered. A write error is reported once on standard error and recording
    /// stops (the agent itself goes on).
    func flush() {
        state.withLock { s in
            guard !s.buffer.isEmpty, s.failed == nil else { return }
            var written = 0
            let total = s.buffer.count
            s.buffer.withUnsafeBytes { raw in
                while written < total {
                    let n = write(fd, raw.baseAddress! + written, total - written)
                    if n < 0 {
                        if errno == EINTR { continue }
                        s.failed = String(cString: strerror(errno))
                        return
                    }
                    written += n
                }
            }
            s.buffer.removeAll(keepingCapacity: true)
            if let failed = s.failed {
                FileHandle.standardError.write(Data("podstart: --record-inputs \(path): write failed (\(failed)); recording stopped\n".utf8))
            }
        }
    }

    static func flushAll() {
        for recorder in open.withLock({ $0 }) { recorder.flush() }
    }
}

struct InputRecorderError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `podstart trim-inputs` (hidden): cuts a recording (`agent --record-inputs`) down to the pod
/// starts listed in a /v1/pods answer, for the correlator's fixtures (scripts/record-fixtures.sh).
struct TrimInputsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "trim-inputs", shouldDisplay: false)

    @Option(help: "The recording to trim.")
    var input: String

    @Option(help: "The agent's /v1/pods answer: the starts to keep.")
    var traces: String

    @Option(help: "Where to write the trimmed recording.")
    var output: String

    @Option(help: "containerd's overlayfs snapshots directory: write OUTPUT's .files.json, the lower-layer file of each accessed path.")
    var snapshots: String?

    func run() throws {
        guard let text = try? String(contentsOfFile: input, encoding: .utf8) else { throw ValidationError("cannot read --input \(input)") }
        let recording = CorrelatorInputCodec.read(text)
        guard recording.problems.isEmpty, let clock = recording.clock else {
            throw ValidationError("\(input): no header or \(recording.problems.count) bad lines: \(recording.problems.prefix(3))")
        }
        guard let list = try? JSON.parse(String(contentsOfFile: traces, encoding: .utf8)), let items = list["items"]?.arrayValue else {
            throw ValidationError("--traces \(traces) is not a /v1/pods answer ({\"items\":[…]})")
        }
        let uids = Set(try items.map { try PodStartTrace(json: $0).pod.uid })
        let kept = RecordingTrim.keep(recording.inputs, uids: uids)
        let lines = [CorrelatorInputCodec.header(clock: clock).rendered()] + kept.map(CorrelatorInputCodec.line)
        try (lines.joined(separator: "\n") + "\n").write(toFile: output, atomically: true, encoding: .utf8)
        FileHandle.standardError.write(Data("kept \(kept.count) of \(recording.inputs.count) inputs for \(uids.count) pods\n".utf8))
        if let snapshots { try writeFiles(traces: try items.map(PodStartTrace.init(json:)), kept: kept, snapshots: snapshots) }
    }

    /// The agent resolves each accessed path to the lower-layer file that holds its pages (the
    /// kernel's page-cache records name that file, its opens name the overlay inode) by looking at
    /// the container's overlay mounts: I/O outside the recorded stream. Redone here from the
    /// image's snapshots (still present after the start), and kept next to the fixture: for each
    /// path, the snapshot file that the recorded page-cache records name (or none).
    func writeFiles(traces: [PodStartTrace], kept: [CorrelatorInput], snapshots: String) throws {
        var read: Set<FileKey> = []
        for input in kept { if case .kernel(.readRange(let r)) = input { read.insert(r.file) } }
        let dirs = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? []).sorted()
        var entries: [JSON] = []
        var paths = Set<String>()
        for trace in traces { for c in trace.containers { for a in c.accesses where a.layerDigest != nil { paths.insert(a.path) } } }
        for path in paths.sorted() {
            var found: FileKey?
            for dir in dirs {
                var st = stat()
                guard stat("\(snapshots)/\(dir)/fs\(path)", &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
                let key = FileKey(device: DeviceNumber(userspace: UInt64(st.st_dev)), inode: UInt64(st.st_ino))
                if read.contains(key) { found = key; break }
            }
            if let found {
                entries.append(.object([("path", .string(path)), ("dev", .uint(UInt64(found.device.rawValue))), ("ino", .uint(found.inode))]))
            }
        }
        let path = output.hasSuffix(".jsonl") ? String(output.dropLast(6)) + ".files.json" : output + ".files.json"
        try (JSON.object([("files", .array(entries))]).rendered() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
