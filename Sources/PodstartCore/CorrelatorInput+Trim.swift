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
            case .pod(let p) where uids.contains(p.uid): names.insert("\(p.namespace)/\(p.name)")
            case .podStatus(let p) where uids.contains(p.uid): names.insert("\(p.namespace)/\(p.name)")
            case .containerCreated(let c) where uids.contains(c.uid):
                containers.insert(c.containerID)
                images.insert(ImageReference.canonical(c.image))
            case .runtimeContainer(let r) where uids.contains(r.uid): containers.insert(r.containerID)
            default: break
            }
        }
        for input in inputs {
            switch input {
            case .containerPid(let p) where containers.contains(p.containerID): pids.insert(p.pid)
            case .containerMountNamespace(let m) where containers.contains(m.containerID): namespaces.insert(m.mountNamespace)
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
            case .pull(let p):
                if p.uid.map(uids.contains) ?? images.contains(ImageReference.canonical(p.image)) { kept.append(input) }
            case .pod, .scheduled, .podStatus, .sandbox, .ready, .failed, .preexisting, .containerCreated, .runtimeContainer:
                if let uid = input.podUID, uids.contains(uid) { kept.append(input) }
            case .containerStarted, .containerMountNamespace, .containerExited, .containerPid:
                if let id = input.containerID, containers.contains(id) { kept.append(input) }
            case .kubeletStartup(let o):
                if names.contains(o.pod) { kept.append(input) }
            case .kernel(let event):
                switch event {
                case .exec(let e): if namespaces.contains(e.task.mountNamespace) { kept.append(input) }
                case .open(let e): if namespaces.contains(e.task.mountNamespace) { kept.append(input) }
                case .readRange(let r): if namespaces.contains(r.mountNamespace) { kept.append(input) }
                case .fuseRequest(let f): if namespaces.contains(f.task.mountNamespace) { kept.append(input) }
                case .writeBegin(let w):
                    if pullWrites.contains(.init(w)) { kept.append(input) }
                case .fork, .exit, .blockIO: break  // the correlator does not use them
                }
            case .aggregates(let a):
                let counts = a.openCounts.filter { namespaces.contains($0.mountNamespace) }
                let totals = a.writeTotals.filter { pullWrites.contains(.init($0)) }
                if !counts.isEmpty || !totals.isEmpty { kept.append(.aggregates(KernelAggregates(openCounts: counts, writeTotals: totals))) }
            case .tick, .clockOffset:
                kept.append(input)
            }
        }
        return kept
    }
}
