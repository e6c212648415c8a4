// libFuzzer harness: Prometheus text exposition (the kubelet's /metrics).
import KubeletSources

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPrometheusText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = PrometheusText.parse(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self))
    return 0
}
