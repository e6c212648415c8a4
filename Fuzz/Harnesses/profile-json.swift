// libFuzzer harness: profile JSON (`profile export --format json`, the layer of a registry
// artifact) and OCI descriptors, then a merge and a plan of what was accepted.
import AccessProfiles
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProfileJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSON.parse(bytes) else { return 0 }
    _ = OCIDescriptor(json: json)
    for item in json["manifests"]?.arrayValue ?? [] { _ = OCIDescriptor(json: item) }
    if let profile = try? ImageProfile(json: json) {
        var merged = profile
        merged.merge(profile)
        _ = PrefetchPlan(profile: merged).json().rendered()
    }
    return 0
}
