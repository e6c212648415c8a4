// libFuzzer harness: the kubelet's "Observed pod startup duration" line (klog text and JSON)
// and what `analyze` writes for an accepted one, which must be valid JSON.
import Foundation
import KubeletSources
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStartupLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = UnsafeBufferPointer(start: data, count: size)
    if case .success(let o)? = StartupLineParser.parse(line) {
        let json = PodStartReport(observation: o).jsonLine()
        guard (try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil else { fatalError("invalid JSON written: \(json)") }
        _ = PodStartReport(observation: o).csvLine()
    }
    _ = KubeletLineParser.parseSandboxNeeded(line)
    return 0
}
