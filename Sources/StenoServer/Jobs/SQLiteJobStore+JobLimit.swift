import GRDB

extension SQLiteJobStore {
    /// The counts and the insert in one write transaction: GRDB runs the process's writes one at a time, and one
    /// process owns the file, so no other insert can come between them.
    public func insert(_ job: Job, limits: InsertLimits) async throws -> Job {
        try await pool.write { db in
            if let key = job.idempotencyKey,
               let existing = try Row.fetchOne(
                   db, sql: "SELECT * FROM job WHERE tenant = ? AND idempotency_key = ?", arguments: [job.tenant, key]) {
                return try Self.job(from: existing)
            }
            if let limit = limits.maxActiveJobsPerTenant {
                let active = try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM job WHERE tenant = ? AND state IN ('pending', 'processing')",
                    arguments: [job.tenant]) ?? 0
                guard active < limit else { throw TenantJobLimitReached(tenant: job.tenant, limit: limit) }
            }
            if let limit = limits.maxPendingJobs {
                let pending = try Int.fetchOne(db, sql: "SELECT count(*) FROM job WHERE state = 'pending'") ?? 0
                guard pending < limit else { throw QueueFull(limit: limit) }
            }
            return try Self.insert(job, db)
        }
    }
}
