import AccessProfiles
import PodstartCore
import Testing

@Suite struct ProfileMergeTests {
    let threeStarts = [
        Make.trace("u1", imageBytes: 10_000, [.init(path: "/bin/app", ms: 1, ranges: [[0, 100]]), .init(path: "/lib/a.so", ms: 2, ranges: [[0, 4096]])]),
        Make.trace("u2", imageBytes: 10_000, [.init(path: "/bin/app", ms: 5, ranges: [[50, 100]]), .init(path: "/lib/a.so", ms: 4, ranges: [[8192, 4096]])]),
        Make.trace("u3", imageBytes: 10_000, [.init(path: "/bin/app", ms: 3, ranges: [[200, 10]]), .init(path: "/etc/conf", ms: 0.5)]),
    ]

    @Test func perFileStartCountsMediansAndRangeUnionsOverStarts() throws {
        let p = ImageProfile(traces: threeStarts, imageDigest: Make.digest)
        #expect(p.starts == 3)
        let app = try #require(p.files.first { $0.path == "/bin/app" })
        #expect(app.starts == 3)
        #expect(app.medianFirstAccessMs == 3)
        #expect(app.ranges == [ByteRange(offset: 0, length: 150), ByteRange(offset: 200, length: 10)])
        #expect(app.bytes == 160)
        #expect(app.layerDigest == Make.layer0)
        let lib = try #require(p.files.first { $0.path == "/lib/a.so" })
        #expect(lib.starts == 2)
        #expect(lib.medianFirstAccessMs == 3, "mean of the middle two of 2 and 4")
        #expect(lib.ranges == [ByteRange(offset: 0, length: 4096), ByteRange(offset: 8192, length: 4096)])
        #expect(p.files.map(\.path) == ["/etc/conf", "/bin/app", "/lib/a.so"], "ordered by median first access, then path")
        #expect(p.readBytes == 160 + 8192)
        #expect(p.imageBytes == 10_000)
        #expect(p.readShare == Double(160 + 8192) / 10_000)
        #expect(p.references == ["registry.test/app:1"])
    }

    @Test func mergingProfilesThatShareStartsCountsEachStartOnce() throws {
        var a = ImageProfile(traces: Array(threeStarts[0...1]), imageDigest: Make.digest)
        let b = ImageProfile(traces: Array(threeStarts[1...2]), imageDigest: Make.digest)
        a.merge(b)
        let whole = ImageProfile(traces: threeStarts, imageDigest: Make.digest)
        #expect(a == whole)
        #expect(a.starts == 3)
        #expect(a.files.first { $0.path == "/bin/app" }?.starts == 3)
        let before = a
        a.merge(b)
        a.merge(a)
        #expect(a == before, "merging what is already in is a no-op")
    }

    @Test func addingTheSameTraceTwiceCountsOnce() {
        let p = ImageProfile(traces: [threeStarts[0], threeStarts[0]], imageDigest: Make.digest)
        #expect(p.starts == 1)
        #expect(p.files.allSatisfy { $0.starts == 1 })
    }

    @Test func mergingAProfileOfAnotherImageChangesNothing() {
        var p = ImageProfile(traces: threeStarts, imageDigest: Make.digest)
        let before = p
        p.merge(ImageProfile(traces: [Make.trace("x", digest: Make.otherDigest, [.init(path: "/x", ms: 0)])], imageDigest: Make.otherDigest))
        #expect(p == before)
    }

    @Test func filesNotFromTheImageAndOtherImagesContainersAreLeftOut() {
        let t = Make.trace("u9", [.init(path: "/bin/app", ms: 1), .init(path: "/tmp/ready", ms: 9, layer: nil)])
        var other = Make.trace("u9b", digest: Make.otherDigest, [.init(path: "/other", ms: 1)])
        other.containers[0].name = "sidecar"
        let p = ImageProfile(traces: [t, other], imageDigest: Make.digest)
        #expect(p.files.map(\.path) == ["/bin/app"])
        #expect(p.starts == 1, "a start without a container of the image is not one of its starts")
    }

    @Test func twoContainersOfTheImageInOneStartAreOneStart() throws {
        var t = Make.trace("u1", [.init(path: "/bin/app", ms: 4, ranges: [[0, 10]], opens: 1)])
        t.containers.append(.init(name: "second", image: "registry.test/app:1", imageDigest: Make.digest, accesses: [
            PodStartTrace.Access(path: "/bin/app", layerDigest: Make.layer0, firstAccessMs: 2, opens: 2, bytes: 10, ranges: [[100, 10]]),
        ]))
        let p = ImageProfile(traces: [t], imageDigest: Make.digest)
        let app = try #require(p.files.first)
        #expect(app.starts == 1)
        #expect(app.medianFirstAccessMs == 2)
        #expect(app.opens == 3)
        #expect(app.ranges == [ByteRange(offset: 0, length: 10), ByteRange(offset: 100, length: 10)])
    }

    @Test func jsonRoundTripsAndIsVersioned() throws {
        let p = ImageProfile(traces: threeStarts, imageDigest: Make.digest)
        let text = p.json().rendered()
        #expect(text.hasPrefix("{\"schemaVersion\":\"podstart.dev/profile/v1\""))
        let back = try ImageProfile.parse(text)
        #expect(back == p)
        // merging after a round trip still counts starts once
        var merged = back
        merged.merge(p)
        #expect(merged == p)
    }

    @Test(arguments: [
        ("schemaVersion", "\"podstart.dev/profile/v2\"", "schemaVersion"),
        ("imageDigest", "\"sha256:nothex\"", "imageDigest"),
        ("starts", "7", "\"starts\" is 7"),
    ])
    func jsonWithAWrongFieldIsRefusedNamingIt(field: String, value: String, expected: String) throws {
        let p = ImageProfile(traces: threeStarts, imageDigest: Make.digest)
        guard case .object(var fields) = p.json() else { Issue.record("not an object"); return }
        let i = try #require(fields.firstIndex { $0.0 == field })
        fields[i].1 = try JSON.parse(value)
        let error = #expect(throws: ImageProfile.DecodeError.self) { try ImageProfile(json: .object(fields)) }
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
    }

    @Test func jsonWithAnUnsafePathOrAStraySampleIsRefused() throws {
        let p = ImageProfile(traces: [threeStarts[0]], imageDigest: Make.digest)
        let text = p.json().rendered()
        for (bad, expected) in [(text.replacingOccurrences(of: "\"/bin/app\"", with: "\"/bin/../etc/shadow\""), "'..'"),
                                (text.replacingOccurrences(of: "\"/bin/app\"", with: "\"/bin/a\\npp\""), "newline"),
                                (text.replacingOccurrences(of: "\"samples\":[[0,", with: "\"samples\":[[5,"), "start 5")] {
            #expect(bad != text)
            let error = #expect(throws: ImageProfile.DecodeError.self) { try ImageProfile.parse(bad) }
            #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        }
    }
}
