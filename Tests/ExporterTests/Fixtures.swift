import Exporter
import Foundation
import PodstartCore

/// Small, fixed pod starts the exporter tests share.
enum Fixtures {
    static let t0: Int64 = 1_700_000_000_000_000_000
    static let s: Int64 = 1_000_000_000
    static let appDigest = "sha256:" + String(repeating: "ab", count: 32)

    /// Ready after 3 s: pull 0–2.5 s (all download), start 2.5–3 s; read 300,000 bytes.
    static func readyStart(uid: String = "0b8c6a4e-1f0d-4c7e-9a51-3d2f7e6b1a01", name: String = "web-7d9f8",
                           created: Int64 = t0, image: String = "registry.local/app:1") -> PodStartTrace {
        PodStartTrace(
            pod: .init(namespace: "default", name: name, uid: uid), created: created, ready: created + 3 * s, outcome: .ready,
            phases: [
                PhaseSpan(name: .pull, start: created, end: created + 5 * s / 2, parent: nil, source: .containerd),
                PhaseSpan(name: .download, start: created, end: created + 5 * s / 2, parent: .pull, source: .kernel),
                PhaseSpan(name: .start, start: created + 5 * s / 2, end: created + 3 * s, parent: nil, source: .cri),
            ],
            containers: [.init(name: "app", image: image, imageDigest: appDigest, accesses: [
                .init(path: "/bin/app", layerDigest: nil, firstAccessMs: 0, opens: 1, bytes: 100_000, ranges: [[0, 100_000]]),
                .init(path: "/lib/libc.so", layerDigest: nil, firstAccessMs: 1, opens: 2, bytes: 200_000, ranges: [[0, 200_000]]),
            ])])
    }

    /// Failed after a 30 s pull.
    static func failedStart(created: Int64 = t0 + 10 * s) -> PodStartTrace {
        PodStartTrace(
            pod: .init(namespace: "batch", name: "job-x", uid: "5f0e2d1c-0000-4000-8000-000000000002"), created: created, ready: nil,
            outcome: .failed, failureReason: "ErrImagePull",
            phases: [PhaseSpan(name: .pull, start: created, end: created + 30 * s, parent: nil, source: .kubeletLog)],
            containers: [.init(name: "job", image: "registry.local/other:2", imageDigest: nil)])
    }

    static func registry(imageLabelLimit: Int = 20) -> MetricsRegistry {
        MetricsRegistry(configuration: .init(imageLabelLimit: imageLabelLimit, buildInfo: BuildInfo(version: "0.1.0", revision: "abc123")))
    }
}
