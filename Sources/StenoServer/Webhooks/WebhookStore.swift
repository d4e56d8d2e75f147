public import Foundation

/// A job store that also keeps webhook deliveries. The delivery is written by `insert` in the job's own
/// transaction (from `Job.webhook`), so an accepted job never lacks its callback, even after a crash; rows
/// go with their job (the cleaner's `delete`). Both stores pass `WebhookStoreContract` in the tests.
public protocol WebhookStore: JobStore {
    func webhook(jobID: UUID) async throws -> WebhookDelivery?
    /// Takes up to `limit` deliveries that are due: pending, `nextAttemptAt` reached, no live lease, and their
    /// job terminal (completed, failed or cancelled). Counts an attempt on each. Deliveries whose lease expired
    /// with every attempt used (their node died mid-attempt each time) become `failed` instead. Two callers,
    /// on one node or several, never take the same delivery.
    func claimWebhooks(owner: String, limit: Int, maxAttempts: Int, leaseDuration: TimeInterval, now: Date) async throws -> [WebhookLease]
    /// Records the outcome of an attempt. False (and nothing written) when the lease is no longer held.
    func recordWebhookAttempt(_ lease: WebhookLease, outcome: WebhookOutcome, now: Date) async throws -> Bool
}
