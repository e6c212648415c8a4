import Foundation

/// Generates a large kubelet + containerd journal from the recorded samples for
/// `podstart-bench analyze`: each block is the sample's pod start (V3 lines with containerd's CRI
/// lines) under a new pod name and new sandbox/container ids, followed by realistic noise —
/// the sample's own noise lines plus the kubelet and containerd chatter a busy node logs between
/// pod starts (probe failures, volume reconciler, PLEG, housekeeping, containerd exec/shim lines).
public struct BenchJournalGenerator {
    /// Lines of one pod start (from the sample), with placeholders substituted per block.
    let podStartLines: [String]
    let noiseLines: [String]
    /// Noise lines written after each pod start.
    public var noiseLinesPerPod: Int

    /// `sampleJournal`: the text of kubelet-journal-sample.log.
    public init(sampleJournal: String, noiseLinesPerPod: Int = 200) {
        let lines = sampleJournal.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        // A line belongs to the pod start when it names the pod, its sandbox or its containers,
        // or is a containerd CRI line; the rest is the sample's own noise.
        let ids = ["web-7d9f8c6b5-x2kqz", "3f0c2a7e-5b1d-4c3e-9a8f-1d2e3f4a5b6c", "7e10671b7c3d2d50", "8c9b2b6b5f884f64",
                   "242c19404ac903bc", "PullImage", "Pulled image", "ImageCreate", "ImageUpdate", "stop pulling",
                   "coredns-6f6b679f8f-5m7kq"]
        podStartLines = lines.filter { l in ids.contains { l.contains($0) } }
        var noise = lines.filter { l in !ids.contains { l.contains($0) } }
        noise += Self.extraNoise
        noiseLines = noise
        self.noiseLinesPerPod = noiseLinesPerPod
    }

    static let extraNoise: [String] = [
        #"Nov 29 16:13:21 ip-10-0-12-34 kubelet[2775]: I1129 16:13:21.212077    2775 prober.go:107] "Probe failed" probeType="Readiness" pod="monitoring/prometheus-k8s-0" podUID="b7e0c1d2-3f4a-4b5c-8d6e-7f8091a2b3c4" containerName="prometheus" probeResult="failure" output="HTTP probe failed with statuscode: 503""#,
        #"Nov 29 16:13:22 ip-10-0-12-34 kubelet[2775]: I1129 16:13:22.540219    2775 reconciler_common.go:300] "Volume detached for volume \"config\" (UniqueName: \"kubernetes.io/configmap/8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f-config\") on node \"ip-10-0-12-34.ec2.internal\" DevicePath \"\"""#,
        #"Nov 29 16:13:23 ip-10-0-12-34 kubelet[2775]: I1129 16:13:23.001932    2775 kubelet.go:2465] "SyncLoop (PLEG): event for pod" pod="monitoring/node-exporter-7xk2p" event={"ID":"5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d","Type":"ContainerStarted","Data":"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"}"#,
        #"Nov 29 16:13:24 ip-10-0-12-34 kubelet[2775]: E1129 16:13:24.540198    2775 kubelet.go:2860] "Housekeeping took longer than expected" err="housekeeping took too long" expected="1s" actual="1.427s""#,
        #"Nov 29 16:13:25 ip-10-0-12-34 kubelet[2775]: I1129 16:13:25.118403    2775 kubelet_pods.go:906] "Unable to retrieve pull secret, the image pull may not succeed." pod="monitoring/node-exporter-7xk2p" secret="" err="secret \"regcred\" not found""#,
        #"Nov 29 16:13:26 ip-10-0-12-34 containerd[2506]: time="2024-11-29T16:13:26.402877120Z" level=info msg="ExecSync for \"b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2\" with command [/bin/sh -c pg_isready -U postgres] and timeout 1 (s)""#,
        #"Nov 29 16:13:26 ip-10-0-12-34 containerd[2506]: time="2024-11-29T16:13:26.431558190Z" level=info msg="ExecSync for \"b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2\" returns with exit code 0""#,
        #"Nov 29 16:13:27 ip-10-0-12-34 containerd[2506]: time="2024-11-29T16:13:27.102921305Z" level=warning msg="cleaning up after shim disconnected" id=4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4 namespace=k8s.io"#,
        #"Nov 29 16:13:28 ip-10-0-12-34 kubelet[2775]: I1129 16:13:28.663241    2775 pod_container_deletor.go:53] "DeleteContainer returned error" containerID={"Type":"containerd","ID":"5b7c1c2e0f1a9d3e7a64b1e2c3d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c"} err="failed to get container status \"5b7c1c2e0f1a9d3e\": rpc error: code = NotFound desc = not found""#,
        #"Nov 29 16:13:29 ip-10-0-12-34 kubelet[2775]: W1129 16:13:29.880127    2775 cpu_manager.go:419] "RemoveStaleState: removing container" podUID="9a41c7d2-0b6e-4f13-8c25-d7e8f9a0b1c2" containerName="worker""#,
        #"Nov 29 16:13:30 ip-10-0-12-34 containerd[2506]: time="2024-11-29T16:13:30.221077411Z" level=info msg="RemoveContainer for \"5b7c1c2e0f1a9d3e7a64b1e2c3d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c\" returns successfully""#,
    ]

    /// Writes blocks until at least `bytes` have been written; returns the number of pod starts
    /// (two per block: the sample's web pod and its coredns pod).
    public func write(to path: String, bytes: Int64) throws -> Int {
        guard let fh = FileHandle(forWritingAtPath: path) ?? {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { throw CocoaError(.fileWriteNoPermission) }
        defer { try? fh.close() }
        var written: Int64 = 0
        var block = 0
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var noiseIndex = 0
        while written < bytes {
            let tag = Self.tag(block)
            for l in podStartLines {
                // Same-length substitutions keep every line's shape intact.
                let s = l.replacingOccurrences(of: "x2kqz", with: tag)
                    .replacingOccurrences(of: "5m7kq", with: tag)
                    .replacingOccurrences(of: "7e10671b", with: Self.hex8(block))
                    .replacingOccurrences(of: "8c9b2b6b", with: Self.hex8(block &+ 0x4000_0000))
                    .replacingOccurrences(of: "242c1940", with: Self.hex8(block &+ 0x8000_0000))
                out.append(contentsOf: s.utf8)
                out.append(10)
            }
            for _ in 0..<noiseLinesPerPod {
                out.append(contentsOf: noiseLines[noiseIndex % noiseLines.count].utf8)
                out.append(10)
                noiseIndex += 1
            }
            block += 1
            if out.count >= 1 << 20 {
                fh.write(Data(out))
                written += Int64(out.count)
                out.removeAll(keepingCapacity: true)
            }
        }
        if !out.isEmpty { fh.write(Data(out)); written += Int64(out.count) }
        return block * 2
    }

    /// Five lowercase base-36 characters, like a ReplicaSet pod suffix.
    static func tag(_ n: Int) -> String {
        let digits = Array("0123456789bcdfghjklmnpqrstvwxz")
        var v = n, s = ""
        for _ in 0..<5 { s.append(digits[v % digits.count]); v /= digits.count }
        return s
    }

    static func hex8(_ n: Int) -> String {
        let h = String(UInt32(truncatingIfNeeded: n), radix: 16)
        return String(repeating: "0", count: 8 - h.count) + h
    }
}
