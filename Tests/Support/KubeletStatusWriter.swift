import ContainerRuntime
import Foundation
import PodstartCore

/// The real node's pods (reference/real-cluster-1.28/api-pods-final.json, copied under
/// Tests/PodstartAgentTests/Fixtures) as a test that plays the kubelet creates them.
public enum RecordedPods {
    public static let file = "\(LocalEnvironment.repositoryRoot)/Tests/PodstartAgentTests/Fixtures/api-pods-final.json"

    /// The recorded pod `recorded` (`pod-a-reader`, `pod-b-slowready`, `pod-d-init`, …) renamed:
    /// name, UID, node; each image through `image` (given the recorded reference's last path
    /// component, `reader:latest`); no managed fields; its status as just created: Pending
    /// (`asCreated`), else the recorded final status and fields.
    public static func pod(_ recorded: String, name: String, uid: String, node: String, asCreated: Bool = true,
                           image: (String) -> String) throws -> [String: Any] {
        let list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as! [String: Any]
        guard var pod = (list["items"] as! [[String: Any]]).first(where: { ($0["metadata"] as! [String: Any])["name"] as? String == recorded }) else {
            throw TestServerError("no pod \(recorded) in \(file)")
        }
        var meta = pod["metadata"] as! [String: Any]
        meta["name"] = name
        meta["uid"] = uid
        if asCreated { meta["managedFields"] = nil }
        pod["metadata"] = meta
        var spec = pod["spec"] as! [String: Any]
        spec["nodeName"] = node
        for key in ["containers", "initContainers"] {
            guard var containers = spec[key] as? [[String: Any]] else { continue }
            for i in containers.indices {
                containers[i]["image"] = image(String((containers[i]["image"] as! String).split(separator: "/").last!))
            }
            spec[key] = containers
        }
        pod["spec"] = spec
        if asCreated { pod["status"] = ["phase": "Pending", "qosClass": "BestEffort"] }
        return pod
    }

    /// RFC 3339 to the second, as the API writes creationTimestamp and condition times.
    public static func rfc3339Second(_ unixNs: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixNs / 1_000_000_000)))
    }

    public static func condition(_ type: String, _ status: String, _ at: String) -> [String: Any] {
        ["type": type, "status": status, "lastProbeTime": NSNull(), "lastTransitionTime": at]
    }
}

/// The status writes a kubelet v1.28 makes for one pod it starts, in the recorded shapes
/// (api-pods-final.json: conditions and container statuses, times to the second), published
/// through a ``TestPodAPIServer`` as a test that plays the kubelet reaches each step: the pod
/// created (``create(at:)``), its sandbox up, each init container completed, the container
/// running, the pod Ready. Safe to call from a start's event callback.
public final class KubeletStatusWriter: @unchecked Sendable {
    private let lock = NSLock()
    private var pod: [String: Any]
    private let api: TestPodAPIServer
    private var creation = ""
    private var inits: [[String: Any]] = []
    private var initialized: String?

    /// `pod`: as ``RecordedPods/pod(_:name:uid:node:image:)`` gives it.
    public init(pod: [String: Any], api: TestPodAPIServer) {
        self.pod = pod
        self.api = api
        let spec = pod["spec"] as! [String: Any]
        inits = (spec["initContainers"] as? [[String: Any]] ?? []).map { c in
            ["name": c["name"]!, "state": ["waiting": ["reason": "PodInitializing"]], "lastState": [:] as [String: Any], "ready": false,
             "restartCount": 0, "image": c["image"]!, "imageID": "", "started": false]
        }
    }

    /// The pod as created through the API at `unixNs` (creationTimestamp: its second): ADDED,
    /// Pending. Returns when it was written.
    @discardableResult
    public func create(at unixNs: Int64 = WallClock.unixNow()) throws -> Int64 {
        try lock.withLock {
            creation = RecordedPods.rfc3339Second(unixNs)
            if inits.isEmpty { initialized = creation }
            var meta = pod["metadata"] as! [String: Any]
            meta["creationTimestamp"] = creation
            pod["metadata"] = meta
            return try api.publish("ADDED", pod)
        }
    }

    private func write(phase: String, ready: String?, containers: [[String: Any]]) throws -> Int64 {
        try lock.withLock {
            var initializedCondition = RecordedPods.condition("Initialized", initialized == nil ? "False" : "True", initialized ?? creation)
            if initialized == nil { initializedCondition["reason"] = "ContainersNotInitialized" }
            var readyCondition = RecordedPods.condition("Ready", ready == nil ? "False" : "True", ready ?? creation)
            var containersReady = RecordedPods.condition("ContainersReady", ready == nil ? "False" : "True", ready ?? creation)
            if ready == nil {
                readyCondition["reason"] = "ContainersNotReady"
                containersReady["reason"] = "ContainersNotReady"
            }
            var status: [String: Any] = [
                "phase": phase, "qosClass": "BestEffort", "startTime": creation, "hostIP": "10.254.254.1",
                "conditions": [initializedCondition, readyCondition, containersReady, RecordedPods.condition("PodScheduled", "True", creation)],
                "containerStatuses": containers,
            ]
            if !inits.isEmpty { status["initContainerStatuses"] = inits }
            pod["status"] = status
            return try api.publish("MODIFIED", pod)
        }
    }

    private func waiting(_ reason: String) -> [[String: Any]] {
        let spec = lock.withLock { pod["spec"] as! [String: Any] }
        return (spec["containers"] as! [[String: Any]]).map { c in
            ["name": c["name"]!, "state": ["waiting": ["reason": reason]], "lastState": [:] as [String: Any], "ready": false,
             "restartCount": 0, "image": c["image"]!, "imageID": "", "started": false]
        }
    }

    /// The first write once the sandbox is up: scheduled, not initialized (with init containers)
    /// or not ready.
    public func sandboxUp() throws {
        let initializing = lock.withLock { !inits.isEmpty }
        _ = try write(phase: "Pending", ready: nil, containers: waiting(initializing ? "PodInitializing" : "ContainerCreating"))
    }

    /// An init container completed (exit code 0) with the runtime's start and finish times; the
    /// last one makes the pod Initialized.
    public func initExited(name: String, containerID: String, startedAtUnixNs: Int64, finishedAtUnixNs: Int64) throws {
        lock.withLock {
            guard let i = inits.firstIndex(where: { $0["name"] as? String == name }) else { return }
            inits[i]["state"] = ["terminated": ["exitCode": 0, "reason": "Completed", "startedAt": RecordedPods.rfc3339Second(startedAtUnixNs),
                                                "finishedAt": RecordedPods.rfc3339Second(finishedAtUnixNs),
                                                "containerID": "containerd://\(containerID)"]]
            inits[i]["ready"] = true
            inits[i]["containerID"] = "containerd://\(containerID)"
            if i == inits.count - 1 { initialized = RecordedPods.rfc3339Second(WallClock.unixNow()) }
        }
        _ = try write(phase: "Pending", ready: nil, containers: waiting("PodInitializing"))
    }

    /// The (one) container runs; `ready`: and the pod is Ready, in the same write (a pod without
    /// readiness probes: pod-a's recorded patch), its transition time this second. Returns when
    /// it was written: with `ready`, the instant of the kubelet's Ready status write.
    public func running(containerID: String, startedAtUnixNs: Int64, imageID: String, ready: Bool) throws -> Int64 {
        var c = waiting("")[0]
        c["state"] = ["running": ["startedAt": RecordedPods.rfc3339Second(startedAtUnixNs)]]
        c["ready"] = ready
        c["started"] = true
        c["imageID"] = imageID
        c["containerID"] = "containerd://\(containerID)"
        return try write(phase: "Running", ready: ready ? RecordedPods.rfc3339Second(WallClock.unixNow()) : nil, containers: [c])
    }

    /// The pod deleted (after its start, as a test cleans up).
    public func delete() throws {
        try lock.withLock { _ = try api.publish("DELETED", pod) }
    }
}

extension KubeletStatusWriter {
    /// Starts the pod through the real runtime at `endpoint` as the kubelet would (`options`: its
    /// sandbox, init containers and container; the identity the pod's), writing the status at each
    /// step: sandbox up, each init container completed, running (`readinessProbe`: as soon as the
    /// container runs, not Ready), then Ready once the start's readiness check passed. `whileReady`
    /// runs while the pod still runs, with the record and the instant Ready was written (Unix ns).
    /// The pod must have been created (``create(at:)``). Failed status writes fail the start.
    public func start(_ options: PodStartOptions, endpoint: CRIEndpoint, readinessProbe: Bool,
                      whileReady: (PodStartRecord, Int64) async throws -> Void = { _, _ in }) async throws -> (record: PodStartRecord, readyWritten: Int64) {
        let failures = FailedWrites()
        var readyWritten: Int64 = 0
        let record = try await PodStarter(endpoint: endpoint).run(options, onEvent: { [self] event in
            do {
                switch event {
                case .sandboxReady: try sandboxUp()
                case let .initContainerExited(name, id, started, finished):
                    try initExited(name: name, containerID: id, startedAtUnixNs: started, finishedAtUnixNs: finished)
                case let .containerRunning(id, _, _) where readinessProbe:
                    // the kubelet sees it run (its PLEG) before the probe passes: running, not Ready
                    _ = try running(containerID: id, startedAtUnixNs: WallClock.unixNow(), imageID: "", ready: false)
                default: break
                }
            } catch { failures.add("\(error)") }
        }, whileReady: { record in
            if let failure = failures.first { throw TestServerError("status write failed: \(failure)") }
            // the probe's success (the start's own check passed): Ready written
            let imageID = record.imageDigest.map { "\(record.image.split(separator: ":").dropLast().joined(separator: ":"))@\($0)" } ?? ""
            readyWritten = try running(containerID: record.containerID, startedAtUnixNs: record.runtimeStartedAtUnixNs,
                                       imageID: imageID, ready: true)
            try await whileReady(record, readyWritten)
        })
        return (record, readyWritten)
    }

    private final class FailedWrites: @unchecked Sendable {
        private let lock = NSLock()
        private var all: [String] = []
        func add(_ failure: String) { lock.withLock { all.append(failure) } }
        var first: String? { lock.withLock { all.first } }
    }
}
