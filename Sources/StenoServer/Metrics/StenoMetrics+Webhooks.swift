import CoreMetrics

extension StenoMetrics {
    /// One webhook attempt: its result (`2xx`…`5xx`, `error` for no answer, `refused` for a blocked address)
    /// and how long it took.
    func webhookAttempt(result: String, seconds: Double) {
        Counter(label: "steno_webhook_attempts_total", dimensions: [("result", result)], factory: factory).increment()
        Timer(label: "steno_webhook_attempt_seconds", factory: factory).recordSeconds(seconds)
    }

    /// A delivery that reached its final state.
    func webhookFinished(_ state: WebhookState) {
        Counter(label: "steno_webhook_deliveries_total", dimensions: [("status", state.rawValue)], factory: factory).increment()
    }
}
