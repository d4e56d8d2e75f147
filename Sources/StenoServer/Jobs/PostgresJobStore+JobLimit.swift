import Logging
import PostgresNIO

extension PostgresJobStore {
    /// The first key of the advisory locks that serialise limited inserts: with the second key 0, the lock of
    /// the whole queue (`maxPendingJobs`); otherwise the second key is a hash of the tenant (the tenant's bound
    /// alone). Two-key advisory locks never meet the one-key migration lock.
    static let tenantJobsLock: Int32 = 0x5354_4E4A

    /// One transaction on every node's behalf: the advisory lock, then the counts, then the insert. The lock is
    /// held until commit, so the next limited insert (on any node) counts after this one is visible: read
    /// committed takes a new snapshot per statement, and the counts come after the lock. With the tenant's bound
    /// alone other tenants' inserts do not wait; the queue bound serialises every limited insert (a few
    /// milliseconds each, next to an upload's seconds).
    public func insert(_ job: Job, limits: InsertLimits) async throws -> Job {
        guard !limits.isEmpty else { return try await insert(job) }
        let (client, logger) = (client, logger)
        // The deadline's classification unwraps the transaction's error: `TenantJobLimitReached` and `QueueFull`
        // come out as themselves, a lost connection as `DatabaseUnavailable`.
        return try await withDatabaseDeadline(timeout) {
            try await client.withTransaction(logger: logger) { connection in
                try await Self.insert(job, limits: limits, on: connection, logger: logger)
            }
        }
    }

    private static func insert(
        _ job: Job, limits: InsertLimits, on connection: PostgresConnection, logger: Logger
    ) async throws -> Job {
        func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
            try await connection.query(query, logger: logger).collect()
        }
        func holdingKey() async throws -> Job? {
            guard let key = job.idempotencyKey else { return nil }
            return try await rows("SELECT * FROM steno_jobs WHERE tenant = \(job.tenant) AND idempotency_key = \(key)")
                .first.map(Self.job(from:))
        }
        if limits.maxPendingJobs != nil {
            _ = try await rows("SELECT pg_advisory_xact_lock(\(tenantJobsLock), 0)")
        } else {
            _ = try await rows("SELECT pg_advisory_xact_lock(\(tenantJobsLock), hashtext(\(job.tenant)))")
        }
        // A retried submit gets its job whatever the counts.
        if let existing = try await holdingKey() { return existing }
        if let limit = limits.maxActiveJobsPerTenant {
            let active = try await rows(
                "SELECT count(*) FROM steno_jobs WHERE tenant = \(job.tenant) AND state IN ('pending', 'processing')"
            ).first!.decode(Int.self)
            guard active < limit else { throw TenantJobLimitReached(tenant: job.tenant, limit: limit) }
        }
        if let limit = limits.maxPendingJobs {
            let pending = try await rows("SELECT count(*) FROM steno_jobs WHERE state = 'pending'").first!.decode(Int.self)
            guard pending < limit else { throw QueueFull(limit: limit) }
        }
        if let row = try await rows(insertStatement(job)).first { return try Self.job(from: row) }
        // The key was taken meanwhile by an insert without a limit (which takes no lock); it has committed, since
        // the conflict waited for it, and this new statement sees it.
        if let existing = try await holdingKey() { return existing }
        throw PostgresJobStoreError.insertFailed(id: job.id)
    }
}
