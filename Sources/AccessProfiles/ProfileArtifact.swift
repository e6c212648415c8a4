import Foundation
import PodstartCore

/// How an access profile is stored next to its image in an OCI registry (README "Sharing profiles
/// across a cluster"): an OCI image manifest whose
///
/// - `artifactType` and `config.mediaType` are `application/vnd.podstart.profile.v1+json` (the
///   config is a small summary: image digest, starts, files),
/// - one layer, `application/vnd.podstart.profile.layer.v1+json`, is the profile JSON itself,
/// - `subject` is the image's manifest (or index) descriptor, so registries with the referrers
///   API list it as a referrer of the image,
///
/// tagged `sha256-<image hex>.podstart` for registries without that API (the cosign-style tag
/// scheme), and listed in the referrers tag-schema index `sha256-<image hex>` that
/// distribution-spec v1.1 asks clients to maintain when the registry does not answer `OCI-Subject`.
public enum ProfileArtifact {
    public static let artifactType = "application/vnd.podstart.profile.v1+json"
    public static let configMediaType = artifactType
    public static let layerMediaType = "application/vnd.podstart.profile.layer.v1+json"
    public static let configSchema = "podstart.dev/profile-artifact/v1"
    /// Manifest annotation: how many starts the profile merges (to choose without downloading).
    public static let startsAnnotation = "dev.podstart.profile.starts"
    public static let createdAnnotation = "org.opencontainers.image.created"
    public static let titleAnnotation = "org.opencontainers.image.title"
    /// A profile is a few hundred bytes per file the image's starts read; anything this large is
    /// not one.
    public static let maximumBytes: Int64 = 256 << 20

    /// `sha256-<hex>.podstart`: the tag that points at the profile of the image `subjectDigest`.
    public static func tag(forSubject subjectDigest: String) -> String { "sha256-\(subjectDigest.dropFirst("sha256:".count)).podstart" }

    /// `sha256-<hex>`: distribution-spec v1.1's referrers tag schema for `subjectDigest`.
    public static func referrersTag(forSubject subjectDigest: String) -> String { "sha256-\(subjectDigest.dropFirst("sha256:".count))" }

    /// The config blob: what the artifact holds, readable without the profile.
    public static func config(imageDigest: String, profileSchema: String, starts: Int, files: Int) -> [UInt8] {
        Array(JSON.object([
            ("schemaVersion", .string(configSchema)),
            ("imageDigest", .string(imageDigest)),
            ("profileSchema", .string(profileSchema)),
            ("starts", .int(Int64(starts))),
            ("files", .int(Int64(files))),
        ]).rendered().utf8)
    }

    /// The artifact manifest (image-spec v1.1 "Guidelines for Artifact Usage", config form).
    public static func manifest(config: OCIDescriptor, layer: OCIDescriptor, subject: OCIDescriptor,
                                annotations: [String: String]) -> [UInt8] {
        var subjectDescriptor = subject
        subjectDescriptor.annotations = [:]
        subjectDescriptor.artifactType = nil
        return Array(JSON.object([
            ("schemaVersion", .int(2)),
            ("mediaType", .string(OCIMediaType.imageManifest)),
            ("artifactType", .string(artifactType)),
            ("config", config.json()),
            ("layers", .array([layer.json()])),
            ("subject", subjectDescriptor.json()),
            ("annotations", .object(annotations.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ]).rendered().utf8)
    }

    /// What a stored artifact manifest says, after checking it is one of podstart's profiles of
    /// `subjectDigest`.
    public struct Manifest: Sendable, Equatable {
        public var digest: String
        public var config: OCIDescriptor
        public var layer: OCIDescriptor
        public var annotations: [String: String]
    }

    public static func parseManifest(_ body: [UInt8], digest: String, subjectDigest: String) throws -> Manifest {
        func bad(_ why: String) -> OCIRegistryError {
            .malformed(what: "profile artifact \(digest)", reason: why)
        }
        let json: JSON
        do { json = try JSON.parse(body) } catch { throw bad("\(error)") }
        guard json["schemaVersion"]?.int64Value == 2 else { throw bad("schemaVersion is not 2") }
        if let mediaType = json["mediaType"]?.stringValue, mediaType != OCIMediaType.imageManifest {
            throw bad("media type \(mediaType), expected \(OCIMediaType.imageManifest)")
        }
        guard let configJSON = json["config"], let config = OCIDescriptor(json: configJSON) else { throw bad("no valid config descriptor") }
        let type = json["artifactType"]?.stringValue ?? config.mediaType
        guard type == artifactType, config.mediaType == configMediaType else {
            throw bad("artifact type \(type) is not \(artifactType): not a podstart profile")
        }
        guard let layers = json["layers"]?.arrayValue, layers.count == 1, let layer = OCIDescriptor(json: layers[0]) else {
            throw bad("expected exactly one layer descriptor")
        }
        guard layer.mediaType == layerMediaType else { throw bad("layer media type \(layer.mediaType), expected \(layerMediaType)") }
        guard layer.sizeBytes <= maximumBytes, config.sizeBytes <= 1 << 20 else { throw bad("layer or config too large") }
        if let subject = json["subject"], let s = OCIDescriptor(json: subject), s.digest != subjectDigest {
            throw bad("its subject is \(s.digest), not the image \(subjectDigest)")
        }
        var annotations: [String: String] = [:]
        if case .object(let fields)? = json["annotations"] {
            for (k, v) in fields { if let s = v.stringValue { annotations[k] = s } }
        }
        return Manifest(digest: digest, config: config, layer: layer, annotations: annotations)
    }
}
