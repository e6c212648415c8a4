import Foundation
import PodstartCore

/// The kubelet's own sandbox line at default verbosity: `"No sandbox for pod can be found. Need
/// to start a new one" pod="ns/name"`, logged when a pod worker first syncs a pod without a
/// sandbox (and again when it actually creates one). The first one per pod marks when the
/// kubelet began working on the pod; the gap to containerd's RunPodSandbox is time spent on
/// admission and volume mounts.
public struct KubeletSandboxNeeded: Sendable, Hashable {
    public enum Time: Sendable, Hashable {
        /// klog text header: local time without year or zone.
        case local(GoTime.KlogLocalTime)
        /// JSON logging format `ts` (epoch milliseconds): UTC.
        case utc(KubeletTimestamp)
    }

    public var pod: String
    public var time: Time
}

public enum KubeletLineParser {
    static let sandboxNeedle = Needle("Need to start a new one")
    static let sandboxMessage = Needle("\"No sandbox for pod can be found. Need to start a new one\"")
    static let journaldPrefixEnd = Needle("]: ")
    static let tsKey = Needle("\"ts\":")

    /// nil when the line is not that message; `.failure` when it is but is damaged.
    public static func parseSandboxNeeded(_ line: UnsafeBufferPointer<UInt8>) -> Result<KubeletSandboxNeeded, StartupLineRejection>? {
        guard let at = findBytes(line, sandboxMessage.buffer) else { return nil }
        if at > 0, line[at - 1] == UInt8(ascii: ":") {
            // JSON logging format.
            guard let open = findByte(line, UInt8(ascii: "{"), from: 0),
                  let obj = try? JSON.parse(Array(line[open...])),
                  let ts = obj["ts"]?.doubleValue, ts.isFinite, ts > 0, ts < 1e14,
                  let pod = obj["pod"], let n = pod["name"]?.stringValue, let ns = pod["namespace"]?.stringValue,
                  StartupLineParser.splitPod(Array("\(ns)/\(n)".utf8)) != nil
            else { return .failure(.badJSON) }
            return .success(KubeletSandboxNeeded(pod: "\(ns)/\(n)", time: .utc(KubeletTimestamp(nanosecondsSinceEpoch: Int64((ts * 1000).rounded()) * 1000))))
        }
        // klog text: the header is at the start, or right after the journald prefix.
        var header = KlogValues.headerTime(line, from: 0)
        if header == nil, let p = findBytes(line, journaldPrefixEnd.buffer) {
            header = KlogValues.headerTime(line, from: p + journaldPrefixEnd.count)
        }
        guard let time = header else { return .failure(.badValue(key: "klog header time")) }
        let fields: [KlogValues.Pair]
        do { fields = try KlogValues.pairs(line, from: at + sandboxMessage.count) } catch {
            return .failure(.unparsableFields("\(error)"))
        }
        let pods = fields.filter { p in
            line[p.keyRange].elementsEqual("pod".utf8)
        }
        guard pods.count == 1, pods[0].quoted, let (ns, name) = StartupLineParser.splitPod(pods[0].value) else {
            return .failure(.badPod)
        }
        return .success(KubeletSandboxNeeded(pod: ns + "/" + name, time: .local(time)))
    }

    public static func parseSandboxNeeded(_ line: String) -> Result<KubeletSandboxNeeded, StartupLineRejection>? {
        var line = line
        return line.withUTF8 { parseSandboxNeeded($0) }
    }
}

extension KlogValues {
    static func headerTime(_ line: UnsafeBufferPointer<UInt8>, from: Int) -> GoTime.KlogLocalTime? {
        guard from < line.count else { return nil }
        return GoTime.parseKlogHeaderTime(UnsafeBufferPointer(rebasing: line[from...]))
    }
}
