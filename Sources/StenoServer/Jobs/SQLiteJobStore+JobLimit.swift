import GRDB

extension SQLiteJobStore {
    /// The count and the insert in one write transaction: GRDB runs the process's writes one at a time, and one
    /// process owns the file, so no other insert can come between them.
    public func insert(_ job: Job, maxActiveJobs: Int) async throws -> Job {
        try await pool.write { db in
            if let key = job.idempotencyKey,
               let existing = try Row.fetchOne(
                   db, sql: "SELECT * FROM job WHERE tenant = ? AND idempotency_key = ?", arguments: [job.tenant, key]) {
                return try Self.job(from: existing)
            }
            let active = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM job WHERE tenant = ? AND state IN ('pending', 'processing')",
                arguments: [job.tenant]) ?? 0
            guard active < maxActiveJobs else { throw TenantJobLimitReached(tenant: job.tenant, limit: maxActiveJobs) }
            return try Self.insert(job, db)
        }
    }
}
