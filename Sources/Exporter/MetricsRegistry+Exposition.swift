import Synchronization

/// How the registry's measurements are rendered in the Prometheus text and OpenMetrics
/// exposition formats.
extension MetricsRegistry {
    /// The whole exposition. Families are sorted by name and series by label value, as the
    /// kubelet prints them.
    public func render(format: ExpositionFormat) -> String {
        let s = state.withLock { $0 }  // copy out; render without holding the lock
        var out = ""
        out.reserveCapacity(s.estimatedBytes)
        let om = format == .openMetrics

        counters(&out, "podstart_api_reload_errors",
                 "Changed TLS certificate/key (tls) or API token (token) files the HTTP API could not use; it kept serving with the previous ones.", s.apiReloadErrors, om)
        counters(&out, "podstart_api_requests_refused",
                 "Requests to /v1 the HTTP API turned away, by reason (unauthenticated 401, forbidden 403, unavailable 503: the API server could not review them, overloaded 429: too many at once).", s.apiRefusals, om)

        // podstart_build_info
        family(&out, om ? "podstart_build" : "podstart_build_info", om ? "info" : "gauge",
               "Build information about the podstart binary; the value is always 1.", om)
        out += s.buildInfoLine

        counters(&out, "podstart_cri_connection_closes",
                 "Connections to the container runtime that closed under a call while the runtime ran, by outcome (retried: the call was repeated on a new connection; failed: it was not).", s.criCloses, om)

        // podstart_image_pull_bytes_total
        if !s.images.isEmpty {
            family(&out, om ? "podstart_image_pull_bytes" : "podstart_image_pull_bytes_total", "counter",
                   "Bytes of image content pulled, by image (images without a label slot are summed as other).", om)
            for image in s.images {
                out += image.pullBytesPrefix
                out += String(image.pullBytes)
                out += "\n"
            }
        }

        // podstart_image_startup_read_ratio
        let ratios = s.images.compactMap { i -> (String, Double)? in
            guard let size = i.sizeBytes, size > 0, let read = i.lastReadBytes else { return nil }
            return (i.ratioPrefix, Double(read) / Double(size))
        }
        if !ratios.isEmpty {
            family(&out, "podstart_image_startup_read_ratio", "gauge",
                   "Share of an image's unpacked bytes its containers read before ready, at the latest start (labelled images of known size only).", om)
            for (prefix, ratio) in ratios {
                out += prefix
                out += Exposition.value(ratio)
                out += "\n"
            }
        }

        // A phase gets its series once a start has had it: eleven series of 28 lines each,
        // mostly zeros, would triple the scrape for phases (init, schedule) many nodes never see.
        if s.phases.contains(where: { $0.histogram.count > 0 }) {
            family(&out, "podstart_phase_duration_seconds", "histogram",
                   "Seconds a pod start that reached ready spent in each phase; top-level phases add up to the end-to-end time, download, decompress and pull_other add up to pull; lazy_fetch is the time inside start and probe that container tasks waited on FUSE requests.", om)
            for series in s.phases where series.histogram.count > 0 { series.render(into: &out, format) }
        }

        if let k = s.kubeletSLI {
            family(&out, "podstart_kubelet_pod_start_sli_duration_seconds", "histogram",
                   "The kubelet's kubelet_pod_start_sli_duration_seconds as podstart last scraped it from the node's kubelet, beside podstart_pod_start_slo_duration_seconds.", om)
            for b in k.buckets {
                out += "podstart_kubelet_pod_start_sli_duration_seconds_bucket{le=\""
                out += Exposition.bound(b.upperBound, format)
                out += "\"} "
                out += Exposition.value(b.cumulativeCount)
                out += "\n"
            }
            out += "podstart_kubelet_pod_start_sli_duration_seconds_sum "
            out += Exposition.value(k.sum)
            out += "\npodstart_kubelet_pod_start_sli_duration_seconds_count "
            out += Exposition.value(k.count)
            out += "\n"
        }

        if s.lazyFetchRequests.value > 0 {
            counters(&out, "podstart_lazy_fetch_bytes",
                     "Bytes the replies to the FUSE requests of pod starts carried (on a lazy-pull snapshotter: image data fetched on demand while the containers started); their time is podstart_phase_duration_seconds{phase=\"lazy_fetch\"}.", [s.lazyFetchBytes], om)
            counters(&out, "podstart_lazy_fetch_requests",
                     "FUSE requests the containers of pod starts waited on before ready (lookups, opens and reads a lazy-pull snapshotter answers, fetching on demand).", [s.lazyFetchRequests], om)
        }

        family(&out, "podstart_pod_start_duration_seconds", "histogram",
               "Seconds from pod creation to ready, end to end, including image pulls and init containers (compare kubelet_pod_start_total_duration_seconds); starts that reached ready.", om)
        s.e2e.render(into: &out, format)

        family(&out, "podstart_pod_start_slo_duration_seconds", "histogram",
               "Seconds from pod creation (creationTimestamp) to the pod watch showing every container running, minus the window from the first image pull started to the last finished, as kubelet v1.28 measures kubelet_pod_start_sli_duration_seconds; starts that reached ready.", om)
        s.slo.render(into: &out, format)

        if s.warningEventsShown {
            counters(&out, "podstart_pod_start_warning_events",
                     "Warning events of recorded pod starts (the pod's events listed once when its start was recorded), by reason, each event counted as often as it occurred; reasons outside podstart's list are other.", s.warningEvents, om)
        }

        counters(&out, "podstart_pod_starts",
                 "Pod starts recorded, by outcome (ready or failed).", s.starts, om)
        family(&out, om ? "podstart_pod_starts_readiness_unknown" : "podstart_pod_starts_readiness_unknown_total", "counter",
               "Pod starts recorded ready with readiness unknown: no readiness source (API server, kubelet /pods) ran, so their end is when every container was running, not the Ready condition.", om)
        out += "podstart_pod_starts_readiness_unknown_total "
        out += String(s.readinessUnknown)
        out += "\n"

        counters(&out, "podstart_probe_events_dropped",
                 "Kernel probe records read from the ring buffer and dropped because the agent's queue was full (the agent fell behind).", [s.probeDropped], om)

        if !s.probeLost.series.isEmpty {
            counters(&out, "podstart_probe_events_lost",
                     "Kernel probe events lost before podstart read them (ring buffer full), by program.", s.probeLost.series, om)
        }
        counters(&out, "podstart_probe_events_rejected",
                 "Kernel probe records skipped because they could not be decoded, by reason (truncated, unknown_kind, unknown_version).", s.probeRejected, om)

        if !s.probeEvents.series.isEmpty {
            counters(&out, "podstart_probe_events",
                     "Kernel probe events received, by program.", s.probeEvents.series, om)
        }

        family(&out, "podstart_probes_enabled", "gauge",
               "1 while the kernel probes are loaded, 0 when podstart runs on logs and the runtime alone.", om)
        out += "podstart_probes_enabled "
        out += s.probesEnabled ? "1\n" : "0\n"

        if let line = s.runtimeInfoLine {
            family(&out, om ? "podstart_runtime" : "podstart_runtime_info", om ? "info" : "gauge",
                   "Where the container runtime keeps its files, as it reported them, and whether its new rootfs mounts reach the agent's mount table (mount_propagation private: they do not); the value is always 1.", om)
            out += line
        }

        if !s.sourceErrors.series.isEmpty {
            counters(&out, "podstart_source_errors",
                     "Errors reading an input source (malformed records, failed scrapes, lost connections), by source.", s.sourceErrors.series, om)
        }

        if !s.streamCloses.series.isEmpty {
            counters(&out, "podstart_source_stream_closes",
                     "Inputs that worked and then ended (an event stream or connection closed, a log file went away), by source; the agent reconnects.", s.streamCloses.series, om)
        }

        family(&out, "podstart_startup_read_bytes", "histogram",
               "Bytes a container read from files before its pod was ready (containers whose accesses were recorded).", om)
        s.readBytes.render(into: &out, format)

        if let healthy = s.storeHealthy {
            family(&out, "podstart_store_healthy", "gauge",
                   "1 while the state store takes saves and its file is the one the agent opened; 0 while it does not (/readyz then answers 503 with the reason).", om)
            out += healthy ? "podstart_store_healthy 1\n" : "podstart_store_healthy 0\n"
        }

        counters(&out, "podstart_store_save_failures",
                 "Finished pod starts the state store refused to save (disk full, database corrupt or gone, I/O error): in the metrics, missing from /v1.", [s.storeSaveFailures], om)

        if om { out += "# EOF\n" }
        return out
    }

    /// A counter family: OpenMetrics names the family without the `_total` its samples keep.
    private func counters(_ out: inout String, _ base: String, _ help: String, _ series: [CounterSeries], _ om: Bool) {
        family(&out, om ? base : base + "_total", "counter", help, om)
        for c in series { c.render(into: &out) }
    }

    private func family(_ out: inout String, _ name: String, _ type: String, _ help: String, _ om: Bool) {
        out += "# HELP "
        out += name
        out += " "
        out += help
        out += "\n# TYPE "
        out += name
        out += " "
        out += type
        out += "\n"
    }
}

extension HistogramSeries {
    func render(into out: inout String, _ format: ExpositionFormat) {
        let prefixes = format == .openMetrics ? openMetricsBucketPrefixes : textBucketPrefixes
        var cumulative: UInt64 = 0
        for (i, count) in histogram.bucketCounts.enumerated() {
            cumulative += count
            out += prefixes[i]
            out += String(cumulative)
            out += "\n"
        }
        out += prefixes[prefixes.count - 1]
        out += String(histogram.count)
        out += "\n"
        out += sumPrefix
        out += Exposition.value(histogram.sum)
        out += "\n"
        out += countPrefix
        out += String(histogram.count)
        out += "\n"
    }
}

extension CounterSeries {
    func render(into out: inout String) {
        out += prefix
        out += String(value)
        out += "\n"
    }
}
