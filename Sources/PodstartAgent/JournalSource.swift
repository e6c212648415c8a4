import Foundation
import KubeletSources
import Logging
import PodstartCore

/// The kubelet's and containerd's units followed in the journal (`journalctl -f -o json`, a child
/// process: no libsystemd link), each record's MESSAGE routed by its unit to the same line
/// handlers the log files feed. Resumes right after the last handled record (`--after-cursor`,
/// the cursor kept in `cursorPath`); without a cursor starts at the end of the journal (after its
/// last record, see ``tailCursor(executable:environment:)``), as a log file is tailed from its
/// end. The cursor is saved after the records before it were handed to the hub, at most once per
/// `cursorSaveInterval` and when the run ends, so a clean restart neither repeats nor loses a
/// record. journalctl exiting (the journal rotated away, a
/// bad directory) is an outage the supervisor retries with backoff.
public final class JournalSource: AgentSource, @unchecked Sendable {
    /// Which handler a unit's lines go to.
    public enum Stream: Sendable, Equatable { case kubelet, containerd }

    public let name = "journal"
    public let units: [String: Stream]
    /// `--directory` for journalctl (a mounted /var/log/journal); nil: /var/log/journal and
    /// /run/log/journal (``journalSelection``).
    public let directory: String?
    public let cursorPath: String
    let executable: String?
    let searchPath: String?
    let interval: Duration
    let cursorSaveInterval: Duration
    let gate: StartupGate?
    let deliver: @Sendable ([CorrelatorInput]) async -> Void
    let kubeletLine: @Sendable ([UInt8], SourceContext) -> [CorrelatorInput]
    let containerdLine: @Sendable ([UInt8], SourceContext) -> [CorrelatorInput]
    /// Only `run` touches these, and the supervisor runs one `run` at a time.
    private var cursor: String?
    private var first = true
    /// Records handled since the source was made (all runs).
    public private(set) var handledRecords = 0

    /// The longest record read; a longer one is skipped and counted, never held.
    public static let maxRecordBytes = 1 << 20

    /// `units` maps a unit (`kubelet.service`) to its handler; a record whose `_SYSTEMD_UNIT` is
    /// absent is matched by `SYSLOG_IDENTIFIER` without the `.service` suffix.
    public init(units: [String: Stream], directory: String?, cursorPath: String, executable: String? = nil, searchPath: String? = nil,
                interval: Duration = .milliseconds(100), cursorSaveInterval: Duration = .seconds(1), gate: StartupGate?,
                deliver: @escaping @Sendable ([CorrelatorInput]) async -> Void,
                kubeletLine: @escaping @Sendable ([UInt8], SourceContext) -> [CorrelatorInput] = KubeletLogInputs.parse,
                containerdLine: @escaping @Sendable ([UInt8], SourceContext) -> [CorrelatorInput]) {
        self.units = units
        self.directory = directory
        self.cursorPath = cursorPath
        self.executable = executable
        self.searchPath = searchPath
        self.interval = interval
        self.cursorSaveInterval = cursorSaveInterval
        self.gate = gate
        self.deliver = deliver
        self.kubeletLine = kubeletLine
        self.containerdLine = containerdLine
    }

    /// The kubelet's and containerd's units (empty: not followed), into `hub`, the cursor under
    /// `stateDirectory`. A unit name without a suffix is a `.service`.
    public convenience init(kubeletUnits: [String] = ["kubelet.service"], containerdUnits: [String] = ["containerd.service"],
                            directory: String?, stateDirectory: String, gate: StartupGate?, hub: AgentHub) {
        var units: [String: Stream] = [:]
        for unit in kubeletUnits { units[unit.contains(".") ? unit : unit + ".service"] = .kubelet }
        for unit in containerdUnits { units[unit.contains(".") ? unit : unit + ".service"] = .containerd }
        let parser = ContainerdLogInputs()
        self.init(units: units, directory: directory, cursorPath: stateDirectory + "/journal.cursor", gate: gate,
                  deliver: { await hub.ingest($0) }, containerdLine: { parser.parse(line: $0, context: $1) })
    }

    public var logMetadata: Logger.Metadata { ["journal": "\(directory ?? "system")", "units": "\(units.keys.sorted().joined(separator: ","))"] }
    public var outageMessage: String { "cannot follow the journal; retrying with backoff" }
    public var recoveryMessage: String { "following the journal again" }

    /// Which journal files journalctl reads: `directory`, else the node's journals where journald
    /// keeps them, /var/log/journal and /run/log/journal (`--root=/`: whatever machine id their
    /// subdirectory has, so a pod needs no /etc/machine-id of the node, as journalctl's default,
    /// the journal of the machine in /etc/machine-id, would).
    var journalSelection: String { directory.map { "--directory=\($0)" } ?? "--root=/" }

    /// journalctl's arguments for a run resuming after `cursor`; nil: the journal had no record
    /// when the source started, so every record is new (`--lines=all`).
    public func arguments(after cursor: String?) -> [String] {
        // --all: without it journalctl prints fields over 4096 bytes as null (a long kubelet line)
        var args = ["--follow", "--all", "--output=json", "--output-fields=MESSAGE,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER", "--no-pager", "--quiet"]
        args.append(journalSelection)
        for unit in units.keys.sorted() { args.append("--unit=\(unit)") }
        if let cursor { args.append("--after-cursor=\(cursor)") } else { args.append("--lines=all") }
        return args
    }

    /// The cursor of the journal's last record of any unit (`journalctl --lines=1`), nil when the
    /// journal is empty. Where a first run starts: following `--lines=0 --follow` instead would
    /// lose the records written between the agent reporting ready and journalctl reaching the
    /// journal's end; after this cursor none is lost, and none from before is read.
    func tailCursor(executable: String, environment: [String: String]) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var args = ["--lines=1", "--output=json", "--output-fields=SYSLOG_IDENTIFIER", "--no-pager", "--quiet"]
        args.append(journalSelection)
        process.arguments = args
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw JournalError.launch("\(executable): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw JournalError.exited(status: process.terminationStatus, stderr: stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let last = data.split(separator: UInt8(ascii: "\n")).last.map { Array($0) }
        return last.flatMap { JournalRecord.parseCursor($0) }
    }

    /// The handler of a record, by its unit (or syslog identifier).
    func stream(of record: JournalRecord) -> Stream? {
        guard let unit = record.unit else { return nil }
        return units[unit] ?? units[unit + ".service"]
    }

    public func run(_ context: SourceContext) async throws {
        let path = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let exe = executable ?? JournalctlReader.findOnPath("journalctl", path: path) else { throw JournalError.journalctlNotFound }
        if let directory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw JournalSourceError.directoryMissing(directory)
            }
            guard let dir = opendir(directory) else { throw JournalSourceError.directoryUnreadable(directory, errno: errno) }
            closedir(dir)
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = path
        environment["SYSTEMD_COLORS"] = "0"
        let store = JournalCursorStore(path: cursorPath)
        if cursor == nil { cursor = store.load() }
        if cursor == nil { cursor = try tailCursor(executable: exe, environment: environment) }
        if cursor == nil {
            // An empty journal, which `journalctl --follow` refuses ("no boot"): every record it
            // gets is new, read from the head once there is one.
            if first {
                first = false
                context.up()
                gate?.primed(name)
            }
            while try tailCursor(executable: exe, environment: environment) == nil {
                try await Task.sleep(for: .seconds(1))
            }
        }
        let resumedFrom = cursor

        let process = Process()
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = arguments(after: resumedFrom)
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw JournalError.launch("\(exe): \(error)") }
        let fd = out.fileHandleForReading.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        // journalctl's stderr (a corrupt file's warning, why it exits), drained as it comes so a
        // talkative journalctl never blocks on a full pipe; the last 4 KiB kept for the error
        let errFD = err.fileHandleForReading.fileDescriptor
        _ = fcntl(errFD, F_SETFL, fcntl(errFD, F_GETFL) | O_NONBLOCK)
        var stderrTail: [UInt8] = []
        var errChunk = [UInt8](repeating: 0, count: 4096)
        func drainStderr() {
            while true {
                let n = errChunk.withUnsafeMutableBytes { read(errFD, $0.baseAddress!, $0.count) }
                guard n > 0 else { return }
                stderrTail += errChunk[0..<n]
                if stderrTail.count > 4096 { stderrTail.removeFirst(stderrTail.count - 4096) }
            }
        }

        var saved = store.load()
        var lastSave = ContinuousClock.now
        func save() {
            guard let cursor, cursor != saved else { return }
            do {
                try store.save(cursor)
                saved = cursor
            } catch {
                context.failed("cannot save the journal cursor; a restart re-reads from the last one saved", error)
            }
        }
        defer {
            save()
            // not waited for: Foundation reaps it, and a stop must not block on a child
            if process.isRunning { process.terminate() }
        }

        var lines = LineSplitter(maxLineBytes: Self.maxRecordBytes)
        var oversizeCounted = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var ended = false
        while !Task.isCancelled, !ended {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                guard errno == EAGAIN || errno == EWOULDBLOCK else { throw JournalError.launch("reading journalctl's output: errno \(errno)") }
                if first {
                    first = false
                    context.up()
                    gate?.primed(name)
                }
                if ContinuousClock.now - lastSave >= cursorSaveInterval { save(); lastSave = .now }
                drainStderr()
                try await Task.sleep(for: interval)
                continue
            }
            if n == 0 { ended = true; break }
            context.up()
            var inputs: [CorrelatorInput] = []
            var last: String?
            lines.feed(chunk[0..<n]) { line in
                guard !line.isEmpty else { return }
                guard let record = JournalRecord.parse(Array(line)) else {
                    context.malformed(reason: "not a journal record (JSON with __CURSOR and MESSAGE)", sample: String(decoding: line, as: UTF8.self))
                    return
                }
                last = record.cursor
                handledRecords += 1
                switch stream(of: record) {
                case .kubelet?: inputs += kubeletLine(record.message, context)
                case .containerd?: inputs += containerdLine(record.message, context)
                case nil: break
                }
            }
            while oversizeCounted < lines.oversizeLines {
                oversizeCounted += 1
                context.malformed(reason: "journal record longer than \(Self.maxRecordBytes) bytes", sample: "")
            }
            if !inputs.isEmpty { await deliver(inputs) }
            // the records up to `last` are in the hub: resume after it
            if let last { cursor = last }
            if ContinuousClock.now - lastSave >= cursorSaveInterval { save(); lastSave = .now }
        }
        if Task.isCancelled { return }
        // its stdout closed: it is exiting (polled rather than waitUntilExit, which spins a run
        // loop on the cooperative thread)
        while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        drainStderr()
        let stderr = String(decoding: stderrTail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if resumedFrom != nil, cursor == resumedFrom, stderr.contains("cursor") {
            // the saved cursor is no journal's (a journal from another machine, a corrupt file):
            // start from the end rather than fail forever
            cursor = nil
            saved = nil
            try? FileManager.default.removeItem(atPath: cursorPath)
            throw JournalSourceError.cursorRejected(stderr)
        }
        throw JournalError.exited(status: process.terminationStatus, stderr: stderr.isEmpty ? "(nothing on stderr)" : stderr)
    }
}

/// Why the journal cannot be followed, and what to do.
public enum JournalSourceError: Error, CustomStringConvertible, Equatable {
    case directoryMissing(String)
    case directoryUnreadable(String, errno: Int32)
    case cursorRejected(String)

    public var description: String {
        switch self {
        case .directoryMissing(let path):
            "journal directory \(path) does not exist: mount the node's /var/log/journal (or /run/log/journal) there, or leave out --journal-directory"
        case .directoryUnreadable(let path, let e):
            "journal directory \(path) is not readable (errno \(e): \(String(cString: strerror(e)))): mount it read-only into the agent and run it as root"
        case .cursorRejected(let why):
            "journalctl rejected the saved cursor (\(why)); it was removed: following from the end of the journal"
        }
    }
}
