// libFuzzer harness: the agent's --config file (YAML, read by Yams) turned into flags. Whatever
// the file holds, the result is an error naming the file or arguments that are each a flag
// ("--name") followed by plain values.
import PodstartAgent

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYAMLConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let arguments = try? AgentConfigFile.arguments(yaml: text, path: "config.yaml") else { return 0 }
    guard arguments.first.map({ $0.hasPrefix("--") }) ?? true else { fatalError("arguments start with a value: \(arguments)") }
    return 0
}
