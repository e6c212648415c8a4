import AccessProfiles
import PodstartCore
import PodstartTestSupport
import Testing

/// Properties over random profiles, and the parsers and checkers on random and mutated input.
/// Seeded, so a failure replays.
@Suite struct PropertyTests {

    /// Path pieces including every kind of character a line format could trip on.
    static let pieces = ["usr", "lib", "a.so", "b", "..", ".", "", " x", "y ", "new\nline", "cr\r", "tab\t", "ü", "\"q\"", "{}", "\\", "sp ace", "\u{2028}"]

    static func randomPath(_ rng: inout SplitMix) -> String {
        let depth = Int.random(in: 1...4, using: &rng)
        let path = (0..<depth).map { _ in pieces.randomElement(using: &rng)! }.joined(separator: "/")
        return Int.random(in: 0..<10, using: &rng) == 0 ? path : "/" + path
    }

    static func randomTraces(_ rng: inout SplitMix, count: Int) -> [PodStartTrace] {
        (0..<count).map { i in
            let accesses = (0..<Int.random(in: 0...12, using: &rng)).map { _ -> Make.A in
                let offset = UInt64.random(in: 0...20_000, using: &rng)
                return Make.A(path: randomPath(&rng), ms: Double(Int.random(in: -20...500, using: &rng)) / 4,
                              ranges: Bool.random(using: &rng) ? [[offset, UInt64.random(in: 1...9000, using: &rng)]] : [],
                              layer: Int.random(in: 0..<8, using: &rng) == 0 ? nil : Make.layer0,
                              size: Bool.random(using: &rng) ? UInt64.random(in: 0...40_000, using: &rng) : nil)
            }
            return Make.trace("u\(i)", imageBytes: 1 << 20, accesses)
        }
    }

    @Test func mergeIsCommutativeAssociativeAndIdempotent() throws {
        var rng = SplitMix(state: 7)
        for _ in 0..<200 {
            // overlapping subsets of one pool of starts: a start is the same wherever it appears
            let pool = Self.randomTraces(&rng, count: 8)
            func subset(_ rng: inout SplitMix) -> ImageProfile {
                ImageProfile(traces: pool.filter { _ in Bool.random(using: &rng) }, imageDigest: Make.digest)
            }
            let a = subset(&rng), b = subset(&rng), c = subset(&rng)
            #expect(ImageProfile(traces: pool, imageDigest: Make.digest).json() == {
                var all = a; all.merge(b); all.merge(c); all.merge(ImageProfile(traces: pool, imageDigest: Make.digest)); return all
            }().json())
            var ab = a; ab.merge(b)
            var ba = b; ba.merge(a)
            #expect(ab.json() == ba.json())
            var abc1 = ab; abc1.merge(c)
            var bc = b; bc.merge(c)
            var abc2 = a; abc2.merge(bc)
            #expect(abc1.json() == abc2.json())
            var twice = abc1; twice.merge(abc1); twice.merge(a)
            #expect(twice.json() == abc1.json())
            #expect(try ImageProfile.parse(abc1.json().rendered()).json() == abc1.json())
        }
    }

    @Test func everyExportOfAnyProfilePassesItsCheckerAndCarriesNoUnsafePath() throws {
        var rng = SplitMix(state: 11)
        for _ in 0..<300 {
            let profile = ImageProfile(traces: Self.randomTraces(&rng, count: 4), imageDigest: Make.digest)
            for file in profile.files { #expect(ProfilePath.isExportable(file.path), "\(ProfilePath.quoted(file.path))") }
            let plan = PrefetchPlan(profile: profile, options: .init(minShare: Double.random(in: 0...1, using: &rng),
                                                                     budgetBytes: Bool.random(using: &rng) ? UInt64.random(in: 0...50_000, using: &rng) : nil))
            if let budget = plan.options.budgetBytes { #expect(plan.prefetchBytes <= budget) }
            for format in PrefetchFormat.allCases {
                let text = PrefetchExport.render(plan, format: format)
                #expect(throws: Never.self, "\(format)") { try PrefetchExport.check(text, format: format) }
            }
        }
    }

    @Test func parsersAndCheckersNeverCrashOnGarbageOrMutations() throws {
        var rng = SplitMix(state: 13)
        let good = [
            ImageProfile(traces: Self.randomTraces(&rng, count: 3), imageDigest: Make.digest).json().rendered(),
            Make.lines(Self.randomTraces(&rng, count: 3)),
            PrefetchExport.render(PrefetchPlan(profile: ImageProfile(traces: Self.randomTraces(&rng, count: 3), imageDigest: Make.digest)),
                                  format: .nydusJSON),
        ]
        let alphabet = Array("{}[]\":,0123456789-.eE/\\nru \n\r\tabc".utf8)
        for round in 0..<3000 {
            var bytes = Array(good[round % good.count].utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
            }
            _ = TraceFiles.parse(bytes)
            let text = String(decoding: bytes, as: UTF8.self)
            if let profile = try? ImageProfile.parse(text) {
                // whatever is accepted is as safe as what podstart makes itself
                #expect(profile.files.allSatisfy { ProfilePath.isExportable($0.path) })
                let plan = PrefetchPlan(profile: profile)
                for format in PrefetchFormat.allCases {
                    #expect(throws: Never.self) { try PrefetchExport.check(PrefetchExport.render(plan, format: format), format: format) }
                }
            }
            for format in PrefetchFormat.allCases {
                if (try? PrefetchExport.check(text, format: format)) != nil, format != .json, format != .nydusJSON {
                    #expect(!text.unicodeScalars.contains("\r") && !text.contains("/../"), "\(format) accepted \(ProfilePath.quoted(text))")
                }
            }
        }
    }
}
