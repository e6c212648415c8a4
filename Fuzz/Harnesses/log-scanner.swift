// libFuzzer harness: a whole kubelet/containerd log as `analyze` reads it (klog, containerd and
// kubelet sandbox lines mixed, any split into reads), then the summary, which must be valid JSON.
import Foundation
import KubeletSources
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLogScanner(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var summary = StartupSummary()
    let scanner = KubeletLogScanner(chunkSize: 4096) { report in
        summary.add(report)
        let json = report.jsonLine()
        guard (try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil else { fatalError("invalid JSON written: \(json)") }
    }
    // Split where the first byte says, so that lines cross reads.
    let cut = size > 0 ? Int(bytes[0]) % (size + 1) : 0
    scanner.feed(UnsafeBufferPointer(rebasing: bytes[..<cut]))
    scanner.feed(UnsafeBufferPointer(rebasing: bytes[cut...]))
    scanner.finish()
    let json = summary.jsonLine(counters: scanner.counters)
    guard (try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil else { fatalError("invalid summary JSON: \(json)") }
    return 0
}
