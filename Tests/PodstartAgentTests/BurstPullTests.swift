import Foundation
import PodstartAgent
import PodstartCore
import Testing

/// The real node's burst (ten small-files pods created at once, reference/real-cluster-1.28):
/// containerd's and the kubelet's logs merged in time order, as `journalctl -u kubelet -u
/// containerd` gives them, through the agent's adapters into the correlator; pods named
/// (api-pods-final.json) and containers given the images of pod-specs.json, as the CRI listing
/// tells them. Each pull belongs to
/// the pod that asked for it (issue #15: the agent gave burst pods 2–3 × their own pull).
@Suite struct BurstPullTests {
    static let burst = (1...10).map { String(format: "pod-e-burst-%02d", $0) }

    /// Container name → image, from the pods as they were POSTed.
    static func images() throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Recordings.directory)/pod-specs.json"))
        let pods = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        var images: [String: String] = [:]
        for pod in pods.values {
            let spec = pod["spec"] as? [String: Any] ?? [:]
            for c in (spec["containers"] as? [[String: Any]] ?? []) + (spec["initContainers"] as? [[String: Any]] ?? []) {
                images[c["name"] as? String ?? ""] = c["image"] as? String
            }
        }
        return images
    }

    /// Pod UID → name, from the API server's pods at the end (what the CRI listing tells the agent).
    static func names() throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Recordings.directory)/api-pods-final.json"))
        let list = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var names: [String: String] = [:]
        for pod in list["items"] as? [[String: Any]] ?? [] {
            let metadata = pod["metadata"] as? [String: Any] ?? [:]
            if let uid = metadata["uid"] as? String, let name = metadata["name"] as? String { names[uid] = name }
        }
        return names
    }

    /// The replay; `kubelet: false` leaves the kubelet's lines out (the runtime alone, ready when running).
    static func replay(kubelet: Bool) throws -> (traces: [String: PodStartTrace], pullReturns: [Int64], windows: [String: Interval]) {
        let images = try images()
        let names = try names()
        let containerd = ContainerdLogInputs()
        var config = Correlator.Configuration()
        config.readyWhenRunning = !kubelet
        var correlator = Correlator(configuration: config, clock: WallClock(offsetNs: 0))
        var traces: [PodStartTrace] = []
        var pullReturns: [Int64] = []
        var windows: [String: Interval] = [:]
        for line in try Recordings.lines("node-merged-kubelet-containerd.log") {
            var inputs: [CorrelatorInput]
            if line.starts(with: Array("time=".utf8)) {
                inputs = try #require(containerd.inputs(line: line))
            } else {
                guard kubelet else { continue }
                inputs = try #require(KubeletLogInputs.inputs(line: line))
            }
            for input in inputs {
                switch input {
                case .containerCreated(var c):
                    c.image = images[c.name] ?? ""
                    traces += correlator.ingest(.containerCreated(c))
                case .sandbox(let sandbox):
                    // the CRI listing names the pod as its sandbox appears
                    traces += correlator.ingest(.pod(PodSighting(uid: sandbox.uid, namespace: "default", name: names[sandbox.uid] ?? "",
                                                                 createdUnixNs: nil, source: .cri)))
                    traces += correlator.ingest(input)
                case .pull(let p):
                    pullReturns.append(p.endUnixNs)
                    traces += correlator.ingest(input)
                case .kubeletStartup(let o):
                    if let first = o.firstStartedPulling, let last = o.lastFinishedPulling {
                        windows[o.name] = Interval(start: first.nanosecondsSinceEpoch, end: last.nanosecondsSinceEpoch)
                    }
                    traces += correlator.ingest(input)
                default:
                    traces += correlator.ingest(input)
                }
            }
        }
        traces += correlator.flush()
        return (Dictionary(traces.map { ($0.pod.name, $0) }) { a, _ in a }, pullReturns, windows)
    }

    /// With the kubelet's log, each burst pod's pull is inside the kubelet's own pull window for it
    /// (its wait in the kubelet's serial pull queue, then its PullImage), never another pod's
    /// PullImage before or after.
    @Test func withTheKubeletsLogEachBurstPodsPullIsItsOwn() throws {
        let (traces, _, windows) = try Self.replay(kubelet: true)
        for name in Self.burst {
            let trace = try #require(traces[name], "\(name) not recorded")
            let window = try #require(windows[name])
            let pulls = trace.phases.filter { $0.name == .pull }
            #expect(!pulls.isEmpty)
            for p in pulls {
                #expect(p.start >= window.start && p.end <= window.end,
                        "\(name): pull \(p.start)…\(p.end) (\(p.source)) outside the kubelet's \(window.start)…\(window.end)")
            }
            #expect(pulls.reduce(0) { $0 + $1.nanoseconds } <= window.duration, "\(name): \(pulls)")
        }
    }

    /// From containerd's log alone, each burst pod gets one PullImage, the one that returned last
    /// before it created its container, and no two pods the same one.
    @Test func fromTheRuntimesLogAloneEachPullGoesToOnePod() throws {
        let (traces, pullReturns, _) = try Self.replay(kubelet: false)
        var owners: [Int64: String] = [:]
        for name in Self.burst {
            let trace = try #require(traces[name], "\(name) not recorded")
            let pulls = trace.phases.filter { $0.name == .pull }
            #expect(pulls.count == 1, "\(name): \(pulls)")
            let end = try #require(pulls.last?.end)
            #expect(pullReturns.contains(end), "\(name): its pull does not end as a PullImage returned")
            if let other = owners[end] { Issue.record("\(name) and \(other) were both given the pull ending \(end)") }
            owners[end] = name
        }
    }
}
