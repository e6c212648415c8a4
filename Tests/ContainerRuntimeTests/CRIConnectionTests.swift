@testable import ContainerRuntime
import Foundation
import PodstartTestSupport
import Synchronization
import Testing

extension ContainerRuntimeIntegration {
    /// The CRI connection against the local containerd: held for longer than the ~20 s after
    /// which it used to close, and closed on purpose (a relay that drops it) while the runtime runs.
    @Suite struct CRIConnectionTests {
        let env: LocalEnvironment

        init() throws { env = try LocalEnvironment.shared() }

        /// One client, a running pod, 65 s of the calls the agent makes when it polls (sandboxes,
        /// containers, a container's status, every 250 ms: ~12 calls a second, each drawing a PING
        /// from containerd), which used to lose the connection every ~17 s: no call fails, no
        /// connection closes under a call, and the client moved to new connections on its own.
        @Test func oneClientHeldPastTheCloseIntervalNeverFailsNorCloses() async throws {
            let closesBefore = CRIConnection.closeCount
            var failures: [String] = []
            var calls = 0
            var opened = 0
            _ = try await PodStarter(endpoint: env.endpoint).run(env.options(image: "small-files:latest"), whileReady: { record in
                try await CRIClient.withClient(endpoint: env.endpoint) { client in
                    let end = ContinuousClock.now + .seconds(65)
                    var round = 0
                    while ContinuousClock.now < end {
                        do {
                            _ = try await client.listPodSandboxes()
                            let containers = try await client.listContainers()
                            #expect(containers.contains { $0.id == record.containerID })
                            let status = try await client.containerStatus(id: record.containerID)
                            #expect(status.state == .running)
                            calls += 3
                            if round % 8 == 0 {
                                _ = try await client.podSandboxStatus(id: record.sandboxID)
                                _ = try await client.imageStatus(env.image("small-files:latest"))
                                calls += 2
                            }
                        } catch {
                            failures.append("\(ContinuousClock.now): \(error)")
                        }
                        round += 1
                        try await Task.sleep(for: .milliseconds(250))
                    }
                    opened = client.connectionsOpened
                }
            })
            #expect(calls >= 3 * 200, "only \(calls) calls")
            #expect(failures.isEmpty, "failed calls: \(failures)")
            #expect(CRIConnection.closeCount == closesBefore, "the connection closed \(CRIConnection.closeCount - closesBefore) times")
            #expect(opened >= calls / CRIConnection.callsPerConnection, "\(opened) connections for \(calls) calls")
        }

        /// The cause, seen on the wire: a relay logging HTTP/2 frames between a fast-polling client
        /// and containerd. containerd sends a PING per call; before connections were rotated the
        /// client answered the 201st within 30 s with GOAWAY ENHANCE_YOUR_CALM and closed. Now no
        /// GOAWAY is sent and no call fails over 40 s.
        @Test func aFastPollDrawsNoGoAwayFromTheClient() async throws {
            let proxy = try CuttingProxy(upstreamPath: env.endpoint.socketPath)
            proxy.recordFrames = true
            defer { proxy.stop() }
            var failures: [String] = []
            try await CRIClient.withClient(endpoint: CRIEndpoint(socketPath: proxy.path)) { client in
                let end = ContinuousClock.now + .seconds(40)
                while ContinuousClock.now < end {
                    do {
                        _ = try await client.listPodSandboxes()
                        _ = try await client.listContainers()
                        _ = try await client.version()
                    } catch {
                        failures.append("\(error)")
                    }
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            let frames = proxy.frames
            #expect(frames.contains { $0.contains("runtime→client") && $0.contains("PING ack=0") },
                    "containerd sent no PING: the relay saw nothing of the cause")
            #expect(!frames.contains { $0.contains("GOAWAY") }, "\(frames.filter { $0.contains("GOAWAY") })")
            #expect(failures.isEmpty, "\(failures)")
            #expect(proxy.counts.connections >= 2)
        }

        /// A connection dropped under a call that is safe to repeat: the call is made again on a
        /// new connection and succeeds; the close is reported once, naming the method.
        @Test func aCallWhoseConnectionClosesIsRepeatedOnceAndTheCloseIsCounted() async throws {
            let proxy = try CuttingProxy(upstreamPath: env.endpoint.socketPath)
            defer { proxy.stop() }
            let seen = Mutex<[CRIConnection.Close]>([])
            let token = CRIConnection.addObserver { close in
                if close.socket == proxy.path { seen.withLock { $0.append(close) } }
            }
            defer { CRIConnection.removeObserver(token) }
            let endpoint = CRIEndpoint(socketPath: proxy.path)
            try await CRIClient.withClient(endpoint: endpoint) { client in
                let first = try await client.listContainers()
                proxy.cutNextRequest()
                let second = try await client.listContainers()
                #expect(second.map(\.id).sorted() == first.map(\.id).sorted())
                _ = try await client.version()
            }
            #expect(proxy.counts.cuts == 1)
            #expect(proxy.counts.connections >= 2, "the repeated call ran on a new connection")
            let closes = seen.withLock { $0 }
            #expect(closes.count == 1)
            #expect(closes.first?.method == "ListContainers" && closes.first?.retried == true)
            // the transport's words, whichever it used ("Stream unexpectedly closed.", or "subchannel
            // is unavailable" with the close as its cause, when the cut lands before the stream opens)
            #expect(closes.first.map { !$0.detail.isEmpty } == true, "\(closes)")
        }

        /// A start whose connection closes is not repeated (it may have taken effect), and the
        /// error says the runtime is running — never "containerd not running?".
        @Test func aStartWhoseConnectionClosesIsNotRepeatedNorCalledNotRunning() async throws {
            let proxy = try CuttingProxy(upstreamPath: env.endpoint.socketPath)
            defer { proxy.stop() }
            let endpoint = CRIEndpoint(socketPath: proxy.path)
            try await CRIClient.withClient(endpoint: endpoint) { client in
                _ = try await client.version()
                proxy.cutNextRequest()
                do {
                    try await client.startContainer(id: "podstart-no-such-container")
                    Issue.record("StartContainer succeeded through a cut connection")
                } catch let error as CRIError {
                    guard case let .connectionClosed(_, method, _, retried) = error else {
                        Issue.record("expected connectionClosed, got \(error)")
                        return
                    }
                    #expect(method == "StartContainer" && !retried)
                    #expect(error.description.contains("the runtime is running"))
                    #expect(!error.description.contains("not running?"))
                }
            }
            #expect(proxy.counts.cuts == 1)
        }

        /// A runtime that really stops (SIGTERM, socket removed) under a held client: reported as
        /// not running, not counted as a connection close, not repeated.
        @Test func aRuntimeThatStopsIsStillReportedAsNotRunning() async throws {
            let closesBefore = CRIConnection.closeCount
            try await CRIClient.withClient(endpoint: env.endpoint) { client in
                _ = try await client.version()
                try await env.withContainerdStopped {
                    do {
                        _ = try await client.version()
                        Issue.record("Version answered with containerd stopped")
                    } catch let error as CRIError {
                        #expect(error.description.contains("containerd not running?"), "\(error)")
                    }
                }
            }
            #expect(CRIConnection.closeCount == closesBefore)
        }
    }
}
