import ArgumentParser
import Foundation
import KubeletSources
import PodstartCore

/// `podstart analyze`: why were my pods slow to start? — from a kubelet (and containerd) log,
/// with no agent installed.
struct AnalyzeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyse kubelet logs offline: per-pod startup durations and SLO breaches.",
        discussion: """
            Reads the kubelet's "Observed pod startup duration" lines (klog text or JSON, any \
            field-set variant, with or without a journald prefix) and containerd's CRI lines from \
            the same journal, and reports per pod: SLO and E2E seconds, pull and init time, \
            running-to-watch delay and the quirks that make the kubelet's own numbers wrong.
            Examples:
              journalctl -u kubelet -u containerd > node.log; podstart analyze --kubelet-log node.log
              podstart analyze --journal --since 2h --output json
            """
    )

    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json, csv
    }

    @Option(name: .customLong("kubelet-log"), help: "Kubelet log file (or a journalctl export of the kubelet and containerd units); '-' for stdin.")
    var kubeletLog: String?

    @Flag(help: "Read the kubelet and containerd units from journald (runs journalctl -o json).")
    var journal = false

    @Option(help: "Only pods observed running at or after T: RFC 3339 ('2024-11-29T16:00:00Z'), 'YYYY-MM-DD HH:MM:SS' (UTC), or a duration ago ('90m', '2h').")
    var since: String?

    @Option(name: [.short, .long], help: "table, json (one object per pod per line, then a summary object) or csv.")
    var output: Output = .table

    @Option(help: "Slowest pods to list in the summary.")
    var top = 10

    @Flag(name: .customLong("fail-on-breach"), help: "Exit with status 2 when the pod startup SLO (p99 of the SLO duration ≤ 5 s) is breached, for CI pipelines.")
    var failOnBreach = false

    func validate() throws {
        if kubeletLog == nil && !journal {
            throw ValidationError("give --kubelet-log FILE (or '-' for stdin) or --journal")
        }
        if kubeletLog != nil && journal {
            throw ValidationError("--kubelet-log and --journal are exclusive")
        }
        if let since, SinceParser.parse(since, now: Date()) == nil {
            throw ValidationError("--since '\(since)' is neither RFC 3339, 'YYYY-MM-DD HH:MM:SS' nor a duration like 90m")
        }
        if top < 0 { throw ValidationError("--top must be ≥ 0") }
    }

    func run() async throws {
        let out = BufferedOutput()
        var summary = StartupSummary()
        summary.slowestLimit = top
        let format = output
        if format == .csv { out.write(PodStartReport.csvHeaderLine + "\n") }
        // Table rows are streamed with fixed widths so memory does not grow with the log.
        var wroteTableHeader = false
        let scanner = KubeletLogScanner { report in
            summary.add(report)
            switch format {
            case .json: out.writeJSON(report)
            case .csv: out.write(report.csvLine() + "\n")
            case .table:
                if !wroteTableHeader {
                    out.write(PodStartReport.fixedWidthRow(PodStartReport.tableHeader) + "\n")
                    wroteTableHeader = true
                }
                out.write(PodStartReport.fixedWidthRow(report.tableRow()) + "\n")
            }
        }
        if let since { scanner.since = SinceParser.parse(since, now: Date()) }

        if journal {
            var reader = JournalctlReader(units: ["kubelet", "containerd"])
            reader.since = since.flatMap { SinceParser.parse($0, now: Date()) }
            let counters = try reader.readAll { line in scanner.processLine(line) }
            if counters.records == 0 {
                FileHandle.standardError.write(Data("podstart: journalctl returned no records for the kubelet and containerd units (is this the node, and may this user read the journal?)\n".utf8))
            }
            if counters.malformedRecords > 0 {
                FileHandle.standardError.write(Data("podstart: \(counters.malformedRecords) journal records were not JSON and were skipped\n".utf8))
            }
        } else if let path = kubeletLog {
            let fd: Int32
            if path == "-" {
                fd = 0
            } else {
                fd = open(path, O_RDONLY)
                if fd < 0 { throw ScanError.open(path: path, errno: errno) }
            }
            defer { if fd != 0 { close(fd) } }
            try scanner.scanDetectingFormat(fd: fd)
        }

        switch format {
        case .json:
            out.write(summary.jsonLine(counters: scanner.counters) + "\n")
        case .csv:
            break
        case .table:
            if wroteTableHeader { out.write("\n") }
            out.write(summary.table(counters: scanner.counters))
        }
        out.flush()
        let c = scanner.counters
        if c.startupRejected > 0 || c.containerdMalformed > 0 {
            FileHandle.standardError.write(Data("podstart: skipped \(c.startupRejected) damaged startup lines and \(c.containerdMalformed) damaged containerd lines (see summary)\n".utf8))
        }
        if failOnBreach, !summary.sloMet {
            let o = summary.overall
            FileHandle.standardError.write(Data("podstart: pod startup SLO breached: p99 \(o.sloP99) s over \(StartupSummary.sloThresholdSeconds) s (\(o.sloBreaches) of \(o.count) pods over)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// Collects output in a buffer and writes it to stdout in large blocks.
final class BufferedOutput {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    func writeJSON(_ report: PodStartReport) {
        report.appendJSON(to: &buffer)
        buffer.append(10)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { break }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
