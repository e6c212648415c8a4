import PodstartCore

/// An OCI content descriptor (image-spec `descriptor.md`): what a manifest, index or referrers
/// list says about a piece of content.
public struct OCIDescriptor: Hashable, Sendable {
    public var mediaType: String
    public var digest: String
    public var sizeBytes: Int64
    public var artifactType: String?
    public var annotations: [String: String]

    public init(mediaType: String, digest: String, sizeBytes: Int64, artifactType: String? = nil,
                annotations: [String: String] = [:]) {
        self.mediaType = mediaType
        self.digest = digest
        self.sizeBytes = sizeBytes
        self.artifactType = artifactType
        self.annotations = annotations
    }

    public func json() -> JSON {
        var fields: [(String, JSON)] = [("mediaType", .string(mediaType)), ("digest", .string(digest)),
                                        ("size", .int(sizeBytes))]
        if let artifactType { fields.append(("artifactType", .string(artifactType))) }
        if !annotations.isEmpty {
            fields.append(("annotations", .object(annotations.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        return .object(fields)
    }

    /// Reads a descriptor; nil when a required field is missing or the digest is not sha256.
    public init?(json: JSON) {
        guard let mediaType = json["mediaType"]?.stringValue, let digest = json["digest"]?.stringValue,
              ImageDigest.isValid(digest), let size = json["size"]?.int64Value, size >= 0 else { return nil }
        var annotations: [String: String] = [:]
        if case .object(let fields)? = json["annotations"] {
            for (k, v) in fields { if let s = v.stringValue { annotations[k] = s } }
        }
        self.init(mediaType: mediaType, digest: digest, sizeBytes: size,
                  artifactType: json["artifactType"]?.stringValue, annotations: annotations)
    }
}

public enum OCIMediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    /// Every manifest kind an image reference may resolve to, for `Accept`.
    public static let anyManifest = [imageManifest, imageIndex, dockerManifest, dockerManifestList]
}
