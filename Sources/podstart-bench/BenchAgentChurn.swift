import ArgumentParser
import ContainerRuntime
import Foundation
import HTTPTransport
import PodstartBenchKit
import PodstartCore
import TraceViews

/// `podstart-bench agent --churn`: the agent on a node whose pods come and go. The bench plays the
/// API server (`BenchAPIServer`: HTTPS, a token, one node's pods as list + watch, counting every
/// request) and the kubelet: each pod is created in the API, started through the real runtime's
/// CRI with the kubelet's labels, written Pending once its sandbox runs and Running/Ready once its
/// container runs (the recorded objects of a real API server, `BenchPodObjects`), and, once
/// `--churn-pods` are up, the oldest is deleted (deletionTimestamp, teardown through CRI, DELETED)
/// for every new one, at `--churn-rate` pods per second. Measured over `--churn-seconds` after the
/// node is full: the agent's CPU (% of one core), its RSS, the requests it made to the API server
/// per minute (lists and watches apart), the starts it recorded against those the bench made, and
/// the rate the runtime sustained (a start still running when its next tick comes is not doubled:
/// at most `--churn-max-starting` are in flight, and ticks past that are counted as missed).
extension BenchAgentCommand {
    static let churnToken = "podstart-bench-churn-3f1c"
    static let churnNode = "bench-churn-node"

    func measureChurn(workdir: String) async throws -> (figures: [(String, JSON)], lines: [String]) {
        let image = image ?? ProcessInfo.processInfo.environment["PODSTART_TEST_IMAGES"]! + "/small-files:latest"
        let pki = try BenchPKI.make(in: "\(workdir)/pki")
        let api = try await BenchAPIServer(certFile: pki.certFile, keyFile: pki.keyFile, token: Self.churnToken, node: Self.churnNode)
        let kubeconfig = try pki.kubeconfig(port: api.port, token: Self.churnToken)
        let listen = try LoopbackPort.free()
        let agent = try AgentProcess(workdir: workdir, name: "churn", listen: "127.0.0.1:\(listen)",
                                     extra: ["--kubeconfig", kubeconfig, "--node-name", Self.churnNode])
        let progress = TerminalProgress.standardError(forPeople: !format.json)
        let pods = ChurnPods(starter: PodStarter(endpoint: try CRIEndpoint.fromEnvironment()), api: api, image: image,
                             node: Self.churnNode, maxStarting: churnMaxStarting)
        do {
            try await agent.waitStarted()
            let clock = ContinuousClock()
            let interval = Duration.seconds(1.0 / churnRate)
            var tick = clock.now

            // fill the node: new pods at the rate, none deleted
            let fillStart = clock.now
            while pods.counts.running + pods.counts.starting < churnPods {
                try pods.checkFailures()
                pods.tick(target: churnPods)
                progress.show("filling the node: \(pods.counts.running) of \(churnPods) pods running")
                tick += interval
                try await clock.sleep(until: tick)
            }
            while pods.counts.running < churnPods {
                try pods.checkFailures()
                try await Task.sleep(for: .milliseconds(100))
            }
            let fillSeconds = (clock.now - fillStart).inSeconds

            // churn: one new pod and one deleted per tick, measured
            let before = pods.counts
            let requests0 = api.requests
            let cpu0 = try agent.cpuNanoseconds(), t0 = clock.now
            tick = clock.now
            let end = t0 + .seconds(churnSeconds)
            var rssSamples: [Int] = []
            var nextSample = t0
            while clock.now < end {
                try pods.checkFailures()
                pods.tick(target: churnPods)
                if clock.now >= nextSample {
                    rssSamples.append(ResidentMemory.read(pid: String(agent.pid)).rssKiB)
                    nextSample += .seconds(1)
                    let c = pods.counts
                    progress.show("churning: \(c.running) running, \(c.starting) starting, \(c.deleting) deleting, \(c.started - before.started) started")
                }
                tick += interval
                try await clock.sleep(until: tick)
            }
            let cpu1 = try agent.cpuNanoseconds()
            let seconds = (clock.now - t0).inSeconds
            let requests1 = api.requests
            let after = pods.counts
            let memory = ResidentMemory.read(pid: String(agent.pid))
            progress.show("deleting the remaining pods")
            await pods.releaseAll()
            progress.clear()
            // pods still starting when the window closed run and are deleted now: count them too
            let final = pods.counts
            // what the agent recorded: every start the bench made, none failed
            try await Task.sleep(for: .seconds(2))
            let recorded = try await agentStarts(port: listen)
            let watchesOpen = api.openWatches
            agent.stop()
            try? await api.shutdown()

            let started = after.started - before.started, deleted = after.deleted - before.deleted
            let perMinute = 60 / seconds
            let cpuPercent = Double(cpu1 - cpu0) / (seconds * 1e9) * 100
            let rssMedianKiB = median(rssSamples.map(Double.init))
            let startLatencies = pods.startSeconds
            let figures: [(String, JSON)] = [
                ("churnCpuPercent", .double(cpuPercent.rounded(toPlaces: 3))),
                ("churnRssMiB", .double((Double(memory.rssKiB) / 1024).rounded(toPlaces: 1))),
                ("churnRssMedianMiB", .double((rssMedianKiB / 1024).rounded(toPlaces: 1))),
                ("churnRssPeakMiB", .double((Double(memory.hwmKiB) / 1024).rounded(toPlaces: 1))),
                ("apiRequestsPerMinute", .double((Double(requests1.total - requests0.total) * perMinute).rounded(toPlaces: 2))),
                ("apiListsPerMinute", .double((Double(requests1.lists - requests0.lists) * perMinute).rounded(toPlaces: 2))),
                ("apiWatchesPerMinute", .double((Double(requests1.watches - requests0.watches) * perMinute).rounded(toPlaces: 2))),
                ("apiRequestsWholeRun", .object([("lists", .int(Int64(requests1.lists))), ("watches", .int(Int64(requests1.watches))),
                                                  ("unauthorized", .int(Int64(requests1.unauthorized))), ("other", .int(Int64(requests1.other)))])),
                ("apiWatchesOpenAtEnd", .int(Int64(watchesOpen))),
                ("targetRatePodsPerSecond", .double(churnRate)),
                ("startsPerSecond", .double((Double(started) / seconds).rounded(toPlaces: 2))),
                ("deletionsPerSecond", .double((Double(deleted) / seconds).rounded(toPlaces: 2))),
                ("ticksMissed", .int(Int64(after.missed - before.missed))),
                ("podStartSecondsMedian", .double(median(startLatencies).rounded(toPlaces: 2))),
                ("podStartSecondsP90", .double(percentile(startLatencies, 0.9).rounded(toPlaces: 2))),
                ("runningPods", .int(Int64(churnPods))),
                ("fillSeconds", .double(fillSeconds.rounded(toPlaces: 1))),
                ("churnSeconds", .double(seconds.rounded(toPlaces: 1))),
                ("podsStartedByBench", .int(Int64(final.started))),
                ("startsRecordedReady", .int(Int64(recorded.ready))),
                ("startsRecordedFailed", .int(Int64(recorded.failed))),
            ]
            var lines: [String] = []
            lines.append(String(format: "churn: %d running pods, target %.1f pods/s started and deleted; over %.0f s after a %.0f s fill:",
                                churnPods, churnRate, seconds, fillSeconds))
            lines.append(String(format: "  runtime sustained %.2f starts/s and %.2f deletions/s (%d ticks missed: %d starts already in flight); pod start median %.2f s, p90 %.2f s",
                                Double(started) / seconds, Double(deleted) / seconds, after.missed - before.missed, churnMaxStarting,
                                median(startLatencies), percentile(startLatencies, 0.9)))
            lines.append(String(format: "  agent CPU %.2f%% of a core; RSS %.1f MiB at the end (median %.1f, peak %.1f)",
                                cpuPercent, Double(memory.rssKiB) / 1024, rssMedianKiB / 1024, Double(memory.hwmKiB) / 1024))
            lines.append(String(format: "  API requests per minute: %.2f (lists %.2f, watches %.2f); whole run: %d lists, %d watches, %d open at the end",
                                Double(requests1.total - requests0.total) * perMinute, Double(requests1.lists - requests0.lists) * perMinute,
                                Double(requests1.watches - requests0.watches) * perMinute, requests1.lists, requests1.watches, watchesOpen))
            lines.append("  starts recorded by the agent: \(recorded.ready) ready, \(recorded.failed) failed, of \(final.started) the bench made")
            return (figures, lines)
        } catch {
            progress.clear()
            await pods.releaseAll()
            agent.stop()
            try? await api.shutdown()
            throw error
        }
    }

    /// `podstart_pod_starts_total` by outcome, from the agent's /metrics.
    func agentStarts(port: Int) async throws -> (ready: Int, failed: Int) {
        let client = try HTTPTransport(HTTPEndpoint(url: "http://127.0.0.1:\(port)"))
        let text = String(decoding: try await client.get("/metrics", accept: "text/plain;version=0.0.4"), as: UTF8.self)
        var ready = 0, failed = 0
        for line in text.split(separator: "\n") where line.hasPrefix("podstart_pod_starts_total{") {
            guard let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            if line.contains("outcome=\"ready\"") { ready += Int(value) } else if line.contains("outcome=\"failed\"") { failed += Int(value) }
        }
        return (ready, failed)
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The bench's kubelet: pods started through CRI and published to the API server at each step,
/// each kept running until it is deleted.
final class ChurnPods: @unchecked Sendable {
    let starter: PodStarter
    let api: BenchAPIServer
    let image: String
    let node: String
    let maxStarting: Int

    struct Counts {
        var starting = 0, running = 0, deleting = 0
        var started = 0, deleted = 0, missed = 0
    }

    private let lock = NSLock()
    private var _counts = Counts()
    private var serial = 0
    /// Running pods, oldest first: their release gates.
    private var runningOrder: [(uid: String, gate: Gate)] = []
    private var tasks: [Task<Void, Never>] = []
    private var failures: [String] = []
    private var _startSeconds: [Double] = []
    /// Set by `releaseAll()`: a pod that becomes ready after it is deleted at once.
    private var closing = false

    init(starter: PodStarter, api: BenchAPIServer, image: String, node: String, maxStarting: Int) {
        self.starter = starter
        self.api = api
        self.image = image
        self.node = node
        self.maxStarting = maxStarting
    }

    var counts: Counts { lock.withLock { _counts } }
    var startSeconds: [Double] { lock.withLock { _startSeconds } }

    func checkFailures() throws {
        if let failed = lock.withLock({ failures.first.map { (count: failures.count, first: $0) } }) {
            throw ValidationError("\(failed.count) pod start(s) failed; first: \(failed.first)")
        }
    }

    /// One tick of the churn: deletes the oldest running pod when the node is full, and starts a
    /// new pod unless `maxStarting` are still starting (then the tick is counted as missed).
    func tick(target: Int) {
        let (release, start) = lock.withLock { () -> (Gate?, Bool) in
            var release: Gate?
            if _counts.running + _counts.starting >= target, !runningOrder.isEmpty {
                release = runningOrder.removeFirst().gate
                _counts.running -= 1
                _counts.deleting += 1
            }
            guard _counts.starting < maxStarting else { _counts.missed += 1; return (release, false) }
            _counts.starting += 1
            serial += 1
            return (release, true)
        }
        release?.open()
        guard start else { return }
        let number = lock.withLock { serial }
        let task = Task.detached { [self] in await runPod(number) }
        lock.withLock { tasks.append(task) }
    }

    /// Deletes every running pod and waits for every pod's teardown.
    func releaseAll() async {
        let (gates, all) = lock.withLock { () -> ([Gate], [Task<Void, Never>]) in
            closing = true
            defer { runningOrder = []; tasks = [] }
            _counts.deleting += runningOrder.count
            _counts.running -= runningOrder.count
            return (runningOrder.map(\.gate), tasks)
        }
        gates.forEach { $0.open() }
        for task in all { await task.value }
    }

    private func runPod(_ number: Int) async {
        let uid = UUID().uuidString.lowercased()
        let name = "churn-\(number)-\(uid.prefix(5))"
        let objects = BenchPodObjects(name: name, uid: uid, node: node, image: image)
        let created = Date()
        let last = Last(objects.added(at: created))
        let gate = Gate()
        do {
            try api.publish("ADDED", last.value)
            var options = PodStartOptions(image: image, pod: PodIdentity(namespace: "default", name: name, uid: uid))
            options.containerName = "small"
            options.readiness = .running
            let api = self.api
            _ = try await starter.run(options, onEvent: { event in
                if case .sandboxReady = event {
                    let pending = objects.pending(created: created, at: Date())
                    last.value = pending
                    try? api.publish("MODIFIED", pending)
                }
            }, whileReady: { record in
                let readyAt = Date()
                let running = objects.running(created: created, startedAt: Date(timeIntervalSince1970: Double(record.running.unixNs) / 1e9),
                                              readyAt: readyAt, containerID: record.containerID, imageDigest: record.imageDigest, podIP: nil)
                last.value = running
                try api.publish("MODIFIED", running)
                lock.withLock {
                    _counts.starting -= 1
                    _counts.started += 1
                    _startSeconds.append(readyAt.timeIntervalSince(created))
                    if closing {
                        _counts.deleting += 1
                        gate.open()
                    } else {
                        _counts.running += 1
                        runningOrder.append((uid, gate))
                    }
                }
                await gate.wait()
                let terminating = objects.terminating(running, at: Date())
                last.value = terminating
                try api.publish("MODIFIED", terminating)
            })
            try api.publish("DELETED", last.value)
            lock.withLock {
                _counts.deleting -= 1
                _counts.deleted += 1
            }
        } catch {
            try? api.publish("DELETED", last.value)
            lock.withLock {
                failures.append("\(name): \(error)")
                _counts.starting -= 1
            }
        }
    }

    /// The last object published for a pod (written from the start's callbacks).
    final class Last: @unchecked Sendable {
        private let lock = NSLock()
        private var object: [String: Any]
        init(_ object: [String: Any]) { self.object = object }
        var value: [String: Any] {
            get { lock.withLock { object } }
            set { lock.withLock { object = newValue } }
        }
    }

    /// Opens once; `wait()` returns when it is open.
    final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var isOpen = false
        private var waiter: CheckedContinuation<Void, Never>?

        func open() {
            let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                isOpen = true
                defer { waiter = nil }
                return waiter
            }
            w?.resume()
        }

        func wait() async {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = lock.withLock { () -> Bool in
                    if isOpen { return true }
                    waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
    }
}
