import Foundation
import Yams

/// The agent's `--config` file: a YAML mapping from flag names (without `--`) to values, turned
/// into command-line arguments placed before the real ones, so a flag given on the command line
/// wins (the argument parser keeps the last value). `true` is a bare flag, `false` and null leave
/// it out, a list repeats the flag.
public enum AgentConfigFile {
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The arguments `yaml` stands for; `path` only names the file in errors. Read from the
    /// YAML node tree, not through Yams' `load`, which traps on a mapping key that is not a
    /// scalar (found by Fuzz/Harnesses/yaml-config.swift: the two-line file "?" "-").
    public static func arguments(yaml: String, path: String) throws -> [String] {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch { throw Invalid(description: "--config \(path) is not valid YAML: \(error)") }
        guard let root, root.null == nil else { return [] }
        guard let mapping = root.mapping else {
            throw Invalid(description: "--config \(path) must be a mapping of flag names to values")
        }
        var values: [String: Node] = [:]  // a key given twice: the last one holds, as YAML loaders do
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string, key != "config", !key.isEmpty,
                  key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw Invalid(description: "--config \(path): '\(keyNode.scalar?.string ?? "(a list or mapping)")' is not a flag name")
            }
            values[key] = value
        }
        var arguments: [String] = []
        for key in values.keys.sorted() {
            let value = values[key]!
            if value.null != nil { continue }
            if let flag = value.bool, value.scalar != nil {
                if flag { arguments.append("--\(key)") }
                continue
            }
            if let list = value.sequence {
                for item in list {
                    guard let text = item.scalar?.string else {
                        throw Invalid(description: "--config \(path): '\(key)' holds a nested list or mapping; give plain values")
                    }
                    arguments += ["--\(key)", text]
                }
                continue
            }
            guard let text = value.scalar?.string else {
                throw Invalid(description: "--config \(path): '\(key)' is a mapping; give a plain value")
            }
            arguments += ["--\(key)", text]
        }
        return arguments
    }
}
