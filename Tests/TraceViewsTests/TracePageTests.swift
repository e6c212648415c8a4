import Foundation
import PodstartCore
import Testing
@testable import TraceViews

/// The trace page as a person sees it: rendered by a real browser (Debian's chromium, headless),
/// whose own DOM must hold every phase and every access of the trace, and whose screenshot is a
/// picture, not a blank page.
@Suite(.serialized) struct TracePageTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func trace(_ name: String) throws -> PodStartTrace {
        let text = try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
        return try PodStartTrace(json: try JSON.parse(text))
    }

    @Test(arguments: ["reader-cold.json", "real-node-init.json"])
    func everyPhaseAndAccessOfTheTraceIsInTheBrowsersDOM(fixture: String) throws {
        let trace = try Self.trace(fixture)
        let dom = try Chromium.dumpDOM(html: TracePage.render(trace))

        let phases = DOMScan.elements(in: dom, class: "phase")
        #expect(phases.count == trace.phases.count, "one drawn bar per phase")
        // drawn pull parts sit under their pull, so compare as sets of (name, parent, source, start, seconds)
        let drawnPhases = phases.map { [$0["data-name"] ?? "?", $0["data-parent"] ?? "?", $0["data-source"] ?? "?",
                                        $0["data-start-seconds"] ?? "?", $0["data-seconds"] ?? "?"] }
        let tracePhases = trace.phases.map { [$0.name.rawValue, $0.parent?.rawValue ?? "", $0.source.rawValue,
                                              String(format: "%.9f", Double($0.start - trace.created) / 1e9), String(format: "%.9f", $0.seconds)] }
        #expect(drawnPhases.sorted { $0.lexicographicallyPrecedes($1) } == tracePhases.sorted { $0.lexicographicallyPrecedes($1) })
        // the top-level phases in their order on the time line
        #expect(phases.filter { $0["data-parent"] == "" }.map { $0["data-name"] } == trace.phases.filter { $0.parent == nil }.map(\.name.rawValue))
        let accesses = DOMScan.elements(in: dom, class: "access")
        let expected = trace.containers.flatMap { c in c.accesses.map { (c.name, $0) } }
        #expect(!expected.isEmpty)
        #expect(accesses.count == expected.count, "one mark per access")
        for (drawn, (container, access)) in zip(accesses, expected) {
            #expect(drawn["data-container"] == container)
            #expect(drawn["data-path"] == access.path)
            #expect(drawn["data-layer"] == (access.layerDigest ?? ""))
            #expect(drawn["data-bytes"] == String(access.bytes))
            let at = try #require(drawn["data-at-seconds"].flatMap(Double.init))
            #expect(at >= 0, "\(access.path) drawn before created")
        }
        // the waterfall and the tables were laid out by the browser, not dropped as invalid markup
        #expect(dom.contains("<svg id=\"waterfall\""))
        #expect(dom.contains("<table class=\"phases\""))
        #expect(dom.contains("<table class=\"accesses\""))
    }

    /// Accesses sit on the time axis where they happened: the reader's first file comes after its
    /// container's first exec, which is after the pull, and before ready.
    @Test func accessesAreDrawnAtTheirTimeAfterTheContainersFirstExec() throws {
        let trace = try Self.trace("reader-cold.json")
        let dom = try Chromium.dumpDOM(html: TracePage.render(trace))
        let pullEnd = try #require(trace.phases.last { $0.name == .pull }).end
        let e2e = trace.e2eSeconds
        for drawn in DOMScan.elements(in: dom, class: "access") {
            let at = try #require(drawn["data-at-seconds"].flatMap(Double.init))
            #expect(at > Double(pullEnd - trace.created) / 1e9, "\(drawn["data-path"] ?? "") drawn inside the pull")
            #expect(at <= e2e)
        }
    }

    @Test func theScreenshotIsAPictureOfThePage() throws {
        let trace = try Self.trace("reader-cold.json")
        let dir = try TemporaryDirectory()
        let page = try Chromium.screenshot(html: TracePage.render(trace), in: dir, width: 1100, height: 760)
        let blank = try Chromium.screenshot(html: "<!DOCTYPE html><html><body></body></html>", in: dir, width: 1100, height: 760)
        let png = try PNGHeader(page)
        #expect(png.width == 1100 && png.height == 760)
        // a white page compresses to a few hundred bytes; the waterfall, its text and the tables do not
        #expect(page.count > 8 * blank.count, "page \(page.count) bytes vs blank \(blank.count)")
    }

    /// Paths come from containers: markup in them stays text, in the browser's DOM too.
    @Test func markupInAPathStaysText() throws {
        var trace = try Self.trace("reader-cold.json")
        let hostile = "/data/\"><script>document.title='owned'</script><img src=x onerror=1>&amp;"
        trace.containers[0].accesses[0].path = hostile
        trace.pod.name = "<b>pod</b>"
        let html = TracePage.render(trace)
        let dom = try Chromium.dumpDOM(html: html)
        #expect(!dom.contains("<script"))
        #expect(!dom.contains("<img"))
        #expect(!dom.contains("<b>pod</b>"))
        #expect(DOMScan.elements(in: dom, class: "access").first?["data-path"] == hostile)
    }

    /// The page fetches nothing: no URL to load, and a policy that forbids loading anyway.
    @Test func thePageNamesNothingToFetch() throws {
        for fixture in ["reader-cold.json", "real-node-init.json"] {
            let html = TracePage.render(try Self.trace(fixture))
            for needle in ["src=", "href=", "url(", "@import", "<script", "<link"] {
                #expect(!html.contains(needle), "\(fixture): \(needle)")
            }
            #expect(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""))
        }
    }

    @Test func aFailedStartSaysWhy() throws {
        var trace = try Self.trace("reader-cold.json")
        trace.outcome = .failed
        trace.ready = nil
        trace.failureReason = "not ready within 300 s"
        let dom = try Chromium.dumpDOM(html: TracePage.render(trace))
        #expect(dom.contains("<b>failed</b>"))
        #expect(dom.contains("not ready within 300 s"))
        #expect(!dom.contains("class=\"ready\""))
    }
}

/// Headless chromium, as installed by scripts/install-deps.sh. Missing → the test fails, saying so.
enum Chromium {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static var binary: String {
        get throws {
            for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] where FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
            throw Failure(description: "chromium not found: install Debian's chromium (scripts/install-deps.sh does)")
        }
    }

    static func dumpDOM(html: String) throws -> String {
        let dir = try TemporaryDirectory()
        let file = dir.path + "/page.html"
        try html.write(toFile: file, atomically: true, encoding: .utf8)
        let (status, out, err) = try run(["--dump-dom", "file://" + file], in: dir)
        guard status == 0, !out.isEmpty else { throw Failure(description: "chromium --dump-dom failed (\(status)): \(err.suffix(2000))") }
        return out
    }

    static func screenshot(html: String, in dir: TemporaryDirectory, width: Int, height: Int) throws -> Data {
        let name = "shot-\(UInt32.random(in: 0 ... .max))"
        let file = "\(dir.path)/\(name).html", png = "\(dir.path)/\(name).png"
        try html.write(toFile: file, atomically: true, encoding: .utf8)
        let (status, _, err) = try run(["--screenshot=\(png)", "--window-size=\(width),\(height)", "--hide-scrollbars", "file://" + file], in: dir)
        guard status == 0, let data = FileManager.default.contents(atPath: png) else {
            throw Failure(description: "chromium --screenshot failed (\(status)): \(err.suffix(2000))")
        }
        return data
    }

    /// One headless run, with a profile directory of its own and nothing to reach on the network.
    static func run(_ arguments: [String], in dir: TemporaryDirectory) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                             "--user-data-dir=\(dir.path)/profile", "--host-resolver-rules=MAP * ~NOTFOUND",
                             "--virtual-time-budget=2000"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = dir.path
        process.environment = environment
        let out = Pipe()
        let errPath = "\(dir.path)/chromium-\(UInt32.random(in: 0 ... .max)).err"
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        // read stdout while it runs: a DOM larger than a pipe's buffer would block it
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = FileManager.default.contents(atPath: errPath) ?? Data()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

/// Elements of a serialised DOM with a given class, their attributes decoded.
enum DOMScan {
    static func elements(in dom: String, class name: String) -> [[String: String]] {
        var found: [[String: String]] = []
        let marker = "class=\"\(name)\""
        var rest = dom[...]
        while let hit = rest.range(of: marker) {
            guard let open = rest[..<hit.lowerBound].lastIndex(of: "<"), let close = rest[hit.upperBound...].firstIndex(of: ">") else { break }
            found.append(attributes(String(rest[open...close])))
            rest = rest[close...]
        }
        return found
    }

    static func attributes(_ tag: String) -> [String: String] {
        var result: [String: String] = [:]
        var i = tag.startIndex
        while let eq = tag[i...].range(of: "=\"") {
            let nameStart = tag[..<eq.lowerBound].lastIndex(of: " ").map { tag.index(after: $0) } ?? tag.startIndex
            guard let end = tag[eq.upperBound...].firstIndex(of: "\"") else { break }
            result[String(tag[nameStart..<eq.lowerBound])] = unescape(String(tag[eq.upperBound..<end]))
            i = tag.index(after: end)
        }
        return result
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&nbsp;", with: "\u{A0}").replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Width and height from a PNG's IHDR chunk (after the 8-byte signature).
struct PNGHeader {
    var width: Int, height: Int
    init(_ data: Data) throws {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes[0 ..< 8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], bytes[12 ..< 16] == [0x49, 0x48, 0x44, 0x52] else {
            throw Chromium.Failure(description: "not a PNG")
        }
        func be(_ o: Int) -> Int { bytes[o ..< o + 4].reduce(0) { $0 << 8 | Int($1) } }
        width = be(16)
        height = be(20)
    }
}

/// A directory removed when the value goes away.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "podstart-page-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
