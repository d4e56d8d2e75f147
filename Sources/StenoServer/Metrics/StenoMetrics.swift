public import Prometheus
import CoreMetrics

/// The service's metrics, on a registry of their own (so every application built in a process, as in the
/// tests, has its own) and served by `/metrics` in the Prometheus text format.
public struct StenoMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["steno_processing_seconds"] =
            [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600].map { .seconds($0) }
        factory.valueHistogramBuckets["steno_real_time_factor"] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]
        self.factory = factory
    }

    /// Jobs that reached a terminal state, by state.
    func finished(_ state: JobState) {
        Counter(label: "steno_jobs_finished_total", dimensions: [("status", state.rawValue)], factory: factory).increment()
    }

    func accepted() {
        Counter(label: "steno_jobs_accepted_total", factory: factory).increment()
    }

    func retried() {
        Counter(label: "steno_jobs_retried_total", factory: factory).increment()
    }

    /// A worker's write refused because its lease was no longer held (the job was cancelled, or rescued by
    /// another worker after this one stalled past its lease): `write` is heartbeat, complete, fail or release.
    func rejectedWrite(_ write: String) {
        Counter(label: "steno_rejected_writes_total", dimensions: [("write", write)], factory: factory).increment()
    }

    /// Claims of a job that was claimed before: retries after a transient error, and rescues of jobs whose worker
    /// died or stalled past its lease (summed over nodes, reclaimed minus retried counts the rescues).
    func reclaimed() {
        Counter(label: "steno_jobs_reclaimed_total", factory: factory).increment()
    }

    /// One transcription: wall time, audio length and their ratio (below 1 is faster than real time).
    func transcribed(processingSeconds: Double, audioSeconds: Double) {
        Timer(label: "steno_processing_seconds", factory: factory).recordSeconds(processingSeconds)
        FloatingPointCounter(label: "steno_audio_seconds_total", factory: factory).increment(by: audioSeconds)
        if audioSeconds > 0 {
            Recorder(label: "steno_real_time_factor", factory: factory).record(processingSeconds / audioSeconds)
        }
    }

    /// Current jobs by state, and the queue depth (pending jobs), read from the store at each scrape.
    func jobs(_ counts: [JobState: Int]) {
        for (state, count) in counts {
            Gauge(label: "steno_jobs", dimensions: [("status", state.rawValue)], factory: factory).record(count)
        }
        Gauge(label: "steno_queue_depth", factory: factory).record(counts[.pending] ?? 0)
    }

    func httpRequest(method: String, route: String, status: Int, seconds: Double) {
        Timer(
            label: "steno_http_request_duration_seconds",
            dimensions: [("method", method), ("route", route), ("status", String(status))],
            factory: factory
        ).recordSeconds(seconds)
    }

    public func render() -> String { registry.emitToString() }
}
