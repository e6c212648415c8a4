// libFuzzer harness: containerd's CRI log lines (both generations) and the assembler that
// joins them into pulls and pods.
import KubeletSources
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzContainerdLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var assembler = PodStartAssembler()
    var start = 0
    // Several lines per input, so that start/finish pairs meet in the assembler.
    while start <= bytes.count {
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        if case .event(let e)? = ContainerdLineParser.parse(UnsafeBufferPointer(rebasing: bytes[start..<end])) {
            assembler.add(e)
        }
        start = end + 1
    }
    return 0
}
