public import Foundation
import Logging
import PostgresNIO

/// Webhook deliveries on PostgreSQL, shared by every node. Claims lock their rows with `FOR UPDATE SKIP LOCKED`
/// (nodes claiming at once skip each other's rows instead of waiting or taking them twice); outcomes are written
/// only under the claim's lease token.
extension PostgresJobStore: WebhookStore {
    /// `insert`'s statement with the job's webhook written by the same statement (so in its transaction): the
    /// insert becomes a CTE whose row, if any, also gets its `steno_webhooks` row. Unchanged without a webhook.
    static func insertingWebhook(of job: Job, _ insert: PostgresQuery) -> PostgresQuery {
        guard let webhook = job.webhook else { return insert }
        var query = insert
        let first = query.binds.count + 1
        query.sql = """
            WITH inserted AS (
            \(query.sql)
            ), webhook AS (
                INSERT INTO steno_webhooks (job_id, url, header_name, header_value, next_attempt_at)
                SELECT id, $\(first), $\(first + 1), $\(first + 2), $\(first + 3) FROM inserted
            )
            SELECT * FROM inserted
            """
        query.binds.append(webhook.url)
        query.binds.append(webhook.headerName)
        query.binds.append(webhook.headerValue)
        query.binds.append(job.createdAt)
        return query
    }

    public func webhook(jobID: UUID) async throws -> WebhookDelivery? {
        try await all("SELECT * FROM steno_webhooks WHERE job_id = \(jobID)").first.map(Self.delivery(from:))
    }

    public func claimWebhooks(owner: String, limit: Int, maxAttempts: Int, leaseDuration: TimeInterval, now: Date) async throws -> [WebhookLease] {
        let token = SystemRandom.token()
        let expiry = now.addingTimeInterval(leaseDuration)
        // Two parts on disjoint rows, as in the job claim: deliveries whose every attempt was interrupted fail;
        // then the due ones of terminal jobs are taken, oldest due first.
        let rows = try await all(
            """
            WITH exhausted AS (
                UPDATE steno_webhooks SET state = 'failed', lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                       last_error = 'delivery interrupted ' || attempts || ' times (server crash or lost node)'
                WHERE job_id IN (
                    SELECT job_id FROM steno_webhooks
                    WHERE state = 'pending' AND attempts >= \(maxAttempts) AND lease_expires_at <= \(now)
                    FOR UPDATE SKIP LOCKED)
                RETURNING job_id
            )
            UPDATE steno_webhooks SET attempts = attempts + 1, last_attempt_at = \(now),
                   lease_owner = \(owner), lease_token = \(token), lease_expires_at = \(expiry)
            WHERE job_id IN (
                SELECT hook.job_id FROM steno_webhooks hook JOIN steno_jobs job ON job.id = hook.job_id
                WHERE hook.state = 'pending' AND hook.attempts < \(maxAttempts) AND hook.next_attempt_at <= \(now)
                  AND (hook.lease_expires_at IS NULL OR hook.lease_expires_at <= \(now))
                  AND job.state IN ('completed', 'failed', 'cancelled')
                ORDER BY hook.next_attempt_at LIMIT \(limit)
                FOR UPDATE OF hook SKIP LOCKED)
            RETURNING *
            """
        )
        return try rows.map { WebhookLease(delivery: try Self.delivery(from: $0), token: token, owner: owner) }
    }

    public func recordWebhookAttempt(_ lease: WebhookLease, outcome: WebhookOutcome, now: Date) async throws -> Bool {
        let id = lease.delivery.jobID
        let query: PostgresQuery
        switch outcome {
        case .delivered(let status):
            query = """
                UPDATE steno_webhooks SET state = 'delivered', delivered_at = \(now), last_status_code = \(status),
                       last_error = NULL, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE job_id = \(id) AND state = 'pending' AND lease_token = \(lease.token)
                RETURNING 1
                """
        case .retry(let at, let status, let error):
            query = """
                UPDATE steno_webhooks SET next_attempt_at = \(at), last_status_code = \(status), last_error = \(error),
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE job_id = \(id) AND state = 'pending' AND lease_token = \(lease.token)
                RETURNING 1
                """
        case .failed(let status, let error):
            query = """
                UPDATE steno_webhooks SET state = 'failed', last_status_code = \(status), last_error = \(error),
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE job_id = \(id) AND state = 'pending' AND lease_token = \(lease.token)
                RETURNING 1
                """
        }
        return try await changedOne(query)
    }

    private static func delivery(from row: PostgresRow) throws -> WebhookDelivery {
        let value = PostgresColumns(row, table: "steno_webhooks")
        var delivery = WebhookDelivery(
            jobID: try value("job_id"),
            request: WebhookRequest(url: try value("url"), headerName: try value("header_name"), headerValue: try value("header_value")),
            nextAttemptAt: try value("next_attempt_at"))
        delivery.state = try value.enumeration("state")
        delivery.attempts = try value("attempts")
        delivery.lastAttemptAt = try value("last_attempt_at")
        delivery.lastStatusCode = try value("last_status_code")
        delivery.lastError = try value("last_error")
        delivery.deliveredAt = try value("delivered_at")
        delivery.leaseOwner = try value("lease_owner")
        delivery.leaseToken = try value("lease_token")
        delivery.leaseExpiresAt = try value("lease_expires_at")
        return delivery
    }
}
