import PodstartCore

extension PodStartTrace {
    /// The download / decompress / pull_other parts that tile one top-level `pull` span, in order.
    func parts(of pull: PhaseSpan) -> [PhaseSpan] {
        phases.filter { $0.parent == .pull && $0.start >= pull.start && $0.end <= pull.end }
    }
}
