import PodstartCore

extension PodStartTrace {
    /// The download / decompress / pull_other parts that tile one top-level `pull` span, in order.
    func parts(of pull: PhaseSpan) -> [PhaseSpan] {
        phases.filter { $0.parent == .pull && $0.name != .lazyFetch && $0.start >= pull.start && $0.end <= pull.end }
    }

    /// The `lazy_fetch` pieces inside one top-level span, in order.
    func lazyFetchPieces(of span: PhaseSpan) -> [PhaseSpan] {
        phases.filter { $0.name == .lazyFetch && $0.parent == span.name && $0.start >= span.start && $0.end <= span.end }
            .sorted { $0.start < $1.start }
    }
}
