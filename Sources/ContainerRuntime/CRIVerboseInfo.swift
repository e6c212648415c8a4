import PodstartCore

// containerd's verbose answers: with `verbose`, ContainerStatus and PodSandboxStatus carry a JSON
// document under the "info" key (pid, snapshot key, the sandbox's runtime spec), and Status one
// under "config" (the CRI plugin's configuration). Runtime data, parsed without trusting it: a
// field of the wrong type is absent, never a trap (fuzzed: Fuzz/Harnesses/cri-verbose.swift).

private func parseInfo(_ text: String?) -> JSON? {
    guard let text, let object = try? JSON.parse(text), object.objectValue != nil else { return nil }
    return object
}

private func int32(_ value: JSON?) -> Int32? {
    value?.int64Value.flatMap { Int32(exactly: $0) }
}

extension ContainerVerboseInfo {
    public init?(infoJSON: String?) {
        guard let info = parseInfo(infoJSON) else { return nil }
        self.init(sandboxID: info["sandboxID"]?.stringValue, pid: int32(info["pid"]),
                  snapshotKey: info["snapshotKey"]?.stringValue, snapshotter: info["snapshotter"]?.stringValue)
    }
}

extension SandboxVerboseInfo {
    public init?(infoJSON: String?) {
        guard let info = parseInfo(infoJSON) else { return nil }
        var netns: String?
        if let namespaces = info["runtimeSpec"]?["linux"]?["namespaces"]?.arrayValue {
            netns = namespaces.first { $0["type"]?.stringValue == "network" }?["path"]?.stringValue
        }
        self.init(pid: int32(info["pid"]), networkNamespacePath: netns,
                  snapshotKey: info["snapshotKey"]?.stringValue, snapshotter: info["snapshotter"]?.stringValue)
    }
}

extension RuntimeLayout {
    /// From the `config` document of a verbose `Status` (containerd 1.6 and 2.x write the same
    /// keys): `containerdRootDir`, and `stateDir`, the CRI plugin's own directory inside
    /// containerd's state (`<state>/io.containerd.grpc.v1.cri`).
    public init?(configJSON: String?) {
        guard let config = parseInfo(configJSON) else { return nil }
        let criState = config["stateDir"]?.stringValue
        var state: String?
        if let criState, let slash = criState.lastIndex(of: "/"), criState[criState.index(after: slash)...].hasPrefix("io.containerd.") {
            state = String(criState[..<slash])
        }
        let snapshotter = config["containerd"]?["snapshotter"]?.stringValue
        self.init(containerdRoot: config["containerdRootDir"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                  containerdState: state, snapshotter: snapshotter.flatMap { $0.isEmpty ? nil : $0 })
    }
}

