import ContainerRuntime
import Foundation
import PodstartCore
import PodstartTestSupport
import Testing

/// Debian's Prometheus scrapes a running `podstart agent` (kernel probes on) while real pods start
/// through CRI on the local containerd; then every query of every dashboard panel and every alert
/// rule is evaluated through Prometheus's HTTP API. Prometheus also loads alerts/ itself, so the
/// rules must be healthy in a real server, and no panel or rule may name a metric the agent does
/// not export.
@Suite(.serialized) struct PrometheusEndToEndTests {
    let env: LocalEnvironment
    let binary: String

    init() throws {
        env = try LocalEnvironment.shared()
        binary = try LocalEnvironment.podstartBinary()
    }

    /// Alert rules' expressions without their threshold (the expression must contain it verbatim):
    /// this part must return data; the thresholds are covered by promtool's unit tests.
    static let alertSignals: [(alert: String, signal: String)] = [
        ("PodStartupSLOBreach", "histogram_quantile(0.99, sum by (le) (rate(podstart_pod_start_slo_duration_seconds_bucket[5m])))"),
        ("PodStartPullsDominate", "sum by (node) (rate(podstart_phase_duration_seconds_sum{phase=\"pull\"}[30m]))"),
        ("PodStartPullsDominate", "sum by (node) (rate(podstart_pod_start_duration_seconds_sum[30m]))"),
        ("PodStartDecompressionDominatesPulls", "sum by (node) (rate(podstart_phase_duration_seconds_sum{phase=\"decompress\"}[30m]))"),
        ("PodStartLongReadinessWaits", "rate(podstart_phase_duration_seconds_bucket{phase=\"probe\"}[30m])"),
        ("PodstartProbeEventsLost", "sum by (node, program) (rate(podstart_probe_events_lost_total[10m]))"),
        ("PodstartAgentDown", "up{job=\"podstart\"}"),
        ("PodstartAgentAbsent", "up{job=\"podstart\"}"),
        ("PodstartSourceFailing", "sum by (node, source) (rate(podstart_source_errors_total[10m]))"),
        ("PodstartKernelProbesOff", "podstart_probes_enabled"),
        ("PodStartNodeWarningEvents", "sum by (node, reason) (increase(podstart_pod_start_warning_events_total{reason=~\"FailedCreatePodSandBox|FailedPodSandBoxStatus|NetworkNotReady|FailedMount|FailedAttachVolume|FailedMapVolume|FailedCreatePodContainer\"}[30m]))"),
    ]
    /// The API server the agent follows: this node's pods, written by the test as it plays the kubelet.
    static let node = "e2e-node"
    static let token = "e2e-api-token-5b2e"

    /// The starts: two cold pulls of pod-a (the pull phases' series exist from the first, so the
    /// second is what rate() sees), a warm one, then pod-b with its readiness probe twice (the
    /// probe series exists from the first): its image ready 1.5 s after it runs, then 31 s, over
    /// PodStartLongReadinessWaits's 30 s.
    static let starts: [(recorded: String, image: String, cold: Bool, readyDelay: String?)] = [
        ("pod-a-reader", "reader:latest", true, nil), ("pod-a-reader", "reader:latest", true, nil), ("pod-a-reader", "reader:latest", false, nil),
        ("pod-b-slowready", "slow-ready:latest", true, nil), ("pod-b-slowready", "slow-ready:latest", false, "31"),
    ]

    @Test func dashboardsAndAlertsQueryARealAgentThroughPrometheus() async throws {
        let prometheusPath = try #require(Command.which("prometheus"), "prometheus is not installed: run scripts/install-deps.sh")
        let agentState = try Command.temporaryDirectory("podstart-e2e-state")
        // No kubelet runs here: the test plays it. It writes each pod's record to a test API server
        // the agent lists and watches (creation, status writes, Ready; pod-b's readiness probe in
        // its spec), and the kubelet's "Observed pod startup duration" line for each start
        // (KubeletLines), from which the agent takes the kubelet's SLI.
        let kubeletLog = "\(agentState)/kubelet.log"
        KubeletLines.startLog(at: kubeletLog)
        let pki = try TestPKI.make()
        let api = TestPodAPIServer(token: Self.token, node: Self.node)
        let apiServer = try await api.serve(pki: pki)
        defer { api.close(); Task { try? await apiServer.shutdown() } }
        let agent = try await AgentProcess.start(binary: binary, stateDirectory: agentState, arguments: [
            "--cri-endpoint", env.endpoint.description, "--containerd-log", "\(env.directory)/containerd/containerd.log",
            "--kubelet-log", kubeletLog, "--node-name", Self.node, "--kubeconfig", try api.kubeconfig(port: apiServer.port, pki: pki),
        ])
        let wallStart = Date()
        let prometheus = try PrometheusServer.start(binary: prometheusPath, target: "127.0.0.1:\(agent.port)",
                                                    labels: ["node": Self.node, "namespace": "podstart"],
                                                    ruleFiles: [DeployFiles.rules])
        defer { prometheus.stop() }
        _ = try await agent.waitFor("Prometheus to scrape the agent", timeout: 60) {
            // connection refused until Prometheus listens
            (try? prometheus.values("up{job=\"podstart\"}"))?.first == 1 ? true : nil
        }
        _ = try await agent.waitFor("the agent to watch the node's pods", timeout: 30) {
            apiServer.log.contains { $0.uri.contains("watch=true") } ? true : nil
        }

        // Real starts through CRI, scraped every second.
        var probeSeconds: [Double] = []
        for start in Self.starts {
            let uid = UUID().uuidString.lowercased()
            let name = "\(start.recorded)-\(uid.prefix(8))"
            var pod = try RecordedPods.pod(start.recorded, name: name, uid: uid, node: Self.node, image: env.image)
            var options = env.options(image: start.image)
            options.pod = PodIdentity(namespace: "default", name: name, uid: uid)
            let spec = pod["spec"] as! [String: Any]
            var container = (spec["containers"] as! [[String: Any]])[0]
            options.containerName = container["name"] as! String
            let probe = container["readinessProbe"] != nil
            if let delay = start.readyDelay {
                let variable = ["name": "READY_DELAY", "value": delay]
                container["env"] = [variable]
                pod["spec"] = spec.merging(["containers": [container]]) { $1 }
                options.env = [.init(name: "READY_DELAY", value: delay)]
            }
            // the kubelet's prober for pod-b (exec, as its spec says); pod-a is ready once it runs
            options.readiness = probe ? .exec(command: ["/bin/busybox", "test", "-f", "/tmp/ready"]) : .running
            options.cold = start.cold
            options.timeout = .seconds(120)
            let kubelet = KubeletStatusWriter(pod: pod, api: api)
            // the events the real API server held for the recorded pod (pod-b: three failed
            // readiness probes, one Unhealthy Warning of count 3), listed by the agent after the start
            try api.addEvents(RecordedPods.events(of: start.recorded, name: name, uid: uid))
            try kubelet.create()
            let (record, readyWritten) = try await kubelet.start(options, endpoint: env.endpoint, readinessProbe: probe)
            try KubeletLines.append(KubeletLines.observedStartup(record, observedUnixNs: record.ready.unixNs + 20_000_000), to: kubeletLog)
            let trace = try await agent.pod(uid)
            try kubelet.delete()
            // readiness is the pod's Ready status as the watch delivered it; the time from running
            // to it is `probe` for pod-b (a readiness probe in its spec), `ready_report` for pod-a
            let phases = trace["phases"] as? [[String: Any]] ?? []
            let names = Set(phases.compactMap { $0["name"] as? String })
            #expect(names.contains(probe ? "probe" : "ready_report") && !names.contains(probe ? "ready_report" : "probe"),
                    "\(start.recorded): phases \(names.sorted())")
            let ready = (trace["ready"] as? String).flatMap(Timestamp.parseRFC3339)
            #expect(ready.map { abs($0 - readyWritten) <= 10_000_000 } == true, "ready \(ready ?? 0), Ready written at \(readyWritten)")
            if probe { probeSeconds.append(phases.filter { $0["name"] as? String == "probe" }.compactMap { $0["seconds"] as? Double }.reduce(0, +)) }
            try await Task.sleep(for: .seconds(2))
        }
        _ = try await agent.waitFor("Prometheus to see \(Self.starts.count) ready starts", timeout: 30) {
            try prometheus.values("podstart_pod_starts_total{outcome=\"ready\"}").first == Double(Self.starts.count) ? true : nil
        }

        // The Warning events of the recorded starts: pod-b's Unhealthy (count 3) per pod-b start.
        let unhealthy = Double(3 * Self.starts.filter { $0.recorded == "pod-b-slowready" }.count)
        _ = try await agent.waitFor("Prometheus to see \(unhealthy) Unhealthy warnings", timeout: 30) {
            try prometheus.values(#"podstart_pod_start_warning_events_total{reason="Unhealthy"}"#).first == unhealthy ? true : nil
        }
        #expect(try prometheus.values(#"sum(podstart_pod_start_warning_events_total{reason!="Unhealthy"})"#) == [0])

        // The families the agent exports (text format: counters with _total, histograms' parts).
        let exposition = try await agent.get("/metrics").1
        var exported = Set<String>()
        for line in exposition.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            let name = String(parts[2])
            exported.insert(name)
            if parts[3] == "histogram" { for s in ["_bucket", "_sum", "_count"] { exported.insert(name + s) } }
        }
        func namesIn(_ query: String) -> Set<String> {
            let regex = /podstart_[a-z_]+/
            return Set(query.matches(of: regex).map { String($0.output) })
        }

        // Every panel query of the pod-starts dashboard.
        let dashboard = try JSON.parse(String(contentsOfFile: "\(DeployFiles.dashboards)/podstart-pod-starts.json", encoding: .utf8))
        var panelCount = 0
        var readinessQueries = 0
        for panel in dashboard["panels"]?.arrayValue ?? [] where panel["type"]?.stringValue != "row" {
            let title = panel["title"]?.stringValue ?? "?"
            for target in panel["targets"]?.arrayValue ?? [] {
                let expr = try #require(target["expr"]?.stringValue, "panel \(title) has a target without expr")
                panelCount += 1
                let query = PrometheusServer.grafanaVariables(expr)
                let missing = namesIn(query).subtracting(exported)
                let result = try prometheus.query(query)
                #expect(result.error == nil, "panel \(title): \(result.error ?? "") in \(query)")
                #expect(missing.isEmpty, "panel \(title) names metrics the agent does not export: \(missing.sorted())")
                #expect(!result.values.isEmpty && result.values.allSatisfy(\.isFinite),
                        "panel \(title) returned no data (or NaN): \(query) → \(result.values)")
                if query.contains("podstart_pod_start_warning_events_total") {
                    // the warnings panel: pod-b's Unhealthy events, listed minutes ago at most
                    #expect(result.values.contains { $0 > 0 }, "panel \(title): no warnings in \(result.values)")
                }
                if query.contains("phase=~\"probe|ready_report\"") {
                    // the readiness panel: a series for each phase, from the pods that had it; the
                    // probe series' only increase in the window is pod-b's 31 s wait
                    readinessQueries += 1
                    for phase in ["probe", "ready_report"] {
                        let one = try prometheus.query(query.replacingOccurrences(of: "phase=~\"probe|ready_report\"", with: "phase=\"\(phase)\""))
                        #expect(one.values.count == 1 && one.values.allSatisfy(\.isFinite), "panel \(title), \(phase): \(one.values)")
                        if phase == "probe" { #expect(one.values.allSatisfy { $0 > 30 }, "panel \(title): probe \(one.values), pod-b waited \(probeSeconds)") }
                    }
                }
            }
        }
        #expect(panelCount >= 20, "only \(panelCount) panel queries found")
        #expect(readinessQueries == 3, "the readiness panel's p50 / p90 / p99 queries: \(readinessQueries) found")

        // Every alert rule: its signal returns data; Prometheus loaded and evaluated the rules.
        let rules = try String(contentsOfFile: DeployFiles.rules, encoding: .utf8)
        for (alert, signal) in Self.alertSignals {
            #expect(rules.contains(signal), "rule \(alert) no longer contains \(signal)")
            let missing = namesIn(signal).subtracting(exported)
            #expect(missing.isEmpty, "rule \(alert) names metrics the agent does not export: \(missing.sorted())")
            let result = try prometheus.query(signal)
            #expect(result.error == nil, "rule \(alert): \(result.error ?? "")")
            #expect(!result.values.isEmpty && result.values.allSatisfy(\.isFinite), "rule \(alert): \(signal) returned no data: \(result.values)")
        }
        for name in namesIn(rules) {
            #expect(exported.contains(name), "alerts/ name \(name), which the agent does not export")
        }
        // PodStartLongReadinessWaits's whole expression holds for this node (pod-b waited 31 s
        // for readiness): Prometheus has the alert pending (it fires after its `for` of 30 minutes)
        let longWaits = #"histogram_quantile(0.9, sum by (le, node) (rate(podstart_phase_duration_seconds_bucket{phase="probe"}[30m]))) > 30"#
        #expect(rules.contains(longWaits), "PodStartLongReadinessWaits no longer is \(longWaits)")
        let waits = try prometheus.query(longWaits)
        #expect(waits.values.count == 1 && waits.values.allSatisfy { $0 > 30 }, "\(longWaits) → \(waits.values) (probe phases \(probeSeconds) s)")
        _ = try await agent.waitFor("PodStartLongReadinessWaits pending for \(Self.node)", timeout: 30) {
            try prometheus.values(#"ALERTS{alertname="PodStartLongReadinessWaits", alertstate="pending", node="e2e-node", severity="info"}"#) == [1] ? true : nil
        }
        let health = try await agent.waitFor("Prometheus to evaluate every rule", timeout: 30) { () -> [String: String]? in
            let health = try prometheus.ruleHealth()
            return health.count == AlertRulesTests.alertNames.count && health.values.allSatisfy({ $0 != "unknown" }) ? health : nil
        }
        for (rule, state) in health { #expect(state == "ok", "rule \(rule) is \(state) in Prometheus") }

        // What the DaemonSet's requests and limits are based on.
        let seconds = Date().timeIntervalSince(wallStart)
        if let usage = ProcessUsage.read(pid: agent.process.processIdentifier) {
            print("podstart agent during the end-to-end test: \(String(format: "%.2f", usage.cpuSeconds)) s CPU over \(String(format: "%.0f", seconds)) s, peak RSS \(usage.peakRSSKiB / 1024) MiB")
        }
        #expect(try await agent.stop() == 0)
    }

    /// Every panel of the one-pod-start dashboard reads a URL of the agent's /v1 API through the
    /// Infinity JSON data source: the paths it asks for answer, and the fields its columns select
    /// are there. (Grafana itself is not on this machine; the query the plugin would send is.)
    @Test func onePodStartDashboardReadsFieldsTheAPIServes() async throws {
        let agentState = try Command.temporaryDirectory("podstart-e2e-state")
        let agent = try await AgentProcess.start(binary: binary, stateDirectory: agentState, arguments: [
            "--cri-endpoint", env.endpoint.description, "--containerd-log", "\(env.directory)/containerd/containerd.log",
        ])
        var options = env.options(image: "reader:latest")
        options.readiness = .file(path: "/tmp/ready")
        options.cold = true
        let record = try await PodStarter(endpoint: env.endpoint).run(options)
        let trace = try await agent.pod(record.pod.uid)
        let accesses = (trace["containers"] as? [[String: Any]])?.first?["accesses"] as? [Any] ?? []
        #expect(!accesses.isEmpty, "the agent recorded no accesses for the reader start: \(trace)")

        let dashboard = try JSON.parse(String(contentsOfFile: "\(DeployFiles.dashboards)/podstart-pod-start.json", encoding: .utf8))
        let panels = dashboard["panels"]?.arrayValue ?? []
        #expect(panels.count == 3)
        for panel in panels {
            let title = panel["title"]?.stringValue ?? "?"
            for target in panel["targets"]?.arrayValue ?? [] {
                let url = try #require(target["url"]?.stringValue)
                let path = url.replacingOccurrences(of: "${agent}", with: "").replacingOccurrences(of: "${uid}", with: record.pod.uid)
                let (status, body) = try await agent.get(path)
                #expect(status == 200, "panel \(title): GET \(path) → \(status)")
                var rows: JSON? = try JSON.parse(body)
                for key in (target["root_selector"]?.stringValue ?? "").split(separator: ".") {
                    rows = Int(key).map { rows?.arrayValue?[safe: $0] } ?? rows?[String(key)]
                }
                let items = try #require(rows?.arrayValue, "panel \(title): \(target["root_selector"]?.stringValue ?? "") is not a list in \(path)")
                #expect(!items.isEmpty, "panel \(title): no rows")
                for column in target["columns"]?.arrayValue ?? [] {
                    let selector = column["selector"]?.stringValue ?? ""
                    let present = items.contains { item in
                        var value: JSON? = item
                        for key in selector.split(separator: ".") {
                            value = Int(key).map { value?.arrayValue?[safe: $0] } ?? value?[String(key)]
                        }
                        return value != nil
                    }
                    #expect(present, "panel \(title): column \(selector) is in no row of \(path)")
                }
            }
        }
        #expect(try await agent.stop() == 0)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// CPU time and peak resident memory of a process, from /proc.
struct ProcessUsage {
    var cpuSeconds: Double
    var peakRSSKiB: Int

    static func read(pid: Int32) -> ProcessUsage? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // after the command: state is field 3, utime 14, stime 15 (1-based in proc(5))
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }?
            .split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return ProcessUsage(cpuSeconds: (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK))), peakRSSKiB: hwm)
    }
}
