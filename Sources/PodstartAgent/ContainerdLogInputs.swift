import KubeletSources
import PodstartCore
import Synchronization

/// containerd's CRI log lines (docs/inputs.md#containerd-log-lines) as correlator inputs: the exact begin and end of
/// RunPodSandbox, PullImage, CreateContainer and StartContainer, as containerd logged them.
public final class ContainerdLogInputs: Sendable {
    private struct Pending {
        var sandboxBegin: [String: Int64] = [:]  // pod uid
        var sandboxPod: [String: String] = [:]  // sandbox id → pod uid
        var pullBegin: [String: Int64] = [:]
        var createBegin: [String: Int64] = [:]  // "sandbox/name"
        var startBegin: [String: Int64] = [:]
    }
    private let pending = Mutex(Pending())

    public init() {}

    /// The inputs one line completes; nil when the line is a CRI line that does not parse (a
    /// source error), empty when it completes nothing.
    public func inputs(line: [UInt8]) -> [CorrelatorInput]? {
        if case .success(let inputs) = outcome(line: line) { return inputs }
        return nil
    }

    /// The inputs one line completes, or why a CRI line could not be read.
    public func outcome(line: [UInt8]) -> Result<[CorrelatorInput], Unreadable> {
        guard let outcome = ContainerdLineParser.parse(String(decoding: line, as: UTF8.self)) else { return .success([]) }
        switch outcome {
        case .event(let event): return .success(pending.withLock { Self.inputs(event, &$0) })
        case .malformed(let reason): return .failure(Unreadable(reason: reason))
        }
    }

    public struct Unreadable: Error, Equatable { public var reason: String }

    private static func inputs(_ event: ContainerdCRIEvent, _ p: inout Pending) -> [CorrelatorInput] {
        let t = event.time.nanosecondsSinceEpoch
        switch event.kind {
        case .sandboxRequested(_, let uid, _):
            p.sandboxBegin[uid] = t
        case .sandboxReady(_, let uid, let sandboxID):
            p.sandboxPod[sandboxID] = uid
            if let begin = p.sandboxBegin.removeValue(forKey: uid) {
                return [.sandbox(SandboxCreation(uid: uid, sandboxID: sandboxID, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        case .pullStarted(let image):
            p.pullBegin[image] = t
        case .pullFinished(let image, _):
            if let begin = p.pullBegin.removeValue(forKey: image) {
                return [.pull(ImagePull(uid: nil, image: image, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        case .containerCreateRequested(let sandboxID, let name):
            p.createBegin["\(sandboxID)/\(name)"] = t
        case .containerCreated(let sandboxID, let name, let containerID):
            if let begin = p.createBegin.removeValue(forKey: "\(sandboxID)/\(name)"), let uid = p.sandboxPod[sandboxID] {
                return [.containerCreated(ContainerCreation(uid: uid, containerID: containerID, name: name, image: "", imageDigest: nil,
                                          isInit: false, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        case .containerStartRequested(let containerID):
            p.startBegin[containerID] = t
        case .containerStarted(let containerID):
            if let begin = p.startBegin.removeValue(forKey: containerID) {
                return [.containerStarted(ContainerStart(containerID: containerID, beginUnixNs: begin, endUnixNs: t, source: .containerd))]
            }
        default:
            break
        }
        if p.sandboxBegin.count + p.pullBegin.count + p.createBegin.count + p.startBegin.count > 10_000 {
            // requests whose answer never came (failed calls): forget them rather than grow
            p.sandboxBegin.removeAll(); p.pullBegin.removeAll(); p.createBegin.removeAll(); p.startBegin.removeAll()
        }
        if p.sandboxPod.count > 10_000 { p.sandboxPod.removeAll() }
        return []
    }

    /// As a ``LogFileSource`` parser: a CRI line that does not parse is a source error.
    public func parse(line: [UInt8], context: SourceContext) -> [CorrelatorInput] {
        switch outcome(line: line) {
        case .success(let inputs): return inputs
        case .failure(let why):
            context.malformed(reason: why.reason, sample: String(decoding: line, as: UTF8.self))
            return []
        }
    }
}
