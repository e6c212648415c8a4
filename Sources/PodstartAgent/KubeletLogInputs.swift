import KubeletSources
import PodstartCore

/// The kubelet's "Observed pod startup duration" lines as correlator inputs.
public enum KubeletLogInputs {
    /// The input one line gives; nil when it is a startup line that does not parse (a source
    /// error), empty for any other line.
    public static func inputs(line: [UInt8]) -> [CorrelatorInput]? {
        switch StartupLineParser.parse(String(decoding: line, as: UTF8.self)) {
        case .success(let observation)?: return [.kubeletStartup(observation)]
        case .failure?: return nil
        case nil: return []
        }
    }

    /// As a ``LogFileSource`` parser.
    @Sendable public static func parse(line: [UInt8], context: SourceContext) -> [CorrelatorInput] {
        guard let inputs = inputs(line: line) else { context.count(); return [] }
        return inputs
    }
}
