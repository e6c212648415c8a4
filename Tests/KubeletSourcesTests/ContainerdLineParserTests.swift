import Foundation
@testable import KubeletSources
import PodstartCore
import Testing

/// containerd's CRI lines of both generations, on real recordings (containerd 2.3.4 and the 1.6.20
/// of a real v1.28 node), with exact values.
@Suite struct ContainerdLineParserTests {
    typealias Kind = ContainerdCRIEvent.Kind

    static func events(_ text: String) -> (events: [ContainerdCRIEvent], malformed: [String], lines: Int) {
        var events: [ContainerdCRIEvent] = [], malformed: [String] = []
        var lines = 0
        for line in text.split(separator: "\n") {
            lines += 1
            switch ContainerdLineParser.parse(String(line)) {
            case .event(let e)?: events.append(e)
            case .malformed(let why)?: malformed.append(why + " ← " + line)
            case nil: break
            }
        }
        return (events, malformed, lines)
    }

    static let sandbox = "0e24f14d20a4b8edd721d832341c72e37259d94b8180247097321097737fc177"
    static let container = "67181c8bce8959bf74b2b6f4116d1c080562d2c4f55c5c8eac4b03222dc07032"
    static let reader = "127.0.0.1:35000/podstart-test/reader:latest"
    static let large = "127.0.0.1:35000/podstart-test/large-layer:compressible"
    static let missing = "127.0.0.1:35000/podstart-test/does-not-exist:latest"

    /// Every CRI line of one pod's life under containerd 2.3.4, in order, with containerd's
    /// timestamps to the nanosecond.
    @Test func containerd2LinesOfOnePodParseWithExactValues() throws {
        let (events, malformed, _) = Self.events(try Samples.text("containerd-2.3/containerd-2.3.4-cri-lines.log"))
        #expect(malformed.isEmpty, "\(malformed)")
        let pod = "podstart/trace-5d36e90a", uid = "5d36e90a-c6b9-4da0-999a-6f61cae47f7f"
        let expected: [(Int64, Kind, ContainerdLogGeneration?)] = [
            (1796528500000546420, .sandboxRequested(pod: pod, uid: uid, attempt: 0), .v2),
            (1796528500073840373, .sandboxReady(pod: pod, uid: uid, sandboxID: Self.sandbox), .v2),
            (1796528500080366399, .pullStarted(image: Self.reader), nil),
            (1796528500173583428, .pulled(image: Self.reader, sizeBytes: 1_436_402, durationNanoseconds: 93_179_984), nil),
            (1796528500173949140, .pullFinished(image: Self.reader,
                                                imageRef: "sha256:901ea26b4b4988cb6fc3ea5f420a71646be124141ae0ba37674a6096276ce614"), nil),
            (1796528500179071896, .containerCreateRequested(sandboxID: Self.sandbox, name: "main"), .v2),
            (1796528500196138220, .containerCreated(sandboxID: Self.sandbox, name: "main", containerID: Self.container), .v2),
            (1796528500197807835, .containerStartRequested(containerID: Self.container), nil),
            (1796528500242249889, .containerStarted(containerID: Self.container), nil),
            (1796528501058737160, .containerExited(containerID: Self.container), .v2),
            // 2.x: one shim per pod, so its disconnect names the sandbox.
            (1796528501106043363, .containerExited(containerID: Self.sandbox), nil),
            (1796528507712850826, .pullStarted(image: Self.large), nil),
            (1796528508497041378, .pulled(image: Self.large, sizeBytes: 2_494_068, durationNanoseconds: 784_161_863), nil),
            (1796528508497067749, .pullFinished(image: Self.large,
                                                imageRef: "sha256:23953344b4cb63016c5357aaa1fb00b02afef13851984af95a417d29eb4628c1"), nil),
            (1796528845616765636, .pullStarted(image: Self.missing), nil),
            (1796528845622410377, .pullFailed(image: Self.missing), nil),
        ]
        #expect(events.count == expected.count)
        for (e, x) in zip(events, expected) {
            #expect(e.time.nanosecondsSinceEpoch == x.0 && e.kind == x.1 && e.generation == x.2, "\(e) ≠ \(x)")
        }
    }

    /// The whole containerd 2.3.4 log (several pods): every RunPodSandbox, CreateContainer,
    /// StartContainer, PullImage, Pulled and exit line is an event whose values are the ones an
    /// independent reading of the line (regular expressions on the raw text) finds.
    @Test func everyCRILineOfTheContainerd2LogParsesToTheValuesInTheLine() throws {
        let text = try Samples.text("containerd-2.3/containerd-2.3.4-full.log")
        let sandboxRE = #/msg="RunPodSandbox for name:\\"([^\\]+)\\"  uid:\\"([^\\]+)\\"  namespace:\\"([^\\]+)\\"( returns sandbox id \\"([0-9a-f]{64})\\")?"/#
        let createRE = #/msg="CreateContainer within sandbox \\"([0-9a-f]{64})\\" for (container )?name:\\"([^\\]+)\\"( returns container id \\"([0-9a-f]{64})\\")?"/#
        let startRE = #/msg="StartContainer for \\"([0-9a-f]{64})\\"( returns successfully)?"/#
        let pullRE = #/msg="PullImage \\"([^\\]+)\\"( returns image reference \\"(sha256:[0-9a-f]{64})\\"| failed)?"/#
        let pulledRE = #/msg="Pulled image \\"([^\\]+)\\" with .* size \\"([0-9]+)\\" in ([0-9.]+)(ms|s)"/#
        let exitRE = #/msg="received container exit event container_id:\\"([0-9a-f]{64})\\"  id:\\"([0-9a-f]{64})\\"/#
        let shimRE = #/msg="shim disconnected" id=([0-9a-f]{64})/#
        var counts: [String: Int] = [:]
        for raw in text.split(separator: "\n") {
            let line = String(raw)
            let outcome = ContainerdLineParser.parse(line)
            var want: Kind?
            if let m = line.firstMatch(of: sandboxRE) {
                let pod = "\(m.3)/\(m.1)"
                want = m.5.map { .sandboxReady(pod: pod, uid: String(m.2), sandboxID: String($0)) }
                    ?? .sandboxRequested(pod: pod, uid: String(m.2), attempt: 0)
            } else if let m = line.firstMatch(of: createRE) {
                want = m.5.map { .containerCreated(sandboxID: String(m.1), name: String(m.3), containerID: String($0)) }
                    ?? .containerCreateRequested(sandboxID: String(m.1), name: String(m.3))
            } else if let m = line.firstMatch(of: startRE) {
                want = m.2 == nil ? .containerStartRequested(containerID: String(m.1)) : .containerStarted(containerID: String(m.1))
            } else if let m = line.firstMatch(of: pullRE) {
                if let ref = m.3 { want = .pullFinished(image: String(m.1), imageRef: String(ref)) }
                else if m.2 != nil { want = .pullFailed(image: String(m.1)) }
                else { want = .pullStarted(image: String(m.1)) }
            } else if let m = line.firstMatch(of: pulledRE) {
                let value = Double(m.3)! * (m.4 == "ms" ? 1e6 : 1e9)
                want = .pulled(image: String(m.1), sizeBytes: Int64(m.2)!, durationNanoseconds: Int64(value.rounded()))
            } else if let m = line.firstMatch(of: exitRE) {
                #expect(m.1 == m.2)
                want = .containerExited(containerID: String(m.1))
            } else if let m = line.firstMatch(of: shimRE) {
                want = .containerExited(containerID: String(m.1))
            }
            guard let want else {
                if case .malformed(let why)? = outcome { Issue.record("\(why): \(line)") }
                continue
            }
            guard case .event(let e)? = outcome else {
                Issue.record("not parsed (\(String(describing: outcome))): \(line)")
                continue
            }
            #expect(e.kind == want, "\(line)")
            counts["\(want)".prefix { $0 != "(" }.description, default: 0] += 1
        }
        #expect(counts == ["sandboxRequested": 22, "sandboxReady": 22, "containerCreateRequested": 21, "containerCreated": 21,
                           "containerStartRequested": 21, "containerStarted": 21, "pullStarted": 22, "pullFinished": 21,
                           "pullFailed": 1, "pulled": 21, "containerExited": 43])
    }

    /// protobuf-go separates fields by one or two spaces, chosen per build: both read alike.
    @Test func oneSpaceBetweenProtobufTextFieldsReadsTheSame() throws {
        let two = try Samples.text("containerd-2.3/containerd-2.3.4-cri-lines.log")
        let one = two.replacingOccurrences(of: "\\\"  ", with: "\\\" ").replacingOccurrences(of: "  exit", with: " exit")
        #expect(one != two)
        let a = Self.events(two), b = Self.events(one)
        #expect(b.malformed.isEmpty, "\(b.malformed)")
        #expect(a.events == b.events)
    }

    /// Zero-valued fields are left out in 2.x; a non-zero attempt is written, unquoted.
    @Test func attemptAndLeftOutFieldsOfProtobufText() {
        let line = #"time="2026-12-06T03:41:40.000546420Z" level=info msg="RunPodSandbox for name:\"web-0\"  uid:\"u-1\"  namespace:\"prod\"  attempt:2""#
        guard case .event(let e)? = ContainerdLineParser.parse(line) else { Issue.record("not parsed"); return }
        #expect(e.kind == .sandboxRequested(pod: "prod/web-0", uid: "u-1", attempt: 2))
        // An exec'd process (a probe) exiting is not the container exiting.
        let exec = #"time="2026-12-06T03:41:41.058737160Z" level=info msg="received container exit event container_id:\"aaa\"  id:\"bbb\"  pid:7  exit_status:0  exited_at:{seconds:1796528501  nanos:58380285}""#
        #expect(ContainerdLineParser.parse(exec) == nil)
    }

    /// The containerd 1.6.20 log of a real v1.28 node: still every CRI line parsed, in the 1.x shape.
    @Test func containerd16LinesOfARealNodeStillParse() throws {
        let (events, malformed, _) = Self.events(try Samples.text("real-cluster-1.28/containerd.log"))
        #expect(malformed.isEmpty, "\(malformed)")
        var counts: [String: Int] = [:]
        for e in events { counts["\(e.kind)".prefix { $0 != "(" }.description, default: 0] += 1 }
        #expect(counts == ["sandboxRequested": 16, "sandboxReady": 16, "containerCreateRequested": 17, "containerCreated": 17,
                           "containerStartRequested": 17, "containerStarted": 17, "pullStarted": 15, "pullFinished": 15,
                           "containerExited": 33])
        for e in events {
            switch e.kind {
            case .sandboxRequested, .sandboxReady, .containerCreateRequested, .containerCreated: #expect(e.generation == .v1)
            default: #expect(e.generation == nil)
            }
        }
        #expect(events[0].time.nanosecondsSinceEpoch == 1_796_526_068_836_629_805)
        #expect(events[0].kind == .sandboxRequested(pod: "default/pod-a-reader", uid: "5efcd879-ac24-40ee-8026-d96bfc2064f1", attempt: 0))
        #expect(events[1].kind == .sandboxReady(pod: "default/pod-a-reader", uid: "5efcd879-ac24-40ee-8026-d96bfc2064f1",
                                                sandboxID: "fb69da6826bb40e41dabf2e1f5aad408a7afc52d5e5bcfb786ae95a68753ca68"))
    }

    /// A damaged line with a tracked message is counted with a reason, never dropped silently:
    /// real 2.x lines cut short or altered.
    @Test func damagedContainerdLinesAreMalformedWithAReason() throws {
        let lines = try Samples.text("containerd-2.3/containerd-2.3.4-cri-lines.log").split(separator: "\n").map(String.init)
        func line(_ prefix: String) throws -> String { try #require(lines.first { $0.contains("msg=\"" + prefix) }) }
        let request = try line("RunPodSandbox for name")
        let ready = try #require(lines.first { $0.contains("returns sandbox id") })
        let create = try line("CreateContainer within sandbox")
        let start = try line("StartContainer for")
        let exit = try line("received container exit event")
        let pull = try line("PullImage")
        var damaged: [String] = []
        damaged.append(request.replacingOccurrences(of: "  namespace:", with: "  namespace"))  // a field without its colon
        damaged.append(request.replacingOccurrences(of: "uid:\\\"5d36e90a", with: "uid:5d36e90a"))  // an unquoted string…
        damaged.append(ready.replacingOccurrences(of: " returns sandbox id ", with: " returns sandbox "))
        damaged.append(String(ready.dropLast(20)) + "\"")  // the id cut off
        damaged.append(create.replacingOccurrences(of: " for container name:", with: " for container nme "))
        damaged.append(start.replacingOccurrences(of: "\\\"\"", with: "\\\" again\""))
        damaged.append(exit.replacingOccurrences(of: "container_id:", with: "containr_id:"))
        damaged.append(pull.replacingOccurrences(of: "\\\"\"", with: "\\\" retunrs image reference\""))
        damaged.append(request.replacingOccurrences(of: "time=\"2026-12-06T03:41:40.000546420Z\"", with: "time=\"2026-12-06T03:41:4\""))
        damaged.append(request.replacingOccurrences(of: "\\\"trace-5d36e90a\\\"", with: "\\\"\\\""))  // an empty pod name
        damaged.append(String(request.dropLast(1)))  // msg not terminated
        for d in damaged {
            #expect(d != request && !lines.contains(d), "the damage did not apply: \(d)")
            guard case .malformed(let why)? = ContainerdLineParser.parse(d) else {
                Issue.record("not counted as malformed: \(d)")
                continue
            }
            #expect(!why.isEmpty)
        }
    }

    /// `analyze` reads 2.x logs without malformed lines, and names the generation it saw.
    @Test func analyzeNamesTheContainerdVersionTheLinesLookLike() throws {
        for (file, version, events) in [("containerd-2.3/containerd-2.3.4-full.log", "containerd 2.x", 236),
                                        ("real-cluster-1.28/containerd.log", "containerd 1.x", 163)] {
            let scanner = KubeletLogScanner { _ in }
            scanner.feed(try Samples.text(file))
            scanner.finish()
            #expect(scanner.counters.containerdMalformed == 0, "\(file): \(scanner.counters.containerdMalformedReasons)")
            #expect(scanner.counters.containerdEvents == events, "\(file)")
            #expect(StartupSummary.containerdVersion(scanner.counters) == version)
            var summary = StartupSummary()
            #expect(summary.jsonLine(counters: scanner.counters).contains("\"containerdVersion\":\"\(version)\""))
            #expect(summary.table(counters: scanner.counters).contains("the CRI lines look like \(version)"))
        }
    }
}
