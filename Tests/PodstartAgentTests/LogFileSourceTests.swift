import Exporter
import Foundation
import PodstartAgent
import PodstartCore
import StateStore
import Synchronization
import Testing

/// containerd.log as the node wrote it (unreadable at first, then readable and growing),
/// followed by the agent's log source under its supervisor into the hub.
@Suite struct LogFileSourceTests {
    @Test func anUnreadableLogIsAnOutageThenOnlyNewLinesAreRead() async throws {
        let dir = NSTemporaryDirectory() + "podstart-logsource-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // unreadable: a component of the path is a file (ENOTDIR), as a misconfigured mount gives
        try "".write(toFile: "\(dir)/containerd", atomically: false, encoding: .utf8)
        let path = "\(dir)/containerd/containerd.log"
        let logs = CapturedLogs()
        let metrics = MetricsRegistry.forTests()
        let store = try TimelineStore(directory: dir + "/state", logger: logs.logger())
        defer { try? store.close() }
        let hub = AgentHub(correlator: Correlator(clock: WallClock.measure()), store: store, metrics: metrics,
                           logger: logs.logger(), processes: .none)
        let seen = Mutex<[String]>([])
        await hub.record { input in seen.withLock { $0.append(input.line) } }
        let gate = StartupGate(["containerd-log"])
        let parser = ContainerdLogInputs()
        let source = LogFileSource(name: "containerd-log", path: path, interval: .milliseconds(20), gate: gate, hub: hub,
                                   parse: { parser.parse(line: $0, context: $1) })
        let task = Task { await SourceSupervisor(source, metrics: metrics, logger: logs.logger()).run() }
        defer { task.cancel() }

        let lines = try String(contentsOfFile: "\(Recordings.directory)/containerd.log", encoding: .utf8)
            .split(separator: "\n").map { $0 + "\n" }
        // an outage, logged once however often it is retried
        try await Task.sleep(for: .milliseconds(150))
        #expect(await gate.wait(timeout: .zero) == ["containerd-log"])
        #expect(logs.messages("cannot read log; retrying").count == 1)
        #expect((metrics.sourceErrors("containerd-log") ?? 0) >= 2)
        // the node's log up to pod-a's RunPodSandbox: written before the agent read it, skipped
        try FileManager.default.removeItem(atPath: "\(dir)/containerd")
        try FileManager.default.createDirectory(atPath: "\(dir)/containerd", withIntermediateDirectories: false)
        try lines[..<62].joined().write(toFile: path, atomically: false, encoding: .utf8)
        #expect(await gate.wait(timeout: .seconds(5)).isEmpty)
        #expect(logs.messages("log readable again").count == 1)
        let errors = metrics.sourceErrors("containerd-log")
        // pod-a's start, appended
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(lines[62..<80].joined().utf8))
        try handle.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while seen.withLock({ $0.count }) < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let got = seen.withLock { $0 }
        #expect(got.count == 4)
        #expect(got.first?.hasPrefix(#"{"input":"sandbox","uid":"5efcd879-ac24-40ee-8026-d96bfc2064f1","sandboxId":"fb69da6826bb40e41dabf2e1f5aad408a7afc52d5e5bcfb786ae95a68753ca68","begin":1796526068836629805,"end":1796526068973695005"#) == true)
        #expect(got.last?.contains(#""input":"containerStarted","containerId":"0a1c20773e5db248bda464a8f761835fe409219b3210ac7289be34a62434289e","begin":1796526069124360271,"end":1796526069180850872"#) == true)
        #expect(metrics.sourceErrors("containerd-log") == errors, "no error once the file is there")
    }
}
