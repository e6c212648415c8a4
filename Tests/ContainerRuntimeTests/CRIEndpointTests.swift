import Testing
@testable import ContainerRuntime

@Suite struct CRIEndpointTests {
    @Test func unixURLAndBarePathParseToTheSameSocket() throws {
        #expect(try CRIEndpoint(parsing: "unix:///run/containerd/containerd.sock").socketPath
            == "/run/containerd/containerd.sock")
        #expect(try CRIEndpoint(parsing: "/run/x.sock").socketPath == "/run/x.sock")
        #expect(CRIEndpoint(socketPath: "/a.sock").description == "unix:///a.sock")
    }

    @Test func nonUnixAndRelativeEndpointsAreRejected() {
        #expect(throws: CRIError.self) { try CRIEndpoint(parsing: "tcp://127.0.0.1:1234") }
        #expect(throws: CRIError.self) { try CRIEndpoint(parsing: "unix://relative.sock") }
    }

    @Test func missingSocketErrorNamesThePathAndTheFix() {
        let endpoint = CRIEndpoint(socketPath: "/nonexistent/podstart-test/containerd.sock")
        do {
            try endpoint.checkSocket()
            Issue.record("checkSocket accepted a missing socket")
        } catch {
            let text = error.description
            #expect(text.contains("/nonexistent/podstart-test/containerd.sock"))
            #expect(text.contains("containerd not running? start it or pass --cri-endpoint"))
        }
    }
}
