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

/// A profile artifact as found in a registry.
public struct StoredProfileArtifact: Sendable {
    public enum FoundBy: String, Sendable { case referrers, tag }
    public var image: ImageReference
    /// The image's manifest (or index) descriptor: the artifact's subject.
    public var subject: OCIDescriptor
    public var manifest: ProfileArtifact.Manifest
    /// The profile JSON (the layer's bytes, digest-checked).
    public var profile: [UInt8]
    public var foundBy: FoundBy
}

/// Reads and writes profile artifacts in one registry, on bytes: merging is the caller's
/// (`ProfileSharing`), so this part is tested against any profile content.
public struct ProfileRegistry: Sendable {
    public let client: OCIRegistryClient

    public init(client: OCIRegistryClient) { self.client = client }

    /// The image's manifest descriptor (HEAD would do, but some registries omit the digest header).
    public func resolve(_ image: ImageReference) async throws -> OCIDescriptor {
        guard let (descriptor, _) = try await client.manifest(repository: image.repository, reference: image.reference) else {
            throw OCIRegistryError.notFound(what: image.digest != nil ? "image manifest \(image.repository)@\(image.reference) (unknown digest)"
                                                : "image \(image.repository):\(image.reference) (unknown tag or repository)",
                                            host: client.host)
        }
        return descriptor
    }

    /// The current profile of `subject`: through the referrers API where the registry has it
    /// (the newest podstart artifact by its created annotation), else through the tag.
    public func fetch(image: ImageReference, subject: OCIDescriptor) async throws -> StoredProfileArtifact? {
        let repository = image.repository
        var candidates: [(String, StoredProfileArtifact.FoundBy)] = []
        if let referrers = try await client.referrers(repository: repository, digest: subject.digest,
                                                      artifactType: ProfileArtifact.artifactType),
           let newest = referrers.max(by: { ($0.annotations[ProfileArtifact.createdAnnotation] ?? "")
                                          < ($1.annotations[ProfileArtifact.createdAnnotation] ?? "") }) {
            candidates.append((newest.digest, .referrers))
        }
        candidates.append((ProfileArtifact.tag(forSubject: subject.digest), .tag))
        for (reference, foundBy) in candidates {
            guard let (descriptor, body) = try await client.manifest(repository: repository, reference: reference,
                                                                     accept: [OCIMediaType.imageManifest]) else { continue }
            let manifest = try ProfileArtifact.parseManifest(body, digest: descriptor.digest, subjectDigest: subject.digest)
            let profile = try await client.blob(repository: repository, digest: manifest.layer.digest)
            guard Int64(profile.count) == manifest.layer.sizeBytes else {
                throw OCIRegistryError.malformed(what: "profile artifact \(descriptor.digest)",
                                                 reason: "layer is \(profile.count) bytes, its descriptor says \(manifest.layer.sizeBytes)")
            }
            return StoredProfileArtifact(image: image, subject: subject, manifest: manifest, profile: profile, foundBy: foundBy)
        }
        return nil
    }

    public struct Stored: Sendable {
        public var manifestDigest: String
        public var tag: String
        /// True when the registry answered `OCI-Subject` (it indexes referrers itself); false when
        /// podstart updated the referrers tag-schema index instead.
        public var registryHasReferrersAPI: Bool
    }

    /// Uploads the blobs, then the manifest by digest, then (without the referrers API) the
    /// referrers tag-schema index, and last moves the `sha256-<hex>.podstart` tag: a push that
    /// fails anywhere leaves the previous tag pointing at the previous, complete profile.
    public func store(image: ImageReference, subject: OCIDescriptor, profile: [UInt8], config: [UInt8],
                      starts: Int, created: String) async throws -> Stored {
        let repository = image.repository
        let configDescriptor = try await client.pushBlob(repository: repository, bytes: config, mediaType: ProfileArtifact.configMediaType)
        let layerDescriptor = try await client.pushBlob(repository: repository, bytes: profile, mediaType: ProfileArtifact.layerMediaType,
                                                        annotations: [ProfileArtifact.titleAnnotation: "profile.json"])
        let annotations = [ProfileArtifact.createdAnnotation: created, ProfileArtifact.startsAnnotation: String(starts)]
        let manifest = ProfileArtifact.manifest(config: configDescriptor, layer: layerDescriptor, subject: subject, annotations: annotations)
        let digest = OCIRegistryClient.sha256(manifest)
        let put = try await client.putManifest(repository: repository, reference: digest, body: manifest, mediaType: OCIMediaType.imageManifest)
        let hasReferrersAPI = put.ociSubject == subject.digest
        if !hasReferrersAPI {
            let descriptor = OCIDescriptor(mediaType: OCIMediaType.imageManifest, digest: digest, sizeBytes: Int64(manifest.count),
                                           artifactType: ProfileArtifact.artifactType, annotations: annotations)
            try await updateReferrersTagIndex(repository: repository, subject: subject, adding: descriptor)
        }
        let tag = ProfileArtifact.tag(forSubject: subject.digest)
        try await client.putManifest(repository: repository, reference: tag, body: manifest, mediaType: OCIMediaType.imageManifest)
        return Stored(manifestDigest: digest, tag: tag, registryHasReferrersAPI: hasReferrersAPI)
    }

    /// distribution-spec v1.1 "Pushing Manifests with Subject": without `OCI-Subject`, the client
    /// keeps the index at the `sha256-<hex>` tag. podstart's earlier profiles are replaced in it
    /// (each profile is cumulative); other tools' referrers are kept as they are.
    func updateReferrersTagIndex(repository: String, subject: OCIDescriptor, adding descriptor: OCIDescriptor) async throws {
        let tag = ProfileArtifact.referrersTag(forSubject: subject.digest)
        var entries: [JSON] = []
        var otherFields: [(String, JSON)] = []
        if let (_, body) = try await client.manifest(repository: repository, reference: tag, accept: [OCIMediaType.imageIndex]) {
            guard let index = try? JSON.parse(body), case .object(let fields) = index, let manifests = index["manifests"]?.arrayValue else {
                throw OCIRegistryError.malformed(what: "referrers tag index \(repository):\(tag)", reason: "not an OCI image index")
            }
            entries = manifests.filter { $0["artifactType"]?.stringValue != ProfileArtifact.artifactType }
            otherFields = fields.filter { !["schemaVersion", "mediaType", "manifests"].contains($0.0) }
        }
        entries.append(descriptor.json())
        let index = JSON.object([("schemaVersion", .int(2)), ("mediaType", .string(OCIMediaType.imageIndex)),
                                 ("manifests", .array(entries))] + otherFields)
        try await client.putManifest(repository: repository, reference: tag, body: Array(index.rendered().utf8),
                                     mediaType: OCIMediaType.imageIndex)
    }
}
