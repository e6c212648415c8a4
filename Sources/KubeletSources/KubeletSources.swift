// Kubelet sources: log lines, /metrics, pod status and events (see issue "Kubelet sources").
