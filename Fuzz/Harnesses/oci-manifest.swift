// libFuzzer harness: OCI documents — an image index, a manifest and its config as the agent
// reads them from containerd's content store to give each file its layer, and a manifest as
// `profile pull` reads it from a registry. The input holds up to three JSON documents separated
// by NUL bytes; each blob lookup takes the next one, whatever digest it asks for.
import AccessProfiles
import ContainerRuntime
import PodstartCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOCIManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let documents = UnsafeBufferPointer(start: data, count: size).split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
    var next = 0
    let digest = "sha256:" + String(repeating: "ab", count: 32)
    if let layers = try? ImageLayers.read(digest: digest, blob: { _ in
        defer { next += 1 }
        guard next < documents.count else { throw ImageLayers.LoadError.blobMissing(path: "input") }
        return try JSON.parse(Array(documents[next]))
    }) {
        // what the agent shows per layer
        for layer in layers.layers { _ = (layer.digest, layer.diffID, layer.sizeBytes, layer.mediaType) }
    }
    if let first = documents.first {
        _ = try? ProfileArtifact.parseManifest(Array(first), digest: digest, subjectDigest: digest)
    }
    return 0
}
