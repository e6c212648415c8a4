// KubeletSources: what the kubelet (and containerd) already know about pod starts, read without
// an agent on the node's critical path. Sources only produce typed values; phases are decided
// by the correlator (PodstartCore).
//
//  logs      StartupLineParser     "Observed pod startup duration", V1–V4, klog text and JSON
//            ContainerdLineParser  CRI pull / sandbox / container lines of containerd
//            KubeletLogScanner     chunked byte scanning (memmem), reader thread, counters
//            PodStartAssembler     containerd steps + startup line → PodStartReport per pod
//            StartupSummary        percentiles per namespace, slowest pods, SLO breaches
//            LogFileTailer         follow a file across rotation, resume from TailPosition
//            JournalctlReader      journald via `journalctl -o json`, cursor resume
//  metrics   PrometheusText        text format 0.0.4 and OpenMetrics
//            KubeletMetrics        pod-start metrics (docs/inputs.md#kubelet-metrics), per-interval percentiles
//  status    PodStatus             Pod subset, PodStatusReport (the correlator's pod record), Pulled messages
//            KubeStatusSources     kubelet /metrics and /pods, API-server list + watch
//            KubeEndpoint          service-account endpoints for HTTPTransport (its own module)
