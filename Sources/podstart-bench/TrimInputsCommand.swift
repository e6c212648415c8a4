import ArgumentParser
import Foundation
import PodstartCore

/// `podstart-bench trim-inputs` (hidden): cuts a recording (`agent --record-inputs`) down to the pod
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
