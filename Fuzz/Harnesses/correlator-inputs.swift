// libFuzzer harness: a recorded input stream (`agent --record-inputs`, the correlator bench's
// fixtures) decoded and run through the correlator, every timeline it completes rendered as
// trace JSON. Recordings are data from outside (a user's file, a bug report), and their numbers
// reach the correlator's time arithmetic: any trap here is one the agent could hit too.
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCorrelatorInputs(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let recording = CorrelatorInputCodec.read(text)
    var correlator = Correlator(clock: recording.clock ?? WallClock(offsetNs: 0))
    var traces: [PodStartTrace] = []
    for input in recording.inputs {
        traces += correlator.ingest(input)
        // what the agent writes back when recording must read again as the same input
        let line = CorrelatorInputCodec.line(input)
        guard let back = try? CorrelatorInputCodec.decode(JSON.parse(Array(line.utf8))) else {
            fatalError("an encoded input does not decode: \(line)")
        }
        guard CorrelatorInputCodec.line(back) == line else { fatalError("input changed in a round trip: \(line)") }
    }
    traces += correlator.flush()
    for trace in traces {
        let json = trace.json().rendered()
        guard (try? JSON.parse(Array(json.utf8))) != nil else { fatalError("invalid trace JSON: \(json)") }
    }
    return 0
}
