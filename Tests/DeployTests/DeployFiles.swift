import Foundation
import PodstartTestSupport
import Testing

/// Where deploy/, dashboards/, alerts/ and the tools that check them are.
enum DeployFiles {
    static let root = LocalEnvironment.repositoryRoot
    static let deploy = "\(root)/deploy"
    static let rules = "\(root)/alerts/podstart.rules.yaml"
    static let ruleTests = "\(root)/alerts/podstart.rules.test.yaml"
    static let dashboards = "\(root)/dashboards"
    static let validator = "\(root)/scripts/validate-deploy.py"
    static let imageScript = "\(root)/scripts/build-agent-image.sh"
    static let buildahImageScript = "\(root)/scripts/build-agent-image-buildah.sh"
    /// The venv scripts/install-deps.sh makes for kubernetes-validate (PyPI).
    static let python = "/opt/podstart-tools/venv/bin/python"

    static func requirePython() throws -> String {
        try #require(FileManager.default.isExecutableFile(atPath: python),
                     "\(python) is missing: run scripts/install-deps.sh (it installs kubernetes-validate from PyPI into that venv)")
        return python
    }

    static func requirePromtool() throws -> String {
        try #require(Command.which("promtool"), "promtool is not installed: run scripts/install-deps.sh (Debian package prometheus)")
    }

    /// A copy of a directory tree in a fresh temporary directory.
    static func copy(_ directory: String) throws -> String {
        let target = try Command.temporaryDirectory("podstart-deploy-copy") + "/" + URL(fileURLWithPath: directory).lastPathComponent
        try FileManager.default.copyItem(atPath: directory, toPath: target)
        return target
    }

    /// Replaces `find` (which must occur) with `replace` in a file.
    static func edit(_ path: String, _ find: String, _ replace: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try #require(text.contains(find), "\(path) does not contain \(find)")
        try text.replacingOccurrences(of: find, with: replace).write(toFile: path, atomically: true, encoding: .utf8)
    }
}
