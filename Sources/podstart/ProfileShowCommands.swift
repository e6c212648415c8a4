import AccessProfiles
import ArgumentParser
import Foundation
import PodstartCore
import StateStore

/// `podstart profile list`: the images that have recorded starts, and how much of each a start read.
struct ProfileListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the images with recorded starts: starts, files and bytes read, share of the image.",
        discussion: "From trace files (--from) or the agent's state store (--state-dir)."
    )

    @Option(name: .customLong("from"), parsing: .upToNextOption, help: "Trace JSON files (podstart trace --output json).")
    var from: [String] = []

    @Option(name: .customLong("state-dir"), help: "The agent's state directory (without --from).")
    var stateDirectory = "/var/lib/podstart"

    @Option(name: .customLong("max-starts"), help: "Use at most this many of each image's newest starts from the state store.")
    var maxStarts = 1000

    @Flag(name: .customLong("skip-malformed"), help: "Use the good traces of a file that also holds malformed lines.")
    var skipMalformed = false

    @Option(name: [.short, .long], help: "table or json (one object per image per line).")
    var output: ProfileOutput = .table

    func validate() throws {
        if maxStarts < 1 { throw ValidationError("--max-starts must be at least 1") }
    }

    func run() async throws {
        var profiles: [ImageProfile] = []
        if !from.isEmpty {
            let traces = try TraceFiles.load(paths: from, skipMalformed: skipMalformed, warn: warn)
            profiles = TraceFiles.images(in: traces).keys.sorted().map { ImageProfile(traces: traces, imageDigest: $0) }
        } else {
            let store = try ProfileSourceOptions.openStore(stateDirectory)
            defer { try? store.close() }
            var offset = 0
            while true {
                let page = try await store.images(limit: 1000, offset: offset)
                for summary in page {
                    profiles.append(ImageProfile(traces: try await store.traces(imageDigest: summary.digest, limit: maxStarts),
                                                 imageDigest: summary.digest))
                }
                if page.count < 1000 { break }
                offset += page.count
            }
        }
        switch output {
        case .json:
            for p in profiles {
                print(JSON.object([
                    ("imageDigest", .string(p.imageDigest)),
                    ("references", .array(p.references.map { .string($0) })),
                    ("starts", .int(Int64(p.starts))),
                    ("files", .int(Int64(p.files.count))),
                    ("readBytes", .uint(p.readBytes)),
                    ("imageBytes", p.imageBytes.map { .uint($0) } ?? .null),
                    ("readShare", p.readShare.map { .double($0) } ?? .null),
                ]).rendered())
            }
        case .table:
            print(ProfileTable.pad("image", 20) + ProfileTable.lpad("starts", 8) + ProfileTable.lpad("files", 8)
                  + ProfileTable.lpad("read", 14) + ProfileTable.lpad("image", 14) + ProfileTable.lpad("share", 8) + "  references")
            for p in profiles {
                print(ProfileTable.pad(String(p.imageDigest.prefix(19)), 20) + ProfileTable.lpad(String(p.starts), 8)
                      + ProfileTable.lpad(String(p.files.count), 8) + ProfileTable.lpad(String(p.readBytes), 14)
                      + ProfileTable.lpad(p.imageBytes.map(String.init) ?? "-", 14)
                      + ProfileTable.lpad(p.readShare.map(ProfileTable.percent) ?? "-", 8) + "  " + p.references.joined(separator: " "))
            }
        }
    }
}

/// `podstart profile show`: one image's profile, every file read at start.
struct ProfileShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show an image's access profile: every file read at start, in how many starts, when, how much.",
        discussion: "--output json is the profile JSON (the same as profile export --format json)."
    )

    @OptionGroup var source: ProfileSourceOptions

    @Option(name: [.short, .long], help: "table or json.")
    var output: ProfileOutput = .table

    func run() async throws {
        let profile = try await source.load()
        switch output {
        case .json:
            print(try PrefetchExport.document(PrefetchPlan(profile: profile), format: .json), terminator: "")
        case .table:
            var out = ProfileTable.header(profile) + "\n"
            out += ProfileTable.pad("starts", 8) + ProfileTable.lpad("median ms", 11) + ProfileTable.lpad("opens", 8)
                + ProfileTable.lpad("read", 12) + ProfileTable.lpad("size", 12) + "  layer         path\n"
            for f in profile.files {
                out += ProfileTable.pad("\(f.starts)/\(profile.starts)", 8) + ProfileTable.lpad(String(format: "%.2f", f.medianFirstAccessMs), 11)
                    + ProfileTable.lpad(String(f.opens), 8) + ProfileTable.lpad(String(f.bytes), 12)
                    + ProfileTable.lpad(f.sizeBytes.map(String.init) ?? "-", 12) + "  "
                    + ProfileTable.pad(String((f.layerDigest ?? "-").dropFirst(7).prefix(12)), 12) + "  " + f.path + "\n"
            }
            print(out, terminator: "")
        }
    }
}
