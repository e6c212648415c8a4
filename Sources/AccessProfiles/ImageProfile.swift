import PodstartCore

/// One image's access profile: what its containers read before their pod was ready, merged over
/// many starts. Per file: in how many starts it was read, when first (median over those starts),
/// which byte ranges (the union over all starts) and which layer provides it.
///
/// Starts are kept by identity (`startKeys`, the trace's storage key: pod UID or container ID),
/// so merging two profiles that share starts counts each start once — merging is idempotent.
/// Only files an image layer provides are profiled (accesses with a `layerDigest`); files the
/// container created, volumes and pseudo file systems are not image content. Paths no export
/// could carry intact (`ProfilePath`) are left out and listed in `rejectedPaths`.
public struct ImageProfile: Sendable, Hashable {
    public static let schemaVersion = "podstart.dev/profile/v1"

    /// `sha256:…` of the image (the manifest digest the runtime reports for the container).
    public var imageDigest: String
    /// Image references the starts named (sorted, distinct).
    public var references: [String]
    /// Identity of each start merged in (sorted, distinct): `PodStartTrace.storageKey`.
    public internal(set) var startKeys: [String]
    /// Unpacked size of the image in bytes (regular files of its layers), when a trace knew it.
    public var imageBytes: UInt64?
    /// Ordered by median first access, then path.
    public internal(set) var files: [FileProfile]
    /// Paths read at start that no export may carry (newline, `..`, not absolute, …), with why.
    /// Kept so a caller can say what was left out of the traces it just read; never exported,
    /// not even in the profile JSON.
    public internal(set) var rejectedPaths: [String: ProfilePath.Rejection]

    /// How many starts the profile merges.
    public var starts: Int { startKeys.count }

    /// Bytes read at start: the union of every file's ranges.
    public var readBytes: UInt64 { files.saturatingSum { $0.bytes } }

    /// Share of the image read at start (`readBytes / imageBytes`), the figure Slacker measured
    /// at 6.4%; nil when the image's size is unknown.
    public var readShare: Double? {
        guard let imageBytes, imageBytes > 0 else { return nil }
        return Double(readBytes) / Double(imageBytes)
    }

    /// An empty profile of `imageDigest`.
    public init(imageDigest: String) {
        self.imageDigest = imageDigest
        references = []
        startKeys = []
        imageBytes = nil
        files = []
        rejectedPaths = [:]
    }

    /// The profile of `imageDigest` from the containers of `traces` that ran it. Traces without
    /// such a container add nothing; a start seen twice (same storage key) counts once.
    public init(traces: [PodStartTrace], imageDigest: String) {
        self.init(imageDigest: imageDigest)
        add(contentsOf: traces)
    }

    /// Adds starts; one already in the profile (same `startKey`) counts once.
    public mutating func add(contentsOf traces: [PodStartTrace]) {
        merge(contentsOf: traces.compactMap { single($0) })
    }

    /// Adds one start. Several containers of the start that ran the image count as one start:
    /// per file, the earliest first access, summed opens, the union of the ranges.
    public mutating func add(_ trace: PodStartTrace) {
        add(contentsOf: [trace])
    }

    /// The profile of one start (nil when no container of it ran the image).
    private func single(_ trace: PodStartTrace) -> ImageProfile? {
        let containers = trace.containers.filter { $0.imageDigest == imageDigest }
        guard !containers.isEmpty else { return nil }
        var single = ImageProfile(imageDigest: imageDigest)
        single.startKeys = [Self.startKey(trace)]
        single.references = Array(Set(containers.map(\.image))).sorted()
        single.imageBytes = containers.compactMap(\.imageBytes).max()
        var byPath: [String: FileProfile] = [:]
        var rejected: [String: ProfilePath.Rejection] = [:]
        for access in containers.flatMap(\.accesses) {
            guard let layer = access.layerDigest else { continue }
            if let why = ProfilePath.rejection(access.path) {
                rejected[access.path] = why
                continue
            }
            let ranges = access.ranges.compactMap { pair -> ByteRange? in
                pair.count == 2 && pair[1] > 0 ? ByteRange(offset: pair[0], length: pair[1]) : nil
            }
            let sample = FileProfile.Sample(start: 0, firstAccessMs: access.firstAccessMs, opens: access.opens)
            if var file = byPath[access.path] {
                file.samples[0].firstAccessMs = min(file.samples[0].firstAccessMs, access.firstAccessMs)
                file.samples[0].opens = file.samples[0].opens.saturatingAdd(access.opens)
                file.ranges = ByteRange.union(file.ranges + ranges)
                file.sizeBytes = [file.sizeBytes, access.sizeBytes].compactMap { $0 }.max()
                byPath[access.path] = file
            } else {
                byPath[access.path] = FileProfile(path: access.path, layerDigest: layer, sizeBytes: access.sizeBytes,
                                                  samples: [sample], ranges: ByteRange.union(ranges))
            }
        }
        single.files = Array(byPath.values)
        single.rejectedPaths = rejected
        return single
    }

    /// Merges `other` (a profile of the same image) into this one. Starts both profiles hold
    /// count once; per file, the samples of new starts are added and the ranges united.
    /// Merging a profile of another image does nothing.
    public mutating func merge(_ other: ImageProfile) {
        merge(contentsOf: [other])
    }

    /// Merges several profiles at once (one pass, one sort). A start several of them hold is
    /// taken from the first that does, unless this profile holds it already.
    public mutating func merge(contentsOf others: [ImageProfile]) {
        let others = others.filter { $0.imageDigest == imageDigest }
        guard !others.isEmpty else { return }
        var references = Set(self.references)
        // Which profile each start is taken from: self (-1) or the first other holding it.
        var owner: [String: Int] = Dictionary(uniqueKeysWithValues: startKeys.map { ($0, -1) })
        for (n, other) in others.enumerated() {
            references.formUnion(other.references)
            if let size = other.imageBytes { imageBytes = max(imageBytes ?? 0, size) }
            rejectedPaths.merge(other.rejectedPaths) { a, _ in a }
            for key in other.startKeys where owner[key] == nil { owner[key] = n }
        }
        self.references = references.sorted()
        let mergedKeys = owner.keys.sorted()
        let index = Dictionary(uniqueKeysWithValues: mergedKeys.enumerated().map { ($1, $0) })

        struct Accumulated {
            var file: FileProfile
            var ranges: [ByteRange]
            var layerVotes: [String: Int]
        }
        var byPath: [String: Accumulated] = [:]
        func add(_ file: FileProfile, samples: [FileProfile.Sample]) {
            if var a = byPath[file.path] {
                a.file.samples += samples
                a.ranges += file.ranges
                a.file.sizeBytes = [a.file.sizeBytes, file.sizeBytes].compactMap { $0 }.max()
                if let layer = file.layerDigest { a.layerVotes[layer, default: 0] += max(samples.count, 1) }
                byPath[file.path] = a
            } else {
                byPath[file.path] = Accumulated(file: FileProfile(path: file.path, layerDigest: file.layerDigest,
                                                                  sizeBytes: file.sizeBytes, samples: samples, ranges: []),
                                                ranges: file.ranges,
                                                layerVotes: file.layerDigest.map { [$0: max(samples.count, 1)] } ?? [:])
            }
        }
        let selfRemap = startKeys.map { index[$0]! }
        for file in files {
            add(file, samples: file.samples.map { .init(start: selfRemap[$0.start], firstAccessMs: $0.firstAccessMs, opens: $0.opens) })
        }
        for (n, other) in others.enumerated() {
            let remap = other.startKeys.map { owner[$0] == n ? index[$0]! : nil }
            for file in other.files {
                let taken = file.samples.compactMap { s in remap[s.start].map { FileProfile.Sample(start: $0, firstAccessMs: s.firstAccessMs, opens: s.opens) } }
                // a file only starts merged before read: keep its ranges (union is idempotent), count nothing
                if taken.isEmpty && byPath[file.path] == nil { continue }
                add(file, samples: taken)
            }
        }
        startKeys = mergedKeys
        files = byPath.values.map { a in
            var f = a.file
            f.ranges = ByteRange.union(a.ranges)
            f.samples.sort { $0.start < $1.start }
            // the layer most starts saw (ties: the smallest digest, so the order of merging does not matter)
            if let best = a.layerVotes.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }) { f.layerDigest = best.key }
            return f
        }
        sortFiles()
    }

    /// The identity a start is merged under: its storage key (pod UID, or container ID without
    /// a pod); for a trace that has neither, its pod name and creation time.
    public static func startKey(_ trace: PodStartTrace) -> String {
        let key = trace.storageKey
        return key.isEmpty ? "\(trace.pod.namespace)/\(trace.pod.name)@\(trace.created)" : key
    }

    mutating func sortFiles() {
        // the median once per file, not once per comparison
        files = files.map { ($0.medianFirstAccessMs, $0) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.path < $1.1.path }
            .map(\.1)
    }
}

/// One file of an image profile.
public struct FileProfile: Sendable, Hashable {
    /// One start that read the file.
    public struct Sample: Sendable, Hashable {
        /// Index into the profile's `startKeys`.
        public var start: Int
        /// Milliseconds from the container's first exec to this start's first access.
        public var firstAccessMs: Double
        public var opens: UInt64
        public init(start: Int, firstAccessMs: Double, opens: UInt64) {
            self.start = start
            self.firstAccessMs = firstAccessMs
            self.opens = opens
        }
    }

    /// Absolute path inside the container.
    public var path: String
    /// Digest of the image layer that provides the file.
    public var layerDigest: String?
    /// The file's size in bytes, when a trace recorded it.
    public var sizeBytes: UInt64?
    /// One per start that read the file before ready.
    public var samples: [Sample]
    /// Byte ranges read, united over all starts (sorted, disjoint, not touching).
    public var ranges: [ByteRange]

    public init(path: String, layerDigest: String?, sizeBytes: UInt64?, samples: [Sample], ranges: [ByteRange]) {
        self.path = path
        self.layerDigest = layerDigest
        self.sizeBytes = sizeBytes
        self.samples = samples
        self.ranges = ranges
    }

    /// In how many starts the file was read before ready.
    public var starts: Int { samples.count }
    /// Bytes read: the size of the ranges' union.
    public var bytes: UInt64 { ranges.saturatingSum { $0.length } }
    /// Opens over all starts.
    public var opens: UInt64 { samples.saturatingSum { $0.opens } }
    /// Median over the starts that read the file of the first-access time (ms after the first
    /// exec); the mean of the middle two for an even count; +infinity when no start is recorded.
    public var medianFirstAccessMs: Double {
        samples.isEmpty ? .infinity : median(samples.map(\.firstAccessMs))
    }
    /// Bytes a whole-file prefetch fetches: the file's size when known, else the bytes read.
    public var prefetchBytes: UInt64 { max(sizeBytes ?? 0, bytes) }
}

/// A run of bytes in a file.
public struct ByteRange: Sendable, Hashable, Comparable {
    public var offset: UInt64
    public var length: UInt64
    public init(offset: UInt64, length: UInt64) {
        self.offset = offset
        self.length = length
    }
    public var end: UInt64 { offset &+ length }

    public static func < (a: ByteRange, b: ByteRange) -> Bool {
        a.offset != b.offset ? a.offset < b.offset : a.length < b.length
    }

    /// Sorted, disjoint, with touching runs joined; empty runs dropped.
    public static func union(_ ranges: [ByteRange]) -> [ByteRange] {
        var merged: [ByteRange] = []
        for r in ranges.sorted() where r.length > 0 {
            if let last = merged.last, r.offset <= last.end {
                // ends never wrap: offsets and lengths are bounded when decoded (maxByteCount)
                merged[merged.count - 1].length = max(last.end, r.end) &- last.offset
            } else {
                merged.append(r)
            }
        }
        return merged
    }

    /// Bytes of `a` that `b` also covers (both as `union` returns them).
    public static func overlap(_ a: [ByteRange], _ b: [ByteRange]) -> UInt64 {
        var i = 0, j = 0
        var total: UInt64 = 0
        while i < a.count, j < b.count {
            let lo = max(a[i].offset, b[j].offset), hi = min(a[i].end, b[j].end)
            if lo < hi { total = total.saturatingAdd(hi - lo) }
            if a[i].end < b[j].end { i += 1 } else { j += 1 }
        }
        return total
    }
}
