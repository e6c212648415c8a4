import Foundation
import PodstartCore

/// The subset of core/v1 Pod, Event and their lists and watch events that podstart reads
/// (docs/inputs.md#pod-records, #events). Unknown fields are ignored; timestamps are RFC 3339 strings.
public enum KubeAPI {
    public struct ObjectMeta: Decodable, Sendable, Hashable {
        public var name: String
        public var namespace: String?
        public var uid: String?
        public var creationTimestamp: String?
        public var resourceVersion: String?
    }

    public struct ListMeta: Decodable, Sendable, Hashable {
        public var resourceVersion: String?
    }

    public struct Container: Decodable, Sendable, Hashable {
        public var name: String
        public var image: String?
        /// Present when the container has a readiness probe (its settings are not read).
        public var readinessProbe: Probe?
    }

    /// A probe's presence; podstart reads none of its settings.
    public struct Probe: Decodable, Sendable, Hashable {
        public var periodSeconds: Int?
        public var initialDelaySeconds: Int?
    }

    public struct PodSpec: Decodable, Sendable, Hashable {
        public var nodeName: String?
        public var containers: [Container]?
        public var initContainers: [Container]?
    }

    public struct Condition: Decodable, Sendable, Hashable {
        public var type: String
        public var status: String
        public var lastTransitionTime: String?
        public var reason: String?
    }

    public struct ContainerState: Decodable, Sendable, Hashable {
        public struct Running: Decodable, Sendable, Hashable { public var startedAt: String? }
        public struct Terminated: Decodable, Sendable, Hashable {
            public var startedAt: String?
            public var finishedAt: String?
            public var exitCode: Int?
            public var reason: String?
        }
        public struct Waiting: Decodable, Sendable, Hashable {
            public var reason: String?
            public var message: String?
        }
        public var running: Running?
        public var terminated: Terminated?
        public var waiting: Waiting?
    }

    public struct ContainerStatus: Decodable, Sendable, Hashable {
        public var name: String
        public var image: String?
        public var imageID: String?
        public var containerID: String?
        public var ready: Bool?
        public var started: Bool?
        public var restartCount: Int?
        public var state: ContainerState?
    }

    public struct PodStatus: Decodable, Sendable, Hashable {
        public var phase: String?
        public var startTime: String?
        public var conditions: [Condition]?
        public var containerStatuses: [ContainerStatus]?
        public var initContainerStatuses: [ContainerStatus]?
    }

    public struct Pod: Decodable, Sendable, Hashable {
        public var metadata: ObjectMeta
        public var spec: PodSpec?
        public var status: PodStatus?
    }

    public struct PodList: Decodable, Sendable {
        public var metadata: ListMeta?
        public var items: [Pod]
    }

    public struct ObjectReference: Decodable, Sendable, Hashable {
        public var kind: String?
        public var namespace: String?
        public var name: String?
        public var uid: String?
        public var fieldPath: String?
    }

    public struct EventSource: Decodable, Sendable, Hashable {
        public var component: String?
        public var host: String?
    }

    public struct Event: Decodable, Sendable, Hashable {
        public var metadata: ObjectMeta
        public var involvedObject: ObjectReference
        public var reason: String?
        public var message: String?
        public var source: EventSource?
        public var firstTimestamp: String?
        public var lastTimestamp: String?
        public var eventTime: String?
        public var count: Int?
        public var type: String?
        public var reportingComponent: String?

        /// `eventTime` when set (events.k8s.io writers), else `firstTimestamp` — as
        /// clusterloader2 does.
        public var time: KubeletTimestamp? {
            eventTime.flatMap(GoTime.parseRFC3339) ?? firstTimestamp.flatMap(GoTime.parseRFC3339)
        }

        /// The container named by `involvedObject.fieldPath` (`spec.containers{web}`), and
        /// whether it is an init container.
        public var container: (name: String, isInit: Bool)? {
            guard let f = involvedObject.fieldPath, let open = f.firstIndex(of: "{"), f.hasSuffix("}") else { return nil }
            let name = String(f[f.index(after: open)..<f.index(before: f.endIndex)])
            return (name, f.hasPrefix("spec.initContainers"))
        }
    }

    public struct EventList: Decodable, Sendable {
        public var metadata: ListMeta?
        public var items: [Event]
    }

    /// One line of a `?watch=true` stream.
    public struct WatchEvent<Object: Decodable & Sendable>: Decodable, Sendable {
        public var type: String
        public var object: Object
    }

    /// A watch `ERROR` event's object (a metav1.Status), e.g. 410 Gone when the resource
    /// version is too old.
    public struct Status: Decodable, Sendable {
        public var code: Int?
        public var reason: String?
        public var message: String?
    }
}

/// What the kubelet's `Pulled` event says about one image pull.
public struct PulledEvent: Sendable, Hashable {
    public var container: String?
    public var image: String
    /// The CRI pull itself (`in <d>`), nanoseconds, millisecond precision; nil when cached.
    public var pullNanoseconds: Int64?
    /// Including waiting behind other pulls (`(<d> including waiting)`), when logged.
    public var includingWaitingNanoseconds: Int64?
    /// `Image size: <n> bytes` (1.30+).
    public var sizeBytes: Int64?
    /// "already present on machine".
    public var cached: Bool

    public init(container: String? = nil, image: String, pullNanoseconds: Int64? = nil,
                includingWaitingNanoseconds: Int64? = nil, sizeBytes: Int64? = nil, cached: Bool) {
        self.container = container
        self.image = image
        self.pullNanoseconds = pullNanoseconds
        self.includingWaitingNanoseconds = includingWaitingNanoseconds
        self.sizeBytes = sizeBytes
        self.cached = cached
    }

    /// Parses the message of a `Pulled` event (every wording in docs/inputs.md#events).
    public static func parse(message: String, container: String? = nil) -> PulledEvent? {
        if message.hasPrefix("Container image \""), message.contains("\" already present on machine") {
            let rest = message.dropFirst("Container image \"".count)
            guard let q = rest.firstIndex(of: "\"") else { return nil }
            return PulledEvent(container: container, image: String(rest[..<q]), cached: true)
        }
        guard message.hasPrefix("Successfully pulled image \"") else { return nil }
        let rest = message.dropFirst("Successfully pulled image \"".count)
        guard let q = rest.firstIndex(of: "\"") else { return nil }
        let image = String(rest[..<q])
        var tail = rest[rest.index(after: q)...]
        guard tail.hasPrefix(" in ") else { return nil }
        tail = tail.dropFirst(4)
        var durText = tail[..<(tail.firstIndex(of: " ") ?? tail.endIndex)]
        if durText.hasSuffix(".") { durText = durText.dropLast() }
        guard let pull = GoTime.parseDuration(String(durText)) else { return nil }
        var ev = PulledEvent(container: container, image: image, pullNanoseconds: pull, cached: false)
        if let open = tail.range(of: " ("), let close = tail.range(of: " including waiting)") {
            ev.includingWaitingNanoseconds = GoTime.parseDuration(String(tail[open.upperBound..<close.lowerBound]))
        }
        if let r = tail.range(of: "Image size: "), let e = tail[r.upperBound...].range(of: " bytes") {
            ev.sizeBytes = Int64(tail[r.upperBound..<e.lowerBound])
        }
        return ev
    }
}

/// One pod's start as the API server (or the kubelet's /pods) describes it: the timestamps of
/// its conditions and containers and the kubelet's events. Gives the `schedule` phase
/// (created → scheduled) and the `probe` phase (all containers running → Ready) of DESIGN.md.
public struct PodStatusTimeline: Sendable, Hashable {
    public struct InitContainerRun: Sendable, Hashable {
        public var name: String
        public var started: KubeletTimestamp?
        public var finished: KubeletTimestamp?
    }

    public var pod: String
    public var uid: String?
    public var nodeName: String?
    public var created: KubeletTimestamp?
    /// PodScheduled=True's transition, else the scheduler's `Scheduled` event.
    public var scheduled: KubeletTimestamp?
    /// PodReadyToStartContainers (or its 1.25–1.27 name PodHasNetwork).
    public var readyToStartContainers: KubeletTimestamp?
    public var initialized: KubeletTimestamp?
    public var containersReady: KubeletTimestamp?
    public var ready: KubeletTimestamp?
    /// When the last container started running (max `state.running.startedAt`); nil until all run.
    public var allContainersRunning: KubeletTimestamp?
    public var initContainers: [InitContainerRun] = []
    public var pulls: [PulledEvent] = []
    public var failedPulls = 0

    public init(pod p: KubeAPI.Pod, events: [KubeAPI.Event] = []) {
        let ns = p.metadata.namespace ?? "default"
        pod = ns + "/" + p.metadata.name
        uid = p.metadata.uid
        nodeName = p.spec?.nodeName
        created = p.metadata.creationTimestamp.flatMap(GoTime.parseRFC3339)
        func cond(_ types: String...) -> KubeletTimestamp? {
            for t in types {
                if let c = p.status?.conditions?.first(where: { $0.type == t }), c.status == "True" {
                    return c.lastTransitionTime.flatMap(GoTime.parseRFC3339)
                }
            }
            return nil
        }
        scheduled = cond("PodScheduled")
        readyToStartContainers = cond("PodReadyToStartContainers", "PodHasNetwork")
        initialized = cond("Initialized")
        containersReady = cond("ContainersReady")
        ready = cond("Ready")
        let statuses = p.status?.containerStatuses ?? []
        let starts = statuses.map { $0.state?.running?.startedAt.flatMap(GoTime.parseRFC3339) }
        if !starts.isEmpty, starts.allSatisfy({ $0 != nil }) { allContainersRunning = starts.compactMap { $0 }.max() }
        initContainers = (p.status?.initContainerStatuses ?? []).map { s in
            let t = s.state?.terminated
            return InitContainerRun(name: s.name,
                                    started: (t?.startedAt ?? s.state?.running?.startedAt).flatMap(GoTime.parseRFC3339),
                                    finished: t?.finishedAt.flatMap(GoTime.parseRFC3339))
        }
        for e in events where e.involvedObject.name == p.metadata.name
            && (e.involvedObject.uid == nil || p.metadata.uid == nil || e.involvedObject.uid == p.metadata.uid) {
            switch e.reason {
            case "Scheduled":
                if scheduled == nil { scheduled = e.time }
            case "Pulled":
                if let pulled = PulledEvent.parse(message: e.message ?? "", container: e.container?.name) { pulls.append(pulled) }
            case "Failed":
                if e.message?.hasPrefix("Failed to pull image") == true { failedPulls += e.count ?? 1 }
            default:
                break
            }
        }
    }

    /// created → scheduled, nanoseconds (second precision from the API).
    public var scheduleNanoseconds: Int64? {
        guard let c = created, let s = scheduled else { return nil }
        return s.goSub(c)
    }

    /// All containers running → Ready, nanoseconds: readiness probes and their delays.
    public var probeNanoseconds: Int64? {
        guard let r = allContainersRunning, let ready else { return nil }
        return ready.goSub(r)
    }

    /// Sum of init container run times (finishedAt − startedAt), nanoseconds.
    public var initNanoseconds: Int64? {
        let runs = initContainers.compactMap { r -> Int64? in
            guard let s = r.started, let f = r.finished else { return nil }
            return f.goSub(s)
        }
        return runs.isEmpty ? nil : runs.reduce(0, +)
    }
}

extension PodStatusReport {
    /// The pod's record as the correlator reads it. `observedUnixNs`: when it reached the agent.
    public init?(pod p: KubeAPI.Pod, observedUnixNs: Int64, fromInitialList: Bool = false, source: PhaseSource = .podStatus) {
        guard let uid = p.metadata.uid else { return nil }
        func time(_ text: String?) -> Int64? { text.flatMap(GoTime.parseRFC3339)?.nanosecondsSinceEpoch }
        func condition(_ type: String) -> Int64? {
            guard let c = p.status?.conditions?.first(where: { $0.type == type }), c.status == "True" else { return nil }
            return time(c.lastTransitionTime)
        }
        let statuses = p.status?.containerStatuses ?? []
        let starts = statuses.map { time($0.state?.running?.startedAt) }
        let expected = p.spec?.containers?.count ?? statuses.count
        let allRunning = !starts.isEmpty && starts.count >= expected && starts.allSatisfy { $0 != nil } ? starts.compactMap { $0 }.max() : nil
        self.init(uid: uid, namespace: p.metadata.namespace ?? "default", name: p.metadata.name,
                  createdUnixNs: time(p.metadata.creationTimestamp), scheduledUnixNs: condition("PodScheduled"),
                  hasReadinessProbe: p.spec?.containers.map { $0.contains { $0.readinessProbe != nil } },
                  initContainers: (p.status?.initContainerStatuses ?? []).map { s in
                      let t = s.state?.terminated
                      return InitContainerRun(name: s.name, startedUnixNs: time(t?.startedAt ?? s.state?.running?.startedAt),
                                              finishedUnixNs: time(t?.finishedAt))
                  },
                  allRunningUnixNs: allRunning, readyUnixNs: condition("Ready"), observedUnixNs: observedUnixNs,
                  fromInitialList: fromInitialList, source: source)
    }
}
