import Logging
import PostgresNIO

extension PostgresJobStore {
    /// The first key of the advisory locks that serialise one tenant's limited inserts (the second is a hash of
    /// the tenant). Two-key advisory locks never meet the one-key migration lock.
    static let tenantJobsLock: Int32 = 0x5354_4E4A

    /// One transaction on every node's behalf: the tenant's advisory lock, then the count, then the insert. The
    /// lock is held until commit, so the next insert of the same tenant (on any node) counts after this one is
    /// visible: read committed takes a new snapshot per statement, and the count comes after the lock. Other
    /// tenants' inserts do not wait.
    public func insert(_ job: Job, maxActiveJobs: Int) async throws -> Job {
        let (client, logger) = (client, logger)
        // The deadline's classification unwraps the transaction's error: `TenantJobLimitReached` comes out as
        // itself, a lost connection as `DatabaseUnavailable`.
        return try await withDatabaseDeadline(timeout) {
            try await client.withTransaction(logger: logger) { connection in
                try await Self.insert(job, maxActiveJobs: maxActiveJobs, on: connection, logger: logger)
            }
        }
    }

    private static func insert(
        _ job: Job, maxActiveJobs: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> Job {
        func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
            try await connection.query(query, logger: logger).collect()
        }
        func holdingKey() async throws -> Job? {
            guard let key = job.idempotencyKey else { return nil }
            return try await rows("SELECT * FROM steno_jobs WHERE tenant = \(job.tenant) AND idempotency_key = \(key)")
                .first.map(Self.job(from:))
        }
        _ = try await rows("SELECT pg_advisory_xact_lock(\(tenantJobsLock), hashtext(\(job.tenant)))")
        // A retried submit gets its job whatever the count.
        if let existing = try await holdingKey() { return existing }
        let active = try await rows(
            "SELECT count(*) FROM steno_jobs WHERE tenant = \(job.tenant) AND state IN ('pending', 'processing')"
        ).first!.decode(Int.self)
        guard active < maxActiveJobs else { throw TenantJobLimitReached(tenant: job.tenant, limit: maxActiveJobs) }
        if let row = try await rows(insertStatement(job)).first { return try Self.job(from: row) }
        // The key was taken meanwhile by an insert without a limit (which takes no lock); it has committed, since
        // the conflict waited for it, and this new statement sees it.
        if let existing = try await holdingKey() { return existing }
        throw PostgresJobStoreError.insertFailed(id: job.id)
    }
}
