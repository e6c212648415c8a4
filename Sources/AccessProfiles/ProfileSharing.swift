import PodstartCore

/// `podstart profile push|pull` as a library: profiles from every node meet in the image's
/// registry. A push merges the local profile into the one already stored (ImageProfile.merge:
/// starts are kept by identity, so a start pushed twice, from one node or two, counts once) and
/// writes nothing when every local start is already there.
public struct ProfileSharing: Sendable {
    public let registry: ProfileRegistry

    public init(registry: ProfileRegistry) { self.registry = registry }

    public struct Pulled: Sendable {
        public var profile: ImageProfile
        public var artifact: StoredProfileArtifact
    }

    public struct Pushed: Sendable {
        public var subject: OCIDescriptor
        /// Starts in the registry's profile before the push (0 when there was none).
        public var startsBefore: Int
        /// Local starts the registry did not have.
        public var startsAdded: Int
        /// The profile now in the registry.
        public var profile: ImageProfile
        /// nil when nothing was written (every local start was already there).
        public var stored: ProfileRegistry.Stored?

        public func json(image: ImageReference) -> JSON {
            var fields: [(String, JSON)] = [
                ("image", .string(image.description)), ("imageDigest", .string(subject.digest)),
                ("pushed", .bool(stored != nil)), ("startsBefore", .int(Int64(startsBefore))),
                ("startsAdded", .int(Int64(startsAdded))), ("starts", .int(Int64(profile.starts))),
                ("files", .int(Int64(profile.files.count))),
            ]
            if let stored {
                fields += [("manifestDigest", .string(stored.manifestDigest)), ("tag", .string(stored.tag)),
                           ("referrersAPI", .bool(stored.registryHasReferrersAPI))]
            }
            return .object(fields)
        }
    }

    public struct MismatchError: Error, CustomStringConvertible, Sendable {
        public var image: ImageReference
        public var registryDigest: String
        public var profileDigest: String
        public var description: String {
            "\(image) is \(registryDigest) in its registry, but the profile is of \(profileDigest): push the starts of the image the registry holds"
        }
    }

    /// The image's profile as stored next to it; nil when there is none.
    public func pull(image: ImageReference) async throws -> Pulled? {
        let subject = try await registry.resolve(image)
        return try await pull(image: image, subject: subject)
    }

    public func pull(image: ImageReference, subject: OCIDescriptor) async throws -> Pulled? {
        guard let artifact = try await registry.fetch(image: image, subject: subject) else { return nil }
        let profile: ImageProfile
        do {
            profile = try ImageProfile.parse(String(decoding: artifact.profile, as: UTF8.self))
        } catch {
            throw OCIRegistryError.malformed(what: "profile artifact \(artifact.manifest.digest) of \(image)", reason: "\(error)")
        }
        guard profile.imageDigest == subject.digest else {
            throw OCIRegistryError.malformed(what: "profile artifact \(artifact.manifest.digest) of \(image)",
                                             reason: "it profiles \(profile.imageDigest), not \(subject.digest)")
        }
        return Pulled(profile: profile, artifact: artifact)
    }

    /// Merges `local` (a profile of the image `subject`, resolved from `image` beforehand) into
    /// the registry's and stores the result, unless it adds no start.
    public func push(_ local: ImageProfile, image: ImageReference, subject: OCIDescriptor,
                     created: String = Timestamp.rfc3339(unixNanoseconds: WallClock.unixNow())) async throws -> Pushed {
        guard local.imageDigest == subject.digest else {
            throw MismatchError(image: image, registryDigest: subject.digest, profileDigest: local.imageDigest)
        }
        let existing = try await pull(image: image, subject: subject)
        var merged = existing?.profile ?? ImageProfile(imageDigest: subject.digest)
        let before = merged.starts
        merged.merge(local)
        let added = merged.starts - before
        guard existing == nil || added > 0 else {
            return Pushed(subject: subject, startsBefore: before, startsAdded: 0, profile: merged, stored: nil)
        }
        let config = ProfileArtifact.config(imageDigest: subject.digest, profileSchema: ImageProfile.schemaVersion,
                                            starts: merged.starts, files: merged.files.count)
        let stored = try await registry.store(image: image, subject: subject, profile: Array(merged.json().rendered().utf8),
                                              config: config, starts: merged.starts, created: created)
        return Pushed(subject: subject, startsBefore: before, startsAdded: added, profile: merged, stored: stored)
    }
}
