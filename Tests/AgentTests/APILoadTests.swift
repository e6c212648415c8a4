import Foundation
import PodstartCore
import PodstartTestSupport
import StateStore
import Testing

/// Issue #16: `/v1` must stay bounded. The built agent, in a cgroup v1 memory cgroup limited to
/// the DaemonSet's 256 MiB, with a store of 1200 recorded starts of 400 accesses each (about
/// 90 MB of trace JSON), answers bursts of 32 concurrent `GET /v1/pods?limit=1000`: each request
/// gets 200 or a refusal (429/503), the kernel never OOM-kills the agent, and /healthz answers
/// afterwards. The peak of the cgroup's memory is printed (memory.max_usage_in_bytes): a
/// figure, never a timed or sized assertion beyond the limit itself.
@Suite(.serialized) struct APILoadTests {
    static let memoryRoot = "/sys/fs/cgroup/memory"
    static let limitBytes = 256 << 20

    /// 1200 starts, newest first from now (retention keeps them), each with 400 accesses.
    static func seed(_ directory: String) throws -> Int {
        let store = try TimelineStore(directory: directory)
        let now = TimelineStore.unixNanosecondsNow()
        let s: Int64 = 1_000_000_000
        let count = 1200
        for i in 0..<count {
            let created = now - Int64(count - i) * s
            let accesses = (0..<400).map { j in
                PodStartTrace.Access(path: "/usr/lib/python3.11/site-packages/package\(j % 40)/module_\(j)_of_start_\(i).py",
                                     layerDigest: "sha256:" + String(repeating: String(j % 10), count: 64), firstAccessMs: Double(j),
                                     opens: 1, bytes: 65_536, ranges: [[0, 32_768], [40_960, 73_728]])
            }
            let trace = PodStartTrace(
                pod: .init(namespace: "load", name: "pod-\(i)", uid: String(format: "00000000-0000-4000-8000-%012d", i)),
                created: created, ready: created + 3 * s, outcome: .ready,
                phases: [PhaseSpan(name: .pull, start: created, end: created + 2 * s, parent: nil, source: .containerd),
                         PhaseSpan(name: .start, start: created + 2 * s, end: created + 3 * s, parent: nil, source: .cri)],
                containers: [.init(name: "app", image: "registry.local/load:1", imageDigest: "sha256:" + String(repeating: "c", count: 64),
                                   accesses: accesses)])
            try store.saveSync(trace, now: now)
        }
        try store.close()
        return count
    }

    static func read(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func concurrentFullPagesInA256MiBCgroupAreAnsweredOrRefusedWithoutOOM() async throws {
        let env = try LocalEnvironment.shared()
        let binary = try LocalEnvironment.podstartBinary()
        guard FileManager.default.fileExists(atPath: Self.memoryRoot + "/memory.limit_in_bytes") else {
            throw TestServerError("no cgroup v1 memory controller at \(Self.memoryRoot): the load test needs it (mount it, or run on a hybrid-cgroup host)")
        }
        guard let curl = Command.which("curl") else { throw TestServerError("curl is not installed: apt-get install curl") }
        guard Command.which("seq") != nil, Command.which("xargs") != nil else { throw TestServerError("seq (coreutils) and xargs (findutils) are needed") }
        let state = try Command.temporaryDirectory("podstart-api-load")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let seedStart = ContinuousClock.now
        let seeded = try Self.seed(state + "/state")
        print("API load: seeded \(seeded) starts in \(ContinuousClock.now - seedStart)")

        let cgroup = "\(Self.memoryRoot)/podstart-api-load-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: cgroup, withIntermediateDirectories: false)
        defer {
            // an agent left behind by a failed expectation goes back to the parent group first
            for pid in ((try? Self.read(cgroup + "/cgroup.procs")) ?? "").split(separator: "\n") {
                try? "\(pid)".write(toFile: Self.memoryRoot + "/cgroup.procs", atomically: false, encoding: .utf8)
            }
            _ = rmdir(cgroup)
        }
        try "\(Self.limitBytes)".write(toFile: cgroup + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)
        #expect(try Int(Self.read(cgroup + "/memory.limit_in_bytes")) == Self.limitBytes)

        // The agent joins the cgroup before it execs: everything it allocates is charged there.
        let agent = try await AgentProcess.start(
            binary: binary, stateDirectory: state + "/state",
            arguments: ["--cri-endpoint", env.endpoint.description, "--no-kernel"],
            prefix: ["/bin/sh", "-c", "echo $$ > \(cgroup)/cgroup.procs && exec \"$@\"", "sh"])
        let procs = try Self.read(cgroup + "/cgroup.procs").split(separator: "\n")
        #expect(procs.contains(Substring(String(agent.process.processIdentifier))), "the agent is not in \(cgroup): \(procs)")

        // 3 bursts of 32 concurrent full-page requests, each from its own curl process
        let bodies = state + "/bodies"
        try FileManager.default.createDirectory(atPath: bodies, withIntermediateDirectories: true)
        var statuses: [Int] = []
        for burst in 0..<3 {
            // all 32 curls started by xargs before any is waited for: concurrency on the agent's
            // side, not limited by the test's thread pool. (Not a shell's `&` and `wait`: dash,
            // started from the test process, never returned from `wait` with every curl done.)
            let script = """
                seq 0 31 | xargs -P 32 -I {} sh -c \
                  "\(curl) -s -o \(bodies)/\(burst)-{}.json -w '%{http_code}' --max-time 120 \
                   'http://127.0.0.1:\(agent.port)/v1/pods?limit=1000' > \(bodies)/\(burst)-{}.code"
                """
            let (shellStatus, shellOutput) = try Command.run("/bin/sh", ["-c", script])
            #expect(shellStatus == 0, "\(shellOutput)")
            let codes = try (0..<32).map { n -> Int in
                let text = try Self.read("\(bodies)/\(burst)-\(n).code")
                guard let code = Int(text) else { throw TestServerError("curl \(burst)-\(n) wrote no status: \(text)") }
                return code
            }
            statuses += codes
        }
        let answered = statuses.filter { $0 == 200 }.count
        let refused = statuses.filter { $0 == 429 || $0 == 503 }.count
        print("API load: \(statuses.count) requests of limit=1000 over \(seeded) stored starts: \(answered) answered 200, \(refused) refused (429/503)")
        #expect(answered + refused == statuses.count, "unexpected statuses: \(statuses.filter { ![200, 429, 503].contains($0) })")
        #expect(answered > 0)
        // every answered page is whole JSON and says where the list goes on
        for file in try FileManager.default.contentsOfDirectory(atPath: bodies) where file.hasSuffix(".json") {
            let text = try String(contentsOfFile: "\(bodies)/\(file)", encoding: .utf8)
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                Issue.record("\(file) is not JSON: \(text.prefix(200))")
                continue
            }
            if let items = object["items"] as? [Any] {
                // capped by --api-max-response-mib (8 MiB by default): the list stops early and says where it goes on
                #expect(!items.isEmpty && items.count < seeded)
                #expect(object["limit"] as? Int == 1000)
                #expect(object["nextOffset"] as? Int == items.count)
            } else {
                #expect(object["status"] as? Int == 429 || object["status"] as? Int == 503, "\(file): \(text.prefix(200))")
            }
        }

        // the agent lived through it inside its limit
        #expect(agent.process.isRunning, "the agent died:\n\(agent.log.suffix(4000))")
        let oomControl = try Self.read(cgroup + "/memory.oom_control")
        #expect(oomControl.contains("oom_kill 0"), "\(oomControl)")
        #expect(oomControl.contains("under_oom 0"), "\(oomControl)")
        let (health, _) = try await agent.get("/healthz")
        #expect(health == 200)
        let peak = try Int(Self.read(cgroup + "/memory.max_usage_in_bytes")) ?? -1
        let failcnt = try Self.read(cgroup + "/memory.failcnt")
        let stat = try Self.read(cgroup + "/memory.stat").split(separator: "\n")
        let rss = stat.first { $0.hasPrefix("total_rss ") } ?? "?"
        print("API load: cgroup peak memory.max_usage_in_bytes \(peak) (\(peak >> 20) MiB of \(Self.limitBytes >> 20) MiB), failcnt \(failcnt), \(rss) bytes now")
        #expect(peak > 0 && peak <= Self.limitBytes)
        #expect(try await agent.stop() == 0)
    }
}
