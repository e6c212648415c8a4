import AccessProfiles
import ArgumentParser
import Foundation
import PodstartCore

/// How to reach the image's registry: `--plain-http` like skopeo's `--tls-verify=false` for
/// HTTP-only registries (loopback registries are always spoken to over HTTP); credentials from
/// the docker config.json (`docker login`).
struct RegistryOptions: ParsableArguments {
    @Flag(name: .customLong("plain-http"), help: "Talk HTTP, not HTTPS, to the registry (always so for 127.0.0.1 and localhost).")
    var plainHTTP = false

    @Option(name: .customLong("registry-timeout"), help: "Seconds to wait for each registry request.")
    var timeoutSeconds: Double = 30

    func validate() throws {
        guard timeoutSeconds.isFinite, timeoutSeconds > 0 else { throw ValidationError("--registry-timeout must be positive") }
    }

    func sharing(for image: ImageReference) throws -> ProfileSharing {
        let credentials = try RegistryCredentials.fromDockerConfig(host: image.apiHost)
        let client = try OCIRegistryClient(host: image.apiHost, plainHTTP: plainHTTP, credentials: credentials, timeoutSeconds: timeoutSeconds)
        return ProfileSharing(registry: ProfileRegistry(client: client))
    }

    static func reference(_ text: String?) throws -> ImageReference {
        guard let text, !text.hasPrefix("sha256:") else {
            throw ValidationError("--image must name the image in its registry (e.g. registry.example/app:1), not only a digest")
        }
        do { return try ImageReference(parsing: text) } catch { throw ValidationError("\(error)") }
    }
}

/// `podstart profile push`: merge this node's starts of an image into the profile stored next to
/// the image in its registry.
struct ProfilePushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Merge an image's starts into the profile stored next to it in its OCI registry.",
        discussion: """
            The profile is an OCI artifact (artifactType application/vnd.podstart.profile.v1+json) \
            whose subject is the image, tagged sha256-<image hex>.podstart. The starts come from \
            --from trace files or the agent's --state-dir; only those of the digest --image has in \
            the registry are used. Starts the registry's profile already holds count once; when \
            every start is already there nothing is written.
            """
    )

    @OptionGroup var source: ProfileSourceOptions
    @OptionGroup var registry: RegistryOptions

    @Option(name: [.short, .long], help: "table or json.")
    var output: ProfileOutput = .table

    func validate() throws { _ = try RegistryOptions.reference(source.image) }

    func run() async throws {
        let image = try RegistryOptions.reference(source.image)
        let sharing = try registry.sharing(for: image)
        let subject = try await sharing.registry.resolve(image)
        var local = source
        local.image = subject.digest
        let profile = try await local.load()
        let pushed = try await sharing.push(profile, image: image, subject: subject)
        switch output {
        case .json: print(pushed.json(image: image).rendered())
        case .table:
            if let stored = pushed.stored {
                print("pushed the profile of \(image) (\(subject.digest)): \(pushed.startsAdded) new of \(profile.starts) local starts, "
                      + "\(pushed.profile.starts) starts and \(pushed.profile.files.count) files in all")
                print("  artifact \(stored.manifestDigest), tag \(stored.tag)"
                      + (stored.registryHasReferrersAPI ? ", listed by the registry's referrers API" : ", listed in the referrers tag index"))
            } else {
                print("nothing to push: the registry's profile of \(image) already holds all \(profile.starts) local starts "
                      + "(\(pushed.profile.starts) in all)")
            }
        }
    }
}

/// `podstart profile pull`: the profile stored next to an image, as a profile or a prefetch list.
struct ProfilePullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Fetch the profile stored next to an image in its OCI registry, as a profile or a prefetch list.",
        discussion: """
            Found through the registry's referrers API where it has one, else through the tag \
            sha256-<image hex>.podstart. --format json writes the profile; the other formats plan \
            it as podstart profile export does. --out is replaced atomically.
            """
    )

    @Option(help: "The image, as in a pod spec (registry/repository:tag or @sha256:…).")
    var image: String

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var plan: PlanOptions

    @Option(help: "json (the profile), estargz, nydus, nydus-json, overlaybd or paths.")
    var format: PrefetchFormat = .json

    @Option(help: "Write to this file (atomically) instead of standard output.")
    var out: String?

    func validate() throws { _ = try RegistryOptions.reference(image) }

    func run() async throws {
        let reference = try RegistryOptions.reference(image)
        let sharing = try registry.sharing(for: reference)
        let subject = try await sharing.registry.resolve(reference)
        guard let pulled = try await sharing.pull(image: reference, subject: subject) else {
            throw ProfileError("no podstart profile of \(reference) (\(subject.digest)) in \(reference.registry): push one with podstart profile push")
        }
        let document = try PrefetchExport.export(PrefetchPlan(profile: pulled.profile, options: plan.options), format: format)
        warnOmitted(document.omitted, format: format)
        if let out { try AtomicFile.write(document.text, to: out) } else { print(document.text, terminator: "") }
    }
}
