import AccessProfiles
import Exporter
import PodstartCore
import StateStore

/// `/v1/images/{digest}/profile?format=…`: the image's access profile, built from the starts in
/// the state store (the latest `maxStarts`) and planned with the defaults of `podstart profile
/// plan`, in any export format. The same rendering and checks as `podstart profile export`.
public struct StoreProfiles: ProfileProvider {
    public let store: TimelineStore
    public var maxStarts = 1000

    public init(store: TimelineStore, maxStarts: Int = 1000) {
        self.store = store
        self.maxStarts = maxStarts
    }

    public func profile(digest: String, format: String) async throws -> ProfileDocument? {
        guard let format = PrefetchFormat(rawValue: format) else {
            throw APIError.badRequest("unknown format '\(format)': one of \(PrefetchFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let traces = try await store.traces(imageDigest: digest, limit: maxStarts)
        guard !traces.isEmpty else { return nil }
        let plan = PrefetchPlan(profile: ImageProfile(traces: traces, imageDigest: digest))
        return ProfileDocument(contentType: format.contentType, body: try PrefetchExport.document(plan, format: format))
    }
}
