import Foundation
import PodstartTestSupport
import Testing

/// The README and docs/ are the project's only reference (#20): every relative link reaches a
/// file of the repository and a heading that exists, and no page sends readers outside it.
@Suite struct DocumentationLinkTests {
    @Test func everyLinkOfTheReadmeAndDocsResolves() throws {
        let (status, output) = try Command.run("/usr/bin/python3", ["\(DeployFiles.root)/scripts/check-doc-links.py"])
        #expect(status == 0, "broken links:\n\(output)")
    }

    @Test func theCheckerReportsABrokenAnchorAndAMissingFile() throws {
        let directory = try Command.temporaryDirectory("podstart-doc-links")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let page = "\(directory)/page.md"
        try "# Title\n\n[ok](#title) [bad anchor](#no-such-heading) [missing](other.md)\n".write(toFile: page, atomically: true, encoding: .utf8)
        let (status, output) = try Command.run("/usr/bin/python3", ["\(DeployFiles.root)/scripts/check-doc-links.py", page])
        #expect(status != 0)
        #expect(output.contains("no-such-heading") && output.contains("other.md"), "\(output)")
        #expect(!output.contains("#title"), "\(output)")
    }

    @Test func noPageOrSourceCitesTheReferenceFileOutsideTheRepository() throws {
        let (_, output) = try Command.run("/usr/bin/git", ["-C", DeployFiles.root, "grep", "-n", "FORMATS.md", "--",
                                                            "README.md", "docs", "Sources", "proto", "deploy", "bpf"])
        #expect(output.isEmpty, "\(output)")
    }
}
