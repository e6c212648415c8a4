// libFuzzer harness: trace JSON files (`trace --output json`, /v1/pods items) through what
// `profile plan` does with them: profiles per image, a budgeted plan, its JSON.
import AccessProfiles
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTraceJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let (traces, _) = TraceFiles.parse(Array(UnsafeBufferPointer(start: data, count: size)))
    for (digest, _) in TraceFiles.images(in: traces) {
        let profile = ImageProfile(traces: traces, imageDigest: digest)
        let plan = PrefetchPlan(profile: profile, options: .init(budgetBytes: 1 << 40))
        let text = plan.json().rendered()
        guard (try? JSON.parse(text)) != nil else { fatalError("invalid plan JSON: \(text)") }
        _ = try? ImageProfile.parse(profile.json().rendered())
    }
    for t in traces { _ = t.json().rendered(); _ = t.e2eSeconds }
    return 0
}
