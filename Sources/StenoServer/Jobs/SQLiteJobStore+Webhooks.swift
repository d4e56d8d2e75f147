public import Foundation
import GRDB

/// Webhook deliveries on SQLite. Every method is one write transaction; GRDB serialises the writes of the process
/// and SQLite's write lock those of other connections, so the guarded `UPDATE … RETURNING` of a claim is atomic.
extension SQLiteJobStore: WebhookStore {
    /// Called by `insert` inside its transaction, right after the job row was written.
    static func insertWebhook(_ db: Database, jobID: UUID, _ webhook: WebhookRequest, at created: Date) throws {
        try db.execute(
            sql: """
            INSERT INTO webhook (job_id, url, header_name, header_value, next_attempt_at)
            VALUES (?, ?, ?, ?, ?)
            """,
            arguments: [webhookKey(jobID), webhook.url, webhook.headerName, webhook.headerValue, created.timeIntervalSince1970])
    }

    public func webhook(jobID: UUID) async throws -> WebhookDelivery? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM webhook WHERE job_id = ?", arguments: [Self.webhookKey(jobID)])
                .map(Self.delivery(from:))
        }
    }

    public func claimWebhooks(owner: String, limit: Int, maxAttempts: Int, leaseDuration: TimeInterval, now: Date) async throws -> [WebhookLease] {
        let token = SystemRandom.token()
        let now = now.timeIntervalSince1970
        return try await pool.write { db in
            // Every attempt started and none recorded: the node died each time. Give up rather than loop.
            try db.execute(
                sql: """
                UPDATE webhook SET state = 'failed', lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                       last_error = 'delivery interrupted ' || attempts || ' times (server crash or lost node)'
                WHERE state = 'pending' AND attempts >= ? AND lease_expires_at <= ?
                """,
                arguments: [maxAttempts, now])
            return try Row.fetchAll(
                db,
                sql: """
                UPDATE webhook SET attempts = attempts + 1, last_attempt_at = ?,
                       lease_owner = ?, lease_token = ?, lease_expires_at = ?
                WHERE job_id IN (
                    SELECT webhook.job_id FROM webhook JOIN job ON job.id = webhook.job_id
                    WHERE webhook.state = 'pending' AND webhook.attempts < ? AND webhook.next_attempt_at <= ?
                      AND (webhook.lease_expires_at IS NULL OR webhook.lease_expires_at <= ?)
                      AND job.state IN ('completed', 'failed', 'cancelled')
                    ORDER BY webhook.next_attempt_at LIMIT ?)
                RETURNING *
                """,
                arguments: [now, owner, token, now + leaseDuration, maxAttempts, now, now, limit]
            ).map { WebhookLease(delivery: try Self.delivery(from: $0), token: token, owner: owner) }
        }
    }

    public func recordWebhookAttempt(_ lease: WebhookLease, outcome: WebhookOutcome, now: Date) async throws -> Bool {
        let assignments: String
        let arguments: StatementArguments
        switch outcome {
        case .delivered(let status):
            assignments = "state = 'delivered', delivered_at = ?, last_status_code = ?, last_error = NULL"
            arguments = [now.timeIntervalSince1970, status]
        case .retry(let at, let status, let error):
            assignments = "next_attempt_at = ?, last_status_code = ?, last_error = ?"
            arguments = [at.timeIntervalSince1970, status, error]
        case .failed(let status, let error):
            assignments = "state = 'failed', last_status_code = ?, last_error = ?"
            arguments = [status, error]
        }
        return try await pool.write { db in
            try db.execute(
                sql: """
                UPDATE webhook SET \(assignments), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE job_id = ? AND state = 'pending' AND lease_token = ?
                """,
                arguments: arguments + [Self.webhookKey(lease.delivery.jobID), lease.token])
            return db.changesCount == 1
        }
    }

    private static func webhookKey(_ id: UUID) -> String { id.uuidString.lowercased() }

    private static func delivery(from row: Row) throws -> WebhookDelivery {
        guard let id = UUID(uuidString: row["job_id"]), let state = WebhookState(rawValue: row["state"]) else {
            throw DatabaseError(message: "corrupt webhook row \(String(describing: row["job_id"] as String?))")
        }
        func date(_ column: String) -> Date? { (row[column] as Double?).map(Date.init(timeIntervalSince1970:)) }
        var delivery = WebhookDelivery(
            jobID: id,
            request: WebhookRequest(url: row["url"], headerName: row["header_name"], headerValue: row["header_value"]),
            nextAttemptAt: date("next_attempt_at")!)
        delivery.state = state
        delivery.attempts = row["attempts"]
        delivery.lastAttemptAt = date("last_attempt_at")
        delivery.lastStatusCode = row["last_status_code"]
        delivery.lastError = row["last_error"]
        delivery.deliveredAt = date("delivered_at")
        delivery.leaseOwner = row["lease_owner"]
        delivery.leaseToken = row["lease_token"]
        delivery.leaseExpiresAt = date("lease_expires_at")
        return delivery
    }
}
