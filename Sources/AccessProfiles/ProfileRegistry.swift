import Foundation
import PodstartCore

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
