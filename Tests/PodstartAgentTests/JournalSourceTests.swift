import Exporter
import Foundation
import KubeletSources
import PodstartAgent
import PodstartCore
import PodstartTestSupport
import StateStore
import Synchronization
import Testing

/// `podstart agent --journal`: the real node's kubelet and containerd lines as records of a real
/// journal file (RealJournal: written by systemd-journal-remote, followed by the real
/// journalctl), read by the agent's journal source under its supervisor into the hub. The inputs
/// must be exactly those the log files give, and a restarted source resumes after its cursor.
@Suite(.serialized) struct JournalSourceTests {
    /// The agent's pieces around one journal source; inputs the hub received, in order.
    final class Harness: Sendable {
        let state: String
        let logs = CapturedLogs()
        let metrics = MetricsRegistry.forTests()
        let store: TimelineStore
        let hub: AgentHub
        let received = Mutex<[String]>([])

        init() throws {
            state = try Command.temporaryDirectory("podstart-journal-state")
            store = try TimelineStore(directory: state + "/store", logger: logs.logger())
            hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics,
                           logger: logs.logger(), processes: .none)
        }

        func start() async {
            await hub.record { [self] input in received.withLock { $0.append(input.line) } }
        }

        /// Runs a journal source until `body` returns, then stops it as the agent's shutdown does.
        func following(_ journal: RealJournal, _ body: (StartupGate) async throws -> Void) async throws {
            let gate = StartupGate(["journal"])
            let source = JournalSource(directory: journal.directory, stateDirectory: state, gate: gate, hub: hub)
            let task = Task { await SourceSupervisor(source, metrics: metrics, logger: logs.logger()).run() }
            do {
                #expect(await gate.wait(timeout: .seconds(30)).isEmpty, "the journal source primes once journalctl follows the journal")
                try await body(gate)
            } catch {
                task.cancel()
                await task.value
                throw error
            }
            task.cancel()
            await task.value
        }

        func waitForInputs(_ count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while received.withLock({ $0.count }) < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            // anything more would be a record handled twice or a line read that should not be
            try await Task.sleep(for: .milliseconds(300))
        }

        deinit {
            try? store.close()
            try? FileManager.default.removeItem(atPath: state)
        }
    }

    /// What the files' lines give through the same adapters, one fresh containerd adapter per run
    /// (its calls pair begin and end lines).
    static func fileInputs(_ records: ArraySlice<RealJournal.Record>) -> [String] {
        let containerd = ContainerdLogInputs()
        var inputs: [CorrelatorInput] = []
        for r in records {
            let line = Array(r.message.utf8)
            inputs += (r.unit == "kubelet.service" ? KubeletLogInputs.inputs(line: line) : containerd.inputs(line: line)) ?? []
        }
        return inputs.map(\.line)
    }

    static func nodeRecords() throws -> [RealJournal.Record] {
        RealJournal.nodeRecords(kubelet: try Recordings.lines("kubelet.log"), containerd: try Recordings.lines("containerd.log"))
    }

    @Test func theRealNodesJournalGivesTheInputsItsLogFilesGive() async throws {
        let records = try Self.nodeRecords()
        #expect(records.count == 4766 + 644)
        // the node up to its first pod: in the journal before the agent starts, so not read
        let firstPod = try #require(records.firstIndex { $0.message.contains("RunPodSandbox for &PodSandboxMetadata") })
        let journal = try RealJournal()
        try journal.append(Array(records[..<firstPod]))
        let h = try Harness()
        await h.start()
        let expected = Self.fileInputs(records[firstPod...])
        // 16 sandboxes, 15 pulls, 17 creates, 17 starts (containerd), 14 startup lines (kubelet)
        #expect(expected.count == 79)
        // where the next run resumes: the last record handled (its sequence number is hex in the
        // cursor), saved while the source runs (at most once a second, not per record): wait for
        // that write (a hung source, not a speed check)
        let store = JournalCursorStore(path: h.state + "/journal.cursor")
        let last = ";i=\(String(records.count, radix: 16));"
        try await h.following(journal) { _ in
            try journal.append(Array(records[firstPod...]))
            try await h.waitForInputs(expected.count)
            let deadline = ContinuousClock.now + .seconds(30)
            while store.load()?.contains(last) != true, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(h.received.withLock { $0 } == expected)
        #expect((h.metrics.sourceErrors("journal") ?? 0) == 0)
        #expect(store.load()?.contains(last) == true, "\(store.load() ?? "no cursor")")
    }

    @Test func aRestartedSourceResumesAfterItsCursorWithNoRecordTwiceAndNoneLost() async throws {
        let records = try Self.nodeRecords()
        let journal = try RealJournal()
        try journal.append(Array(records[..<1]))
        let h = try Harness()
        await h.start()
        // cut where no containerd call is open, so each part's inputs are the file's for that part
        let cut1 = try #require(records.firstIndex { $0.message.contains("RunPodSandbox for &PodSandboxMetadata{Name:pod-b") })
        let cut2 = try #require(records.firstIndex { $0.message.contains("RunPodSandbox for &PodSandboxMetadata{Name:pod-e-burst-01") })
        let first = Self.fileInputs(records[1..<cut1])
        try await h.following(journal) { _ in
            try journal.append(Array(records[1..<cut1]))
            try await h.waitForInputs(first.count)
        }
        #expect(h.received.withLock { $0 } == first)
        #expect(!first.isEmpty)
        // written while the agent was down, then after it came back: all read, once
        try journal.append(Array(records[cut1..<cut2]))
        let rest = Self.fileInputs(records[cut1...])
        try await h.following(journal) { _ in
            try journal.append(Array(records[cut2...]))
            try await h.waitForInputs(first.count + rest.count)
        }
        #expect(h.received.withLock { $0 } == first + rest)
        #expect((h.metrics.sourceErrors("journal") ?? 0) == 0)
    }

    @Test func theKubeletJournalSampleGivesWhatItsMessagesGive() async throws {
        // `journalctl -u kubelet -u containerd` as a user pasted it: "<date> <host> <unit>[<pid>]: MESSAGE"
        var records: [RealJournal.Record] = []
        let text = try String(contentsOfFile: "\(Recordings.directory)/kubelet-journal-sample.log", encoding: .utf8)
        for (i, line) in text.split(separator: "\n").enumerated() {
            let s = String(line)
            let colon = try #require(s.range(of: "]: "))
            let unit = s[..<colon.lowerBound].contains(" containerd[") ? "containerd.service" : "kubelet.service"
            records.append(RealJournal.Record(unit: unit, message: String(s[colon.upperBound...]), realtimeMicroseconds: 1_764_432_785_000_000 + Int64(i)))
        }
        #expect(records.filter { $0.unit == "containerd.service" }.count == 28)
        let journal = try RealJournal()
        let h = try Harness()
        await h.start()
        let expected = Self.fileInputs(records[...])
        #expect(expected.filter { $0.hasPrefix("{\"input\":\"kubeletStartup\"") }.count == 2)
        try await h.following(journal) { _ in
            try journal.append(records)
            try await h.waitForInputs(expected.count)
        }
        #expect(h.received.withLock { $0 } == expected)
    }

    @Test func aMalformedOrOversizeRecordIsCountedAndSkipped() async throws {
        let journal = try RealJournal()
        try journal.append([RealJournal.Record(unit: "sshd.service", message: "before", realtimeMicroseconds: 1)])
        let h = try Harness()
        await h.start()
        let records = try Self.nodeRecords()
        let sandbox = try #require(records.firstIndex { $0.message.contains("RunPodSandbox for &PodSandboxMetadata") })
        let ready = try #require(records[sandbox...].firstIndex { $0.message.contains("returns sandbox id") })
        let sandboxInput = Self.fileInputs(records[sandbox...ready])
        #expect(sandboxInput.count == 1)
        // a CRI message whose time is unreadable
        let mangled = RealJournal.Record(unit: "containerd.service", message: #"time="yesterday" level=info msg="StartContainer for \"0a1c\"""#,
                                         realtimeMicroseconds: 2)
        try await h.following(journal) { _ in
            try journal.append([records[sandbox], records[ready], mangled,
                                RealJournal.Record(unit: "kubelet.service", message: String(repeating: "x", count: JournalSource.maxRecordBytes + 10), realtimeMicroseconds: 3),
                                RealJournal.Record(unit: "sshd.service", message: "not ours", realtimeMicroseconds: 4)])
            let deadline = ContinuousClock.now + .seconds(30)
            while (h.metrics.sourceErrors("journal") ?? 0) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            try await h.waitForInputs(1)
        }
        #expect(h.metrics.sourceErrors("journal") == 2, "the mangled CRI line and the record over the cap")
        #expect(h.received.withLock { $0 } == sandboxInput, "the good lines around them are read")
        #expect(h.logs.all.contains { $0.metadata["reason"]?.contains("longer than") == true })
    }

    @Test func aMissingJournalctlOrJournalDirectoryIsAnOutageSayingWhatToDo() async throws {
        let h = try Harness()
        let empty = try Command.temporaryDirectory("podstart-no-journalctl")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        for (source, says) in [
            (JournalSource(units: ["kubelet.service": .kubelet], directory: nil, cursorPath: h.state + "/c1", searchPath: empty, gate: nil,
                           deliver: { _ in }, containerdLine: { _, _ in [] }), "journalctl not found on PATH"),
            (JournalSource(units: ["kubelet.service": .kubelet], directory: empty + "/var/log/journal", cursorPath: h.state + "/c2", gate: nil,
                           deliver: { _ in }, containerdLine: { _, _ in [] }), "mount the node's /var/log/journal"),
        ] {
            let metrics = MetricsRegistry.forTests()
            let logs = CapturedLogs()
            let task = Task { await SourceSupervisor(source, metrics: metrics, logger: logs.logger()).run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while (metrics.sourceErrors("journal") ?? 0) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            task.cancel()
            await task.value
            #expect((metrics.sourceErrors("journal") ?? 0) >= 2, "retried with backoff, each attempt counted")
            let outage = logs.messages("cannot follow the journal; retrying with backoff")
            #expect(outage.count == 1, "logged once per outage")
            #expect(outage.first?.metadata["error"]?.contains(says) == true, "\(outage.first?.metadata ?? [:])")
        }
    }
}
