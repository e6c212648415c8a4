/// Cuts a recorded input stream down to what some pod starts need: a node's recording also holds
/// other containers' kernel records, other pods' runtime listings and so on. Kept: every input
/// about the pods (by UID, their containers, their mount namespaces and processes), pulls of
/// their images, the runtime's pull writes (download / decompress), and every tick.
public enum RecordingTrim {
    public static func keep(_ inputs: [CorrelatorInput], uids: Set<String>) -> [CorrelatorInput] {
        // first pass: the pods' containers, names, images, processes and mount namespaces
        var containers: Set<String> = [], images: Set<String> = [], names: Set<String> = []
        var pids: Set<UInt32> = [], namespaces: Set<UInt32> = []
        for input in inputs {
            switch input {
            case .pod(let uid, let ns, let name, _, _) where uids.contains(uid): names.insert("\(ns)/\(name)")
            case .containerCreated(let uid, let id, _, let image, _, _, _, _, _) where uids.contains(uid):
                containers.insert(id)
                images.insert(ImageReference.canonical(image))
            case .runtimeContainer(let uid, _, let id) where uids.contains(uid): containers.insert(id)
            default: break
            }
        }
        for input in inputs {
            switch input {
            case .containerPid(let id, let pid) where containers.contains(id): pids.insert(pid)
            case .containerMountNamespace(let id, let ns) where containers.contains(id): namespaces.insert(ns)
            default: break
            }
        }
        for input in inputs {
            if case .kernel(.exec(let e)) = input, pids.contains(e.task.pid) { namespaces.insert(e.task.mountNamespace) }
        }
        // the runtime's writes that classify as pull traffic
        var pullWrites: Set<PullWriteClassifier.WriteKey> = []
        for input in inputs {
            if case .kernel(.writeBegin(let w)) = input, w.isRuntimeProcess, PullWriteClassifier.classify(path: w.path.path) != nil {
                pullWrites.insert(.init(w))
            }
        }

        var kept: [CorrelatorInput] = []
        for input in inputs {
            switch input {
            case .pod(let uid, _, _, _, _), .scheduled(let uid, _, _), .sandbox(let uid, _, _, _, _), .ready(let uid, _, _),
                 .failed(let uid, _, _), .preexisting(let uid), .containerCreated(let uid, _, _, _, _, _, _, _, _),
                 .runtimeContainer(let uid, _, _):
                if uids.contains(uid) { kept.append(input) }
            case .pull(let uid, let image, _, _, _):
                if uid.map(uids.contains) ?? images.contains(ImageReference.canonical(image)) { kept.append(input) }
            case .containerStarted(let id, _, _, _), .containerMountNamespace(let id, _), .containerExited(let id, _, _),
                 .containerPid(let id, _):
                if containers.contains(id) { kept.append(input) }
            case .kubeletStartup(let o):
                if names.contains(o.pod) { kept.append(input) }
            case .kernel(let event):
                switch event {
                case .exec(let e): if namespaces.contains(e.task.mountNamespace) { kept.append(input) }
                case .open(let e): if namespaces.contains(e.task.mountNamespace) { kept.append(input) }
                case .readRange(let r): if namespaces.contains(r.mountNamespace) { kept.append(input) }
                case .writeBegin(let w):
                    if pullWrites.contains(.init(w)) { kept.append(input) }
                case .fork, .exit, .blockIO: break  // the correlator does not use them
                }
            case .aggregates(let openCounts, let writeTotals):
                let counts = openCounts.filter { namespaces.contains($0.mountNamespace) }
                let totals = writeTotals.filter { pullWrites.contains(.init($0)) }
                if !counts.isEmpty || !totals.isEmpty { kept.append(.aggregates(openCounts: counts, writeTotals: totals)) }
            case .tick:
                kept.append(input)
            }
        }
        return kept
    }
}
