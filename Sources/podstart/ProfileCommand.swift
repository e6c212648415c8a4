import AccessProfiles
import ArgumentParser
import Foundation
import PodstartCore
import StateStore
import TraceViews

/// `podstart profile …`: per-image access profiles from real starts, and the prefetch lists
/// lazy-pull image tools take (README "Access profiles and prefetch lists").
struct ProfileCommand: AsyncParsableCommand {
    /// The group's subcommands: to add one, add its type here.
    static let subcommandTypes: [any ParsableCommand.Type] = [
        ProfileListCommand.self,
        ProfileShowCommand.self,
        ProfilePlanCommand.self,
        ProfileExportCommand.self,
        ProfileEvaluateCommand.self,
        ProfilePushCommand.self, ProfilePullCommand.self,
    ]

    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Per-image access profiles and prefetch lists for eStargz, Nydus and overlaybd.",
        subcommands: subcommandTypes
    )
}

/// Where a profile comes from: trace files (`--from`) or the agent's state store (`--image`).
/// Shared by every `profile` subcommand that reads starts.
struct ProfileSourceOptions: ParsableArguments {
    @Option(help: "Image reference or digest (sha256:…). Alone: read its starts from the state store; with --from: pick this image out of the trace files.")
    var image: String?

    @Option(name: .customLong("from"), parsing: .upToNextOption,
            help: "Trace JSON files (podstart trace --output json; one trace per line).")
    var from: [String] = []

    @Option(name: .customLong("state-dir"), help: "The agent's state directory (with --image).")
    var stateDirectory = "/var/lib/podstart"

    @Option(name: .customLong("max-starts"), help: "Use at most this many of the image's newest starts from the state store.")
    var maxStarts = 1000

    @Option(name: .customLong("image-bytes"), help: "The image's unpacked size in bytes, when the traces lack it (imageBytes).")
    var imageBytes: UInt64?

    @Flag(name: .customLong("skip-malformed"), help: "Use the good traces of a file that also holds malformed lines (they are listed on stderr).")
    var skipMalformed = false

    func validate() throws {
        if image == nil && from.isEmpty { throw ValidationError("say where the starts come from: --image REF|DIGEST (state store) or --from TRACE.json…") }
        if maxStarts < 1 { throw ValidationError("--max-starts must be at least 1") }
        if let image, image.isEmpty { throw ValidationError("--image is empty") }
    }

    /// The profile of the chosen image.
    func load() async throws -> ImageProfile {
        var profile: ImageProfile
        if !from.isEmpty {
            let traces = try TraceFiles.load(paths: from, skipMalformed: skipMalformed, warn: warn)
            let digest = try Self.choose(image: image, among: TraceFiles.images(in: traces), source: "the --from files")
            profile = ImageProfile(traces: traces, imageDigest: digest)
        } else {
            profile = try await loadFromStore(image: image ?? "")
        }
        if let imageBytes { profile.imageBytes = imageBytes }
        if !profile.rejectedPaths.isEmpty {
            let sample = profile.rejectedPaths.sorted { $0.key < $1.key }.prefix(5)
                .map { "\(ProfilePath.quoted($0.key)) (\($0.value))" }.joined(separator: ", ")
            warn("\(profile.rejectedPaths.count) path(s) read at start are never exported: \(sample)")
        }
        return profile
    }

    /// The agent's state store, opened for reading: never created, no retention applied (a
    /// reader must not delete what the agent keeps).
    static func openStore(_ directory: String) throws -> TimelineStore {
        let file = (directory as NSString).appendingPathComponent(TimelineStore.fileName)
        guard FileManager.default.fileExists(atPath: file) else {
            throw ProfileError("no state database at \(file): point --state-dir at the agent's state directory, or use --from TRACE.json")
        }
        return try TimelineStore(directory: directory, configuration: .init(maxAgeSeconds: nil, maxBytes: nil))
    }

    private func loadFromStore(image: String) async throws -> ImageProfile {
        let file = (stateDirectory as NSString).appendingPathComponent(TimelineStore.fileName)
        let store = try Self.openStore(stateDirectory)
        defer { try? store.close() }
        var images: [String: Set<String>] = [:]
        var offset = 0
        while true {
            let page = try await store.images(limit: 1000, offset: offset)
            for summary in page { images[summary.digest, default: []].formUnion(summary.references) }
            if page.count < 1000 { break }
            offset += page.count
        }
        let digest = try Self.choose(image: image, among: images, source: "the state store \(file)")
        let traces = try await store.traces(imageDigest: digest, limit: maxStarts)
        return ImageProfile(traces: traces, imageDigest: digest)
    }

    /// The digest `image` names among `images` (digest → references). Without `image`, the only one.
    static func choose(image: String?, among images: [String: Set<String>], source: String) throws -> String {
        func known() -> String {
            images.isEmpty ? "it has none"
                : "it has " + images.sorted { $0.key < $1.key }.prefix(10)
                    .map { "\($0.key) (\($0.value.sorted().joined(separator: ", ")))" }.joined(separator: "; ")
        }
        guard let image else {
            switch images.count {
            case 1: return images.first!.key
            case 0: throw ProfileError("no container in \(source) has an image digest")
            default: throw ProfileError("\(source) hold starts of \(images.count) images; choose one with --image: \(known())")
            }
        }
        if image.hasPrefix("sha256:") {
            guard ImageDigest.isValid(image) else { throw ProfileError("--image \(image): a digest is sha256: and 64 lowercase hex digits") }
            guard images[image] != nil else { throw ProfileError("no start of image \(image) in \(source); \(known())") }
            return image
        }
        let matching = images.filter { $0.value.contains(image) }.map(\.key).sorted()
        switch matching.count {
        case 1: return matching[0]
        case 0: throw ProfileError("no start of image \(image) in \(source); \(known())")
        default: throw ProfileError("\(image) ran as \(matching.count) digests in \(source) (the tag moved); choose one with --image: \(matching.joined(separator: ", "))")
        }
    }
}

/// `--min-share` and `--budget-bytes`.
struct PlanOptions: ParsableArguments {
    @Option(name: .customLong("min-share"), help: "Plan files read in at least this share (0-1) of the starts.")
    var minShare: Double = PrefetchPlan.Options.defaultMinShare

    @Option(name: .customLong("budget-bytes"), help: "Plan at most this many bytes of whole files (files that do not fit are skipped).")
    var budgetBytes: UInt64?

    func validate() throws {
        guard minShare.isFinite, (0...1).contains(minShare) else { throw ValidationError("--min-share must be between 0 and 1") }
    }

    var options: PrefetchPlan.Options { PrefetchPlan.Options(minShare: minShare, budgetBytes: budgetBytes) }
}

struct ProfileError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("podstart: \(message)\n".utf8))
}

/// Names, on standard error, the planned files a format could not carry (the list is still written).
func warnOmitted(_ omitted: [ExportOmission], format: PrefetchFormat) {
    guard !omitted.isEmpty else { return }
    let shown = omitted.prefix(10).map(\.description).joined(separator: "; ")
    warn("\(omitted.count) planned file(s) left out of the \(format.rawValue) list: \(shown)\(omitted.count > 10 ? "; …" : "")")
}

enum ProfileOutput: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

extension PrefetchFormat: ExpressibleByArgument {}

/// `podstart profile plan`: which files to prefetch, in which order, and what it costs.
struct ProfilePlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Pick the prefetch set of an image from its starts.",
        discussion: """
            Files read in at least --min-share of the starts, ordered by median first access, \
            within --budget-bytes; directories are never listed.
            """
    )

    @OptionGroup var source: ProfileSourceOptions
    @OptionGroup var plan: PlanOptions

    @Option(name: [.short, .long], help: "table or json.")
    var output: ProfileOutput = .table

    func run() async throws {
        let profile = try await source.load()
        let plan = PrefetchPlan(profile: profile, options: plan.options)
        switch output {
        case .json: print(plan.json().rendered())
        case .table: print(ProfileTable.render(plan), terminator: "")
        }
    }
}

/// `podstart profile export`: the plan in a lazy-pull tool's format, checked before writing.
struct ProfileExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an image's prefetch list for eStargz, Nydus or overlaybd tools.",
        discussion: """
            estargz: ctr-remote/nerdctl image convert --estargz-record-in; nydus: nydus-image / \
            nydusify standard input; nydus-json: nydusify optimize --prefetch-files; overlaybd: the \
            text priority list; paths: one absolute path a line; json: podstart's profile. The list \
            is checked against its format before anything is written; --out is replaced atomically.
            """
    )

    @OptionGroup var source: ProfileSourceOptions
    @OptionGroup var plan: PlanOptions

    @Option(help: "estargz, nydus, nydus-json, overlaybd, paths or json.")
    var format: PrefetchFormat

    @Option(help: "Write to this file (atomically) instead of standard output.")
    var out: String?

    func run() async throws {
        let profile = try await source.load()
        let document = try PrefetchExport.export(PrefetchPlan(profile: profile, options: plan.options), format: format)
        warnOmitted(document.omitted, format: format)
        if let out { try AtomicFile.write(document.text, to: out) } else { print(document.text, terminator: "") }
    }
}

/// `podstart profile evaluate`: how well the plan covers a start it was not made from.
struct ProfileEvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Measure a prefetch plan against a held-out start: recall, precision, share of the image.",
        discussion: """
            Whole-file semantics: a planned file covers every byte the held-out start read from it. \
            The held-out trace must hold one start of the image that the profile does not contain.
            """
    )

    @OptionGroup var source: ProfileSourceOptions
    @OptionGroup var plan: PlanOptions

    @Option(help: "Trace JSON of the held-out start.")
    var trace: String

    @Option(name: [.short, .long], help: "table or json.")
    var output: ProfileOutput = .table

    func run() async throws {
        let profile = try await source.load()
        let held = try TraceFiles.load(paths: [trace], skipMalformed: source.skipMalformed, warn: warn)
            .filter { t in t.containers.contains { $0.imageDigest == profile.imageDigest } }
        guard held.count == 1 else {
            throw ProfileError("\(trace) holds \(held.count) starts of image \(profile.imageDigest); evaluate against exactly one")
        }
        let plan = PrefetchPlan(profile: profile, options: plan.options)
        let evaluation = try ProfileEvaluation(plan: plan, heldOut: held[0])
        switch output {
        case .json: print(evaluation.json().rendered())
        case .table: print(ProfileTable.render(evaluation, plan: plan), terminator: "")
        }
    }
}

/// The human-readable outputs.
enum ProfileTable {
    static func render(_ plan: PrefetchPlan) -> String {
        let p = plan.profile
        var out = header(p)
        out += "plan: \(plan.files.count) of \(p.files.count) files (read in ≥ \(percent(plan.options.minShare)) of starts"
        if let budget = plan.options.budgetBytes { out += ", within \(budget) bytes" }
        out += "): \(plan.prefetchBytes) bytes"
        if let size = p.imageBytes, size > 0 { out += " = \(percent(Double(plan.prefetchBytes) / Double(size))) of the image" }
        out += "\n"
        if plan.belowShare > 0 { out += "  \(plan.belowShare) files read in fewer starts left out\n" }
        if plan.overBudget > 0 { out += "  \(plan.overBudget) files over the budget left out\n" }
        out += "\n" + pad("share", 7) + lpad("median ms", 11) + lpad("read", 12) + lpad("prefetch", 12) + "  path\n"
        for f in plan.files {
            out += pad(percent(Double(f.starts) / Double(max(p.starts, 1))), 7) + lpad(String(format: "%.2f", f.medianFirstAccessMs), 11)
                + lpad(String(f.bytes), 12) + lpad(String(f.prefetchBytes), 12) + "  " + f.path + "\n"
        }
        return out
    }

    static func render(_ e: ProfileEvaluation, plan: PrefetchPlan) -> String {
        var out = header(plan.profile)
        out += "held-out start: \(e.heldOutFiles) files, \(e.heldOutBytes) bytes read\n"
        out += "plan: \(e.plannedFiles) files, \(e.prefetchBytes) bytes"
        if let share = e.imageShare { out += " = \(percent(share)) of the image" }
        out += "\n"
        out += "recall:    files \(percent(e.recallFiles)), bytes \(percent(e.recallBytes))\n"
        out += "precision: files \(percent(e.precisionFiles)), bytes \(percent(e.precisionBytes))\n"
        out += "ranges (nydus-json): \(e.rangePrefetchBytes) bytes, recall \(percent(e.rangeRecallBytes))"
        if let over = e.rangeOverfetch { out += String(format: ", %.2f× the held-out start's bytes", over) }
        out += "\n"
        if !e.missedFiles.isEmpty {
            out += "missed: " + e.missedFiles.prefix(10).joined(separator: " ") + (e.missedFiles.count > 10 ? " …" : "") + "\n"
        }
        return out
    }

    static func header(_ p: ImageProfile) -> String {
        var out = "image \(p.imageDigest)  \(p.references.joined(separator: " "))\n"
        out += "\(p.starts) starts, \(p.files.count) files read, \(p.readBytes) bytes"
        if let size = p.imageBytes, let share = p.readShare { out += " of \(size) (\(percent(share)) of the image)" }
        return out + "\n"
    }

    static func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
    static func pad(_ s: String, _ n: Int) -> String { TraceTable.pad(s, n) }
    static func lpad(_ s: String, _ n: Int) -> String { TraceTable.lpad(s, n) }
}
