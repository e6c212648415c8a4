// libFuzzer harness: ring-buffer records as the eBPF programs write them (bpf/podstart_events.h),
// through the decoder the reader thread runs, then into the correlator as the agent feeds it.
// The input is a run of records, each prefixed by its length (2 bytes, little endian), so one
// input can hold an exec and the opens and reads that follow it.
import KernelProbes
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKernelRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let decoder = EventDecoder()
    var correlator = Correlator(clock: WallClock(offsetNs: 1_700_000_000_000_000_000))
    var at = 0
    while at + 2 <= bytes.count {
        let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8
        at += 2
        let record = UnsafeRawBufferPointer(rebasing: bytes[at ..< min(at + length, bytes.count)])
        at += record.count
        guard case .success(let event) = decoder.decode(record) else { continue }
        let input = CorrelatorInput.kernel(event)
        let line = CorrelatorInputCodec.line(input)
        guard (try? CorrelatorInputCodec.decode(JSON.parse(Array(line.utf8)))) != nil else {
            fatalError("a decoded record does not survive recording: \(line)")
        }
        for trace in correlator.ingest(input) { _ = trace.json().rendered() }
    }
    for trace in correlator.flush() { _ = trace.json().rendered() }
    return 0
}
