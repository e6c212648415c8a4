import Exporter
import Foundation
import HummingbirdTesting
import PodstartCore
import StateStore
import Testing

@Suite("The API served from the state store")
struct StoreBackedAPITests {
    /// What the agent does: saves starts, restarts, and serves them from the reopened store.
    @Test func startsSavedBeforeARestartAreServedAfterIt() async throws {
        let dir = try StoreFixtures.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
            for i in 0..<75 { try await store.save(StoreFixtures.trace(i)) }
            try store.close()
        }
        let store = try TimelineStore(directory: dir, configuration: StoreFixtures.noRetention)
        let responder = APIResponder(metrics: MetricsRegistry(configuration: .init(buildInfo: BuildInfo(version: "t"))),
                                     timelines: store, readiness: Readiness())
        let app = try APIServer.application(responder: responder, listen: ListenAddress(host: "127.0.0.1", port: 0))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/pods?limit=50&offset=50", method: .get) { r in
                #expect(r.status == .ok)
                let body = try JSON.parse(String(buffer: r.body))
                let uids = body["items"]?.arrayValue?.compactMap { $0["pod"]?["uid"]?.stringValue } ?? []
                #expect(uids.count == 25)
                #expect(uids.first == "uid-24" && uids.last == "uid-0")
                #expect(body["nextOffset"]?.isNull == true)
            }
            try await client.execute(uri: "/v1/pods/uid-7", method: .get) { r in
                let trace = try PodStartTrace(json: JSON.parse(String(buffer: r.body)))
                #expect(trace == StoreFixtures.trace(7))
            }
            try await client.execute(uri: "/v1/images", method: .get) { r in
                let body = try JSON.parse(String(buffer: r.body))
                #expect(body["items"]?.arrayValue?.first?["digest"]?.stringValue == StoreFixtures.digestA)
                #expect(body["items"]?.arrayValue?.first?["starts"]?.int64Value == 75)
            }
        }
    }
}
