import ContainerRuntime
import Exporter
import Foundation
import HTTPTransport
import KubeletSources
import Logging
import PodstartCore
import StateStore
import Synchronization

/// `podstart trace --pod NS/NAME`: waits for a pod that the kubelet starts on this node and
/// returns its start, measured by the agent's own sources for as long as it takes: the pod's
/// record from the API server (list + watch of the node's pods; the kubelet's /pods when no API
/// server is configured) for its UID, creation, scheduling, init containers and readiness; CRI for
/// sandbox, pull, create and start; the kernel probes for execs and file accesses.
///
/// Nothing is started and nothing is torn down: the kubelet owns the pod. A pod that already ran
/// when the trace began (the first listing shows it running or Ready) is an error, not a start.
public struct PodTraceRun: Sendable {
    public var namespace: String
    public var name: String
    /// This node's name, as `spec.nodeName` says it: only this node's pods are followed.
    public var nodeName: String
    public var api: HTTPEndpoint?
    /// The kubelet's HTTPS endpoint: its /pods when no API server is given or it is unreachable.
    public var kubelet: HTTPEndpoint?
    public var criEndpoint: CRIEndpoint
    public var kernel: Bool
    /// How long to wait for the pod to appear and become Ready.
    public var timeout: Duration
    public var criPollInterval: Duration = .milliseconds(100)
    /// List the pod's events once at the API server when its start is recorded (or failed), as
    /// the agent does (`--no-pod-events` turns it off); `podEventsLimit` of them are kept.
    public var podEvents = true
    public var podEventsLimit = PodEvents.defaultLimit
    /// Warnings of the sources (an unreachable API server, a CRI outage), never on standard output.
    public var logger: Logger
    /// Called once the runtime is listed and the pod's record is being followed: from then on a
    /// pod created is a start.
    public var onWatching: @Sendable () -> Void = {}

    public init(namespace: String, name: String, nodeName: String, api: HTTPEndpoint?, kubelet: HTTPEndpoint?,
                criEndpoint: CRIEndpoint, kernel: Bool, timeout: Duration, logger: Logger) {
        self.namespace = namespace
        self.name = name
        self.nodeName = nodeName
        self.api = api
        self.kubelet = kubelet
        self.criEndpoint = criEndpoint
        self.kernel = kernel
        self.timeout = timeout
        self.logger = logger
    }

    /// What the trace learnt of its pod so far, from the inputs the hub sees.
    final class Target: Sendable {
        struct State {
            var uid: String?
            var alreadyStarted: PodStatusReport?
            var lastStatus: PodStatusReport?
            var failure: String?
            var trace: PodStartTrace?
            var listed = false
        }
        let namespace: String
        let name: String
        let state = Mutex(State())

        init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }

        func see(_ input: CorrelatorInput) {
            switch input {
            case .podStatus(let r):
                state.withLock { s in
                    if r.fromInitialList { s.listed = true }
                    guard r.namespace == namespace, r.name == name else { return }
                    // a pod of the same name created again: the newest is the one traced
                    if s.uid != r.uid { s.uid = r.uid; s.failure = nil }
                    s.lastStatus = r
                    if r.fromInitialList, r.readyUnixNs != nil || r.allRunningUnixNs != nil { s.alreadyStarted = r }
                }
            case .failed(let f):
                state.withLock { s in if s.uid == f.uid { s.failure = f.reason } }
            default: break
            }
        }

        func recorded(_ trace: PodStartTrace) {
            state.withLock { s in
                if trace.pod.uid == s.uid || (s.uid == nil && trace.pod.namespace == namespace && trace.pod.name == name) {
                    s.trace = trace
                }
            }
        }
    }

    public func trace() async throws -> PodStartTrace {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("podstart-trace-pod-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let metrics = MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: "trace")))
        let store = try TimelineStore(directory: directory, logger: logger)
        var correlation = Correlator.Configuration()
        correlation.startTimeoutNs = timeout.nanoseconds
        let hub = AgentHub(correlator: Correlator(configuration: correlation, clock: WallClock.measure()),
                           store: store, metrics: metrics, logger: logger)
        let target = Target(namespace: namespace, name: name)
        await hub.record(inputsTo: target.see)
        await hub.onRecorded(target.recorded)

        var kernelSource: KernelSource?
        if kernel {
            do {
                kernelSource = try KernelSource(startupWindow: .seconds(10), hub: hub, metrics: metrics, logger: logger)
            } catch {
                FileHandle.standardError.write(Data("podstart: kernel probes unavailable (\(error)); phases from CRI and the pod's record only, no accesses. Pass --no-kernel to silence this.\n".utf8))
            }
        }
        let pacer = PollPacer(idleInterval: criPollInterval)
        // The runtime's first listing marks what already exists: it comes before the pod's record
        // is followed, or a pod created right after the trace began could pass for one that ran.
        let gate = StartupGate(["cri", "containerd-events"])
        let podRecords = PodRecordSource(api: api, kubelet: kubelet, nodeName: nodeName, hub: hub)
        let runtimeSources: [any AgentSource] = [
            CRIPollSource(endpoint: criEndpoint, interval: criPollInterval, pacer: pacer, gate: gate, hub: hub),
            ContainerdEventSource(endpoint: criEndpoint, pacer: pacer, gate: gate, hub: hub),
        ]
        // each source retried as in the agent; cancelled at the end and left to wind down (the
        // process ends with the trace; a gRPC client's shutdown can take long, see ContainerResolver)
        func supervised(_ source: any AgentSource) -> Task<Void, Never> {
            Task { [metrics, logger] in await SourceSupervisor(source, metrics: metrics, logger: logger).supervise() }
        }
        var tasks = runtimeSources.map(supervised)
        if let kernelSource { tasks.append(Task { await kernelSource.run() }) }
        tasks.append(Task { await CorrelatorClock(hub: hub).run() })
        defer { for task in tasks { task.cancel() } }
        let unprimed = await gate.wait(timeout: .seconds(10))
        if !unprimed.isEmpty {
            logger.warning("the runtime's first listing is late; following the pod anyway", metadata: ["sources": "\(unprimed.joined(separator: ","))"])
        }
        tasks.append(supervised(podRecords))
        onWatching()

        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var failedAt: ContinuousClock.Instant?
        while true {
            try Task.checkCancellation()
            var s = target.state.withLock { $0 }
            if podRecords.state.values.withLock({ $0.listed }) { s.listed = true }
            if let started = s.alreadyStarted { throw PodTraceError.alreadyStarted(pod: "\(namespace)/\(name)", uid: started.uid, ready: started.readyUnixNs != nil) }
            if let trace = s.trace { return await withEvents(trace) }
            if let failure = s.failure {
                // the correlator records the failed start just after the input that failed it:
                // shown as far as it went when it comes
                failedAt = failedAt ?? clock.now
                if let failedAt, clock.now - failedAt > .seconds(1) {
                    let warnings = await events(namespace: namespace, uid: s.uid).map { Self.warningSummary($0) } ?? ""
                    throw PodTraceError.failed(pod: "\(namespace)/\(name)", reason: failure + warnings)
                }
            }
            if clock.now >= deadline {
                throw PodTraceError.timedOut(pod: "\(namespace)/\(name)", node: nodeName, after: timeout, seen: s.uid != nil,
                                             listed: s.listed, api: api != nil)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension PodTraceRun {
    /// The pod's events, listed once (nil: not asked for, no API server or no UID). A failed
    /// listing is a warning on standard error and `eventsError` in the trace.
    func events(namespace: String, uid: String?) async -> PodEvents? {
        guard podEvents, let api, let uid, !uid.isEmpty else { return nil }
        do {
            var lister = try PodEventLister(api)
            lister.limit = podEventsLimit
            return try await lister.list(namespace: namespace, uid: uid)
        } catch {
            logger.warning("cannot list the pod's events; the trace is shown without them", metadata: ["error": "\(error)"])
            return .failed("\(error)")
        }
    }

    func withEvents(_ trace: PodStartTrace) async -> PodStartTrace {
        guard PodEventsAttacher.wantsEvents(trace) else { return trace }
        var trace = trace
        trace.events = await events(namespace: trace.pod.namespace, uid: trace.pod.uid) ?? trace.events
        return trace
    }

    /// `; Warning events: Failed ×3 "…", BackOff ×5 "…"` for a start that failed ("" without any).
    public static func warningSummary(_ events: PodEvents) -> String {
        let warnings = events.items.filter(\.isWarning)
        guard !warnings.isEmpty else { return "" }
        return "; Warning events: " + warnings.map { "\($0.reason) ×\($0.count) \"\($0.message.prefix(160))\"" }.joined(separator: ", ")
    }
}

public enum PodTraceError: Error, Sendable, CustomStringConvertible {
    case alreadyStarted(pod: String, uid: String, ready: Bool)
    case failed(pod: String, reason: String)
    case timedOut(pod: String, node: String, after: Duration, seen: Bool, listed: Bool, api: Bool)
    case noPodSource
    case interrupted

    public var description: String {
        switch self {
        case let .alreadyStarted(pod, uid, ready):
            "pod \(pod) (uid \(uid)) was already \(ready ? "Ready" : "running") when the trace began: its start cannot be traced. Start the trace first, then create the pod (kubectl delete, then kubectl create or apply)."
        case let .failed(pod, reason):
            "pod \(pod) did not start: \(reason)"
        case let .timedOut(pod, node, after, seen, listed, api):
            if seen {
                "pod \(pod) was not Ready within \(DurationText.describe(after)) (--timeout): the trace gave up"
            } else if !listed {
                "could not read this node's pods (\(api ? "API server" : "kubelet /pods")) within \(DurationText.describe(after)) (--timeout): check --kubeconfig / --kubelet-url and the warnings above"
            } else {
                "no pod \(pod) appeared on node \(node) within \(DurationText.describe(after)) (--timeout): create it with kubectl, scheduled to this node (spec.nodeName \(node); --node-name if the node has another name)"
            }
        case .interrupted:
            "interrupted: nothing was started or removed (the pod is the kubelet's)"
        case .noPodSource:
            "--pod needs the pod's record: run in a cluster (service account), give --kubeconfig, or --kubelet-url for the kubelet's /pods"
        }
    }
}
