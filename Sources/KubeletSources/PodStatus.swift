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
