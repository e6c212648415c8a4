import ContainerRuntime
import Foundation
import PodstartCore

/// Lines the kubelet would log for a pod started through CRI. No kubelet runs here (its inputs are
/// covered by the real samples in ../shared/reference/), so a test that needs the kubelet's view of
/// a real start writes the line the kubelet writes, with that start's own times.
public enum KubeletLines {
    /// The "Observed pod startup duration" line of pod_startup_latency_tracker.go (klog V3,
    /// docs/kubelet-startup-line.md#field-sets): created = the start's first CRI call in whole seconds (metadata
    /// .creationTimestamp), the pull window = the PullImage call (zero times when none was made),
    /// both running times = `observedUnixNs`. E2E is created → observed; the SLO figure leaves the
    /// pull out, as the kubelet's does.
    public static func observedStartup(_ record: PodStartRecord, observedUnixNs observed: Int64) -> String {
        func go(_ ns: Int64) -> String {
            let text = Timestamp.rfc3339(unixNanoseconds: ns)  // 2026-11-24T09:27:12.602431027Z
            return text.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " +0000 UTC")
        }
        func seconds(_ ns: Int64) -> String {
            var text = String(format: "%.9f", Double(ns) / 1e9)
            while text.hasSuffix("0") { text.removeLast() }
            return text
        }
        let zero = "0001-01-01 00:00:00 +0000 UTC"
        let createdSecond = record.created.unixNs / 1_000_000_000 * 1_000_000_000
        let created = go(createdSecond).replacingOccurrences(of: ".000000000", with: "")
        let pull = record.call("PullImage")
        let pulling = pull.map { $0.end.unixNs - $0.begin.unixNs } ?? 0
        return "I1124 09:00:00.000000    2775 pod_startup_latency_tracker.go:102] \"Observed pod startup duration\" "
            + "pod=\"\(record.pod.namespace)/\(record.pod.name)\" podStartSLOduration=\(seconds(observed - createdSecond - pulling)) "
            + "podStartE2EDuration=\"\(seconds(observed - createdSecond))s\" podCreationTimestamp=\"\(created)\" "
            + "firstStartedPulling=\"\(pull.map { go($0.begin.unixNs) } ?? zero)\" "
            + "lastFinishedPulling=\"\(pull.map { go($0.end.unixNs) } ?? zero)\" observedRunningTime=\"\(go(observed))\" "
            + "watchObservedRunningTime=\"\(go(observed))\"\n"
    }

    /// Starts a kubelet log at `path` with the line a kubelet writes first, so the agent's tail has
    /// a file to follow before any start is logged.
    public static func startLog(at path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data("I1124 00:00:00.000000    1 server.go:1] \"Started kubelet\"\n".utf8))
    }

    /// Appends `line` to the log file at `path`, as the kubelet's logger would.
    public static func append(_ line: String, to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        handle.write(Data(line.utf8))
    }
}
