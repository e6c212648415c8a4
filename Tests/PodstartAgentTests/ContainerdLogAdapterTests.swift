import PodstartAgent
import PodstartCore
import Testing

/// containerd's own log from the real node, line by line through the containerd-log adapter, as
/// the agent's LogFileSource hands it over.
@Suite struct ContainerdLogAdapterTests {
    let inputs: [CorrelatorInput]
    let unreadable: Int

    init() throws {
        let adapter = ContainerdLogInputs()
        var inputs: [CorrelatorInput] = []
        var unreadable = 0
        for line in try Recordings.lines("containerd.log") {
            if let got = adapter.inputs(line: line) { inputs += got } else { unreadable += 1 }
        }
        self.inputs = inputs
        self.unreadable = unreadable
    }

    @Test func everyCompletedCallOfTheRecordingBecomesOneInput() {
        func count(_ kind: String) -> Int { inputs.filter { $0.line.hasPrefix("{\"input\":\"\(kind)\"") }.count }
        // `grep -c` on the recording: 16 "returns sandbox id", 15 "PullImage … returns image
        // reference", 17 "returns container id", 17 "StartContainer … returns successfully".
        #expect(count("sandbox") == 16)
        #expect(count("pull") == 15)
        #expect(count("containerCreated") == 17)
        #expect(count("containerStarted") == 17)
        #expect(inputs.count == 16 + 15 + 17 + 17)
        #expect(unreadable == 0)
    }

    @Test func podAReaderHasTheExactTimesContainerdLogged() {
        let uid = "5efcd879-ac24-40ee-8026-d96bfc2064f1"
        let sandbox = "fb69da6826bb40e41dabf2e1f5aad408a7afc52d5e5bcfb786ae95a68753ca68"
        let container = "0a1c20773e5db248bda464a8f761835fe409219b3210ac7289be34a62434289e"
        let expected: [CorrelatorInput] = [
            .sandbox(SandboxCreation(uid: uid, sandboxID: sandbox, beginUnixNs: Recordings.unixNs("2026-12-06T03:01:08.836629805"),
                     endUnixNs: Recordings.unixNs("2026-12-06T03:01:08.973695005"), source: .containerd)),
            .pull(ImagePull(uid: nil, image: "127.0.0.1:35000/podstart-test/reader:latest", beginUnixNs: Recordings.unixNs("2026-12-06T03:01:08.979195649"),
                  endUnixNs: Recordings.unixNs("2026-12-06T03:01:09.106676817"), source: .containerd)),
            .containerCreated(ContainerCreation(uid: uid, containerID: container, name: "reader", image: "", imageDigest: nil, isInit: false,
                              beginUnixNs: Recordings.unixNs("2026-12-06T03:01:09.109527024"), endUnixNs: Recordings.unixNs("2026-12-06T03:01:09.122874571"),
                              source: .containerd)),
            .containerStarted(ContainerStart(containerID: container, beginUnixNs: Recordings.unixNs("2026-12-06T03:01:09.124360271"),
                              endUnixNs: Recordings.unixNs("2026-12-06T03:01:09.180850872"), source: .containerd)),
        ]
        #expect(Array(inputs.prefix(4)).map(\.line) == expected.map(\.line))
        #expect(Recordings.unixNs("2026-12-06T03:01:08.836629805") == 1_796_526_068_836_629_805)
    }

    @Test func theInitContainerOfPodDBelongsToItsPod() {
        let created = inputs.map(\.line).filter { $0.contains("\"containerId\":\"27e561e9a9e899ff9f32d66c0c8a8f695115c26fe9136caad36e30ba9e3b02fc\"") }
        #expect(created.count == 2)  // created, started
        #expect(created.first?.contains("\"uid\":\"e36c87c9-3d49-40a3-a06a-70616177371e\",") == true)
        #expect(created.first?.contains("\"name\":\"init\"") == true)
    }

    @Test func aMangledCRILineIsAnErrorAndOtherLinesAreNot() {
        let adapter = ContainerdLogInputs()
        #expect(adapter.inputs(line: Array(#"time="2026-12-06T03:01:09.124360271Z" level=info msg="loading plugin""#.utf8)) == [])
        // a CRI message whose time is unreadable: counted as a source error by the agent
        #expect(adapter.inputs(line: Array(#"time="yesterday" level=info msg="StartContainer for \"0a1c\"""#.utf8)) == nil)
    }
}
