import PodstartCore

/// How well a prefetch plan covers a start it was not made from (a held-out start).
///
/// Whole-file semantics, as eStargz, Nydus path lists and overlaybd prefetch: a planned file
/// covers every byte the held-out start read from it. The held-out start's files are the ones
/// its image's layers provide (as in a profile); its bytes are the union of its ranges per file.
public struct ProfileEvaluation: Sendable, Hashable {
    /// Share of the held-out start's bytes read from planned files.
    public var recallBytes: Double
    /// Share of the held-out start's files that were planned.
    public var recallFiles: Double
    /// Held-out bytes read from planned files, over `prefetchBytes`.
    public var precisionBytes: Double
    /// Share of planned files the held-out start read.
    public var precisionFiles: Double
    /// Bytes the plan prefetches (whole files).
    public var prefetchBytes: UInt64
    /// Unpacked image size (the profile's, else the held-out trace's); nil when unknown.
    public var imageBytes: UInt64?
    /// `prefetchBytes / imageBytes`; nil when the image size is unknown.
    public var imageShare: Double?
    /// Files and bytes the held-out start read from the image.
    public var heldOutFiles: Int
    public var heldOutBytes: UInt64
    public var plannedFiles: Int
    /// Held-out files the plan missed, in the held-out start's first-access order.
    public var missedFiles: [String]

    // Range semantics, as the `nydus-json` export prefetches: a planned file's recorded ranges
    // (the whole file when it was opened and never read), so a byte counts only where a range
    // holds it.
    /// Bytes the plan's ranges prefetch.
    public var rangePrefetchBytes: UInt64
    /// Share of the held-out start's bytes inside the planned ranges.
    public var rangeRecallBytes: Double
    /// `rangePrefetchBytes / heldOutBytes`: bytes fetched ahead per byte the held-out start read
    /// (1 is exact; the target is at most 1.25). Nil when the held-out start read no bytes.
    public var rangeOverfetch: Double?

    public enum Failure: Error, CustomStringConvertible, Sendable {
        case heldOutInProfile(startKey: String)
        case heldOutReadNothing(imageDigest: String)

        public var description: String {
            switch self {
            case .heldOutInProfile(let key):
                "the held-out start \(key) is one of the profile's starts; hold out a start the profile was not made from"
            case .heldOutReadNothing(let digest):
                "the held-out trace has no file read from image \(digest) (no container of that image, or no accesses recorded: traced with --no-kernel?)"
            }
        }
    }

    /// Evaluates `plan` against `heldOut`, a start of the plan's image the profile does not hold.
    public init(plan: PrefetchPlan, heldOut: PodStartTrace) throws {
        let digest = plan.profile.imageDigest
        let key = ImageProfile.startKey(heldOut)
        guard !plan.profile.startKeys.contains(key) else { throw Failure.heldOutInProfile(startKey: key) }
        let held = ImageProfile(traces: [heldOut], imageDigest: digest)
        guard !held.files.isEmpty else { throw Failure.heldOutReadNothing(imageDigest: digest) }
        let planned = Set(plan.files.map(\.path))
        let heldPaths = Set(held.files.map(\.path))
        var coveredBytes: UInt64 = 0
        var missed: [String] = []
        for file in held.files {
            if planned.contains(file.path) { coveredBytes = coveredBytes.saturatingAdd(file.bytes) } else { missed.append(file.path) }
        }
        let heldBytes = held.readBytes
        let hits = held.files.count - missed.count
        let plannedByPath = Dictionary(plan.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        var rangeCovered: UInt64 = 0
        for file in held.files {
            guard let planned = plannedByPath[file.path] else { continue }
            rangeCovered = rangeCovered.saturatingAdd(planned.ranges.isEmpty ? file.bytes : ByteRange.overlap(file.ranges, planned.ranges))
        }
        rangePrefetchBytes = plan.files.saturatingSum { $0.ranges.isEmpty ? $0.prefetchBytes : $0.bytes }
        rangeRecallBytes = heldBytes == 0 ? 1 : Double(rangeCovered) / Double(heldBytes)
        rangeOverfetch = heldBytes == 0 ? nil : Double(rangePrefetchBytes) / Double(heldBytes)
        heldOutFiles = held.files.count
        heldOutBytes = heldBytes
        plannedFiles = plan.files.count
        missedFiles = missed
        prefetchBytes = plan.prefetchBytes
        recallFiles = Double(hits) / Double(held.files.count)
        // A start that read no bytes (only opens) has all of its zero bytes covered.
        recallBytes = heldBytes == 0 ? 1 : Double(coveredBytes) / Double(heldBytes)
        precisionFiles = planned.isEmpty ? 0 : Double(planned.intersection(heldPaths).count) / Double(planned.count)
        precisionBytes = prefetchBytes == 0 ? 0 : min(1, Double(coveredBytes) / Double(prefetchBytes))
        imageBytes = plan.profile.imageBytes ?? held.imageBytes
        imageShare = imageBytes.flatMap { $0 > 0 ? Double(prefetchBytes) / Double($0) : nil }
    }

    /// `profile evaluate --output json`.
    public func json() -> JSON {
        .object([
            ("recallBytes", .double(recallBytes)),
            ("recallFiles", .double(recallFiles)),
            ("precisionBytes", .double(precisionBytes)),
            ("precisionFiles", .double(precisionFiles)),
            ("prefetchBytes", .uint(prefetchBytes)),
            ("imageBytes", imageBytes.map { .uint($0) } ?? .null),
            ("imageShare", imageShare.map { .double($0) } ?? .null),
            ("heldOutFiles", .int(Int64(heldOutFiles))),
            ("heldOutBytes", .uint(heldOutBytes)),
            ("plannedFiles", .int(Int64(plannedFiles))),
            ("missedFiles", .array(missedFiles.map { .string($0) })),
            ("rangePrefetchBytes", .uint(rangePrefetchBytes)),
            ("rangeRecallBytes", .double(rangeRecallBytes)),
            ("rangeOverfetch", rangeOverfetch.map { .double($0) } ?? .null),
        ])
    }
}
