// libFuzzer harness: containerd's verbose CRI answers — the "info" JSON of ContainerStatus and
// PodSandboxStatus (pid, snapshot key, the sandbox's runtime spec and netns) and the "config" JSON
// of Status (containerd's root and state, the snapshotter) — as the agent and `trace` read them.
import ContainerRuntime
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCRIVerbose(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let container = ContainerVerboseInfo(infoJSON: text)
    let sandbox = SandboxVerboseInfo(infoJSON: text)
    _ = RuntimeLayout(configJSON: text)
    // a pid is taken only as the number it is, never cut to fit
    if let pid = container?.pid ?? sandbox?.pid, let json = try? JSON.parse(Array(text.utf8)) {
        guard json["pid"]?.int64Value == Int64(pid) else { fatalError("pid \(pid) is not the document's \(json["pid"]?.rendered() ?? "nil")") }
    }
    return 0
}
