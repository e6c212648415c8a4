import KubeletSources
import Logging
import PodstartCore

/// A log file followed across rotation (LogFileTailer), each complete line handed to `parse`.
/// Lines written before the agent started are not read: the tailer starts at the end of the file
/// (they describe starts it did not see begin). A line longer than the tailer's cap (1 MiB) is
/// skipped and counted as a source error, never held in memory. A missing file is not fatal: the supervisor retries every `interval` and counts the
/// error once per attempt, logging once per outage.
public final class LogFileSource: AgentSource, @unchecked Sendable {
    public let name: String
    let path: String
    let interval: Duration
    let gate: StartupGate?
    let hub: AgentHub
    let parse: @Sendable ([UInt8], SourceContext) -> [CorrelatorInput]
    /// Only `run` touches these, and the supervisor runs one `run` at a time.
    private let tailer: LogFileTailer
    private var first = true
    private var oversizeCounted = 0

    /// `parse` turns one line into inputs; it reports a line it cannot read through the context.
    public init(name: String, path: String, interval: Duration = .milliseconds(250), gate: StartupGate?, hub: AgentHub,
                parse: @escaping @Sendable ([UInt8], SourceContext) -> [CorrelatorInput]) {
        self.name = name
        self.path = path
        self.interval = interval
        self.gate = gate
        self.hub = hub
        self.parse = parse
        tailer = LogFileTailer(path: path, startAtEnd: true)
    }

    public var logMetadata: Logger.Metadata { ["path": "\(path)"] }
    public var outageMessage: String { "cannot read log; retrying" }
    public var recoveryMessage: String { "log readable again" }
    public var backoff: Backoff { .fixed(interval) }

    public func run(_ context: SourceContext) async throws {
        while !Task.isCancelled {
            let lines = try tailer.poll()
            context.up()
            if first {
                first = false
                gate?.primed(name)
            }
            while oversizeCounted < tailer.oversizeLines {
                oversizeCounted += 1
                context.malformed(reason: "line longer than \(LogFileTailer.defaultMaxLineBytes) bytes", sample: "")
            }
            var inputs: [CorrelatorInput] = []
            for line in lines { inputs += parse(line, context) }
            if !inputs.isEmpty { await hub.ingest(inputs) }
            try await Task.sleep(for: interval)
        }
    }
}
