import PodstartCore

/// The files worth prefetching for an image, in the order a start needs them.
///
/// A file is planned when it was read in at least `minShare` of the profile's starts; files are
/// ordered by median first access (then path). With a byte budget, files are taken in that order
/// while they fit: one that does not fit is skipped (and counted) and later, smaller ones may
/// still fit. Budget and `prefetchBytes` count whole files (`FileProfile.prefetchBytes`: the file's
/// size when a trace recorded it), since eStargz, Nydus path lists and overlaybd fetch whole files.
/// A path under which another profiled path lies is a directory and is never planned.
public struct PrefetchPlan: Sendable, Hashable {
    public struct Options: Sendable, Hashable {
        /// Share of starts (0…1) a file must have been read in. The default, 0.2, keeps every file
        /// read by one start in five: chosen from the evaluation (README "Access profiles and
        /// prefetch lists"), where a start with unseen arguments reads files that only one of
        /// the profiled starts read; noise read by one start in many is still left out.
        public var minShare: Double
        /// Stop adding files whose whole size would pass this many bytes (nil: no limit).
        public var budgetBytes: UInt64?

        public static let defaultMinShare = 0.2

        public init(minShare: Double = Options.defaultMinShare, budgetBytes: UInt64? = nil) {
            self.minShare = minShare
            self.budgetBytes = budgetBytes
        }
    }

    /// The profile the plan was made from.
    public var profile: ImageProfile
    public var options: Options
    /// The files to prefetch, in prefetch order.
    public var files: [FileProfile]
    /// Files that met `minShare` but did not fit the budget.
    public var overBudget: Int
    /// Files read in fewer than `minShare` of the starts.
    public var belowShare: Int
    /// Paths left out because another profiled path lies under them.
    public var directories: Int

    public init(profile: ImageProfile, options: Options = Options()) {
        self.profile = profile
        self.options = options
        let total = max(profile.starts, 1)
        // Compare counts, not floating shares: 1 of 5 meets 0.2 however 0.2 rounds.
        let needed = max(1, Int((options.minShare * Double(total) - 1e-9).rounded(.up)))
        let paths = profile.files.map(\.path).sorted()
        var isDirectory = Set<String>()
        let all = Set(paths)
        for p in paths {
            var parent = Substring(p)
            while let slash = parent.lastIndex(of: "/"), slash > parent.startIndex {
                parent = parent[..<slash]
                if all.contains(String(parent)) { isDirectory.insert(String(parent)) }
            }
        }
        var chosen: [FileProfile] = []
        var used: UInt64 = 0
        var overBudget = 0, belowShare = 0, directories = 0
        for file in profile.files {
            if isDirectory.contains(file.path) { directories += 1; continue }
            guard file.starts >= needed else { belowShare += 1; continue }
            if let budget = options.budgetBytes {
                let (next, overflow) = used.addingReportingOverflow(file.prefetchBytes)
                guard !overflow, next <= budget else { overBudget += 1; continue }
            }
            used = used.saturatingAdd(file.prefetchBytes)
            chosen.append(file)
        }
        files = chosen
        self.overBudget = overBudget
        self.belowShare = belowShare
        self.directories = directories
    }

    /// Bytes a whole-file prefetch of the plan fetches.
    public var prefetchBytes: UInt64 { files.saturatingSum { $0.prefetchBytes } }
    /// Bytes of the planned files that the profiled starts read (what a range format fetches).
    public var readBytes: UInt64 { files.saturatingSum { $0.bytes } }

    /// The plan as JSON (`profile plan --output json`).
    public func json() -> JSON {
        let total = max(profile.starts, 1)
        return .object([
            ("schemaVersion", .string("podstart.dev/prefetch-plan/v1")),
            ("imageDigest", .string(profile.imageDigest)),
            ("references", .array(profile.references.map { .string($0) })),
            ("starts", .int(Int64(profile.starts))),
            ("minShare", .double(options.minShare)),
            ("budgetBytes", options.budgetBytes.map { .uint($0) } ?? .null),
            ("imageBytes", profile.imageBytes.map { .uint($0) } ?? .null),
            ("prefetchBytes", .uint(prefetchBytes)),
            ("readBytes", .uint(readBytes)),
            ("imageShare", profile.imageBytes.flatMap { $0 > 0 ? JSON.double(Double(prefetchBytes) / Double($0)) : nil } ?? .null),
            ("profiledFiles", .int(Int64(profile.files.count))),
            ("belowShare", .int(Int64(belowShare))),
            ("overBudget", .int(Int64(overBudget))),
            ("directories", .int(Int64(directories))),
            ("files", .array(files.map { f in
                .object([
                    ("path", .string(f.path)),
                    ("layerDigest", f.layerDigest.map { .string($0) } ?? .null),
                    ("share", .double(Double(f.starts) / Double(total))),
                    ("medianFirstAccessMs", .double(f.medianFirstAccessMs)),
                    ("bytes", .uint(f.bytes)),
                    ("prefetchBytes", .uint(f.prefetchBytes)),
                    ("ranges", .array(f.ranges.map { .array([.uint($0.offset), .uint($0.length)]) })),
                ])
            })),
        ])
    }
}
