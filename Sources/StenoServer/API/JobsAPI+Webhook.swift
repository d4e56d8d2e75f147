import Foundation

extension JobsAPI {
    /// The status with the job's webhook delivery, when it has one. The custom header's value is never shown.
    func withWebhook(_ status: Components.Schemas.JobStatus) async throws -> Components.Schemas.JobStatus {
        guard let webhooks, let id = UUID(uuidString: status.jobId), let delivery = try await webhooks.webhook(jobID: id) else {
            return status
        }
        var status = status
        status.webhook = .init(
            url: delivery.request.url,
            status: .init(rawValue: delivery.state.rawValue)!,
            attempts: delivery.attempts,
            lastAttemptAt: delivery.lastAttemptAt,
            lastStatusCode: delivery.lastStatusCode,
            lastError: delivery.lastError,
            nextAttemptAt: delivery.state == .pending ? delivery.nextAttemptAt : nil,
            deliveredAt: delivery.deliveredAt)
        return status
    }
}
