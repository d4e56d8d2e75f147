public import Foundation
public import Logging
public import PostgresNIO

/// The job store on PostgreSQL, shared by any number of Steno nodes.
///
/// Every method is one statement (so one transaction): claims lock their row with `FOR UPDATE SKIP LOCKED`, so
/// nodes claiming at once never wait for each other nor take the same job; a worker's writes carry its lease
/// token in their `WHERE` clause, so a stale worker's write matches no row. Times come from the caller (`now`),
/// never from the database's clock.
///
/// The store does not own its `PostgresClient`: the caller runs it (`PostgresClient` is a `Service`; put it in the
/// application's `ServiceGroup` before anything that uses the store) and shares it with other users of the
/// database. Queries wait until the client runs. Call `migrate()` once the client runs, before first use.
public final class PostgresJobStore: JobStore {
    let client: PostgresClient
    let logger: Logger
    /// Longest wait for one statement, connection included: past it the call throws `DatabaseUnavailable`.
    let timeout: Duration

    public init(client: PostgresClient, timeout: Duration = .seconds(10), logger: Logger = Logger(label: "steno.jobs.postgres")) {
        self.client = client
        self.timeout = timeout
        self.logger = logger
    }

    public func insert(_ job: Job) async throws -> Job {
        // A key already taken: the insert waits for the row's transaction if it is still open, then writes
        // nothing, and the job holding the key is read in a new statement (which sees that commit). Should that
        // job be deleted in between, the key is free again and the insert is retried.
        for _ in 0..<3 {
            if let row = try await one(Self.insertStatement(job)) {
                return try Self.job(from: row)
            }
            guard let key = job.idempotencyKey else { break }
            if let existing = try await self.job(idempotencyKey: key, tenant: job.tenant) { return existing }
        }
        throw PostgresJobStoreError.insertFailed(id: job.id)
    }

    /// The job's row (and its webhook's), or no row when its tenant's idempotency key is taken.
    static func insertStatement(_ job: Job) -> PostgresQuery {
        insertingWebhook(of: job,
            """
            INSERT INTO steno_jobs (id, state, language, prompt, word_timestamps, options, created_at, expires_at,
                                    run_after, attempts, max_attempts, progress, audio_path, audio_bytes,
                                    idempotency_key, tenant)
            VALUES (\(job.id), \(job.state.rawValue), \(job.options.language), \(job.options.prompt),
                    \(job.options.wordTimestamps), \(job.options.storedJSON), \(job.createdAt), \(job.expiresAt), \(job.runAfter),
                    0, \(job.maxAttempts), 0, \(job.audioPath), \(job.audioBytes), \(job.idempotencyKey),
                    \(job.tenant))
            ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING *
            """)
    }

    public func job(idempotencyKey: String, tenant: String) async throws -> Job? {
        try await one("SELECT * FROM steno_jobs WHERE tenant = \(tenant) AND idempotency_key = \(idempotencyKey)")
            .map(Self.job(from:))
    }

    public func job(id: UUID) async throws -> Job? {
        try await one("SELECT * FROM steno_jobs WHERE id = \(id)").map(Self.job(from:))
    }

    public func list(tenant: String, state: JobState?, before: Int64?, limit: Int) async throws -> [Job] {
        try await all(
            """
            SELECT * FROM steno_jobs
            WHERE tenant = \(tenant)
              AND (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
              AND (\(before)::bigint IS NULL OR seq < \(before))
            ORDER BY seq DESC LIMIT \(limit)
            """
        ).map(Self.job(from:))
    }

    public func queuePosition(id: UUID) async throws -> Int? {
        try await one(
            """
            SELECT (SELECT count(*) FROM steno_jobs ahead WHERE ahead.state = 'pending' AND ahead.seq < job.seq) + 1
            FROM steno_jobs job WHERE job.id = \(id) AND job.state = 'pending'
            """
        ).map { try $0.decode(Int.self) }
    }

    public func count(state: JobState) async throws -> Int {
        try await one("SELECT count(*) FROM steno_jobs WHERE state = \(state.rawValue)")!.decode(Int.self)
    }

    public func activeJobs(tenant: String) async throws -> Int {
        try await one(
            "SELECT count(*) FROM steno_jobs WHERE tenant = \(tenant) AND state IN ('pending', 'processing')"
        )!.decode(Int.self)
    }

    public func claim(owner: String, leaseDuration: TimeInterval, now: Date) async throws -> JobLease? {
        let token = SystemRandom.token()
        let expiry = now.addingTimeInterval(leaseDuration)
        // One statement, two parts on disjoint rows. First, runnable jobs that have used every attempt (each one
        // ended in a crash or a lost lease) fail instead of running again. Then the oldest runnable job with
        // attempts left is taken: pending and due, or processing under an expired lease (its node died). Rows
        // another node is claiming right now are skipped, not waited for.
        let row = try await one(
            """
            WITH exhausted AS (
                UPDATE steno_jobs SET state = 'failed', completed_at = \(now), purge_at = \(now),
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                       error_code = 'attempts_exhausted',
                       error_message = 'the job was interrupted ' || attempts || ' times (server crash or lost worker)'
                WHERE id IN (
                    SELECT id FROM steno_jobs
                    WHERE state IN ('pending', 'processing') AND attempts >= max_attempts
                      AND ((state = 'pending' AND run_after <= \(now))
                           OR (state = 'processing' AND lease_expires_at <= \(now)))
                    FOR UPDATE SKIP LOCKED)
                RETURNING id
            )
            UPDATE steno_jobs SET state = 'processing', attempts = attempts + 1,
                   started_at = COALESCE(started_at, \(now)),
                   lease_owner = \(owner), lease_token = \(token), lease_expires_at = \(expiry)
            WHERE id = (
                SELECT id FROM steno_jobs
                WHERE state IN ('pending', 'processing') AND attempts < max_attempts
                  AND ((state = 'pending' AND run_after <= \(now))
                       OR (state = 'processing' AND lease_expires_at <= \(now)))
                ORDER BY seq LIMIT 1
                FOR UPDATE SKIP LOCKED)
            RETURNING *
            """)
        return try row.map { JobLease(job: try Self.job(from: $0), token: token, owner: owner) }
    }

    public func heartbeat(_ lease: JobLease, progress: Double, leaseDuration: TimeInterval, now: Date) async throws -> Bool {
        let progress = min(max(progress, 0), 1)
        return try await changedOne(
            """
            UPDATE steno_jobs SET progress = GREATEST(progress, \(progress)),
                   lease_expires_at = \(now.addingTimeInterval(leaseDuration))
            WHERE id = \(lease.job.id) AND state = 'processing' AND lease_token = \(lease.token)
            RETURNING 1
            """)
    }

    public func complete(_ lease: JobLease, resultPath: String, duration: Double, language: String, speakers: Int?, now: Date) async throws -> Bool {
        try await changedOne(
            """
            UPDATE steno_jobs SET state = 'completed', progress = 1, completed_at = \(now), result_path = \(resultPath),
                   duration = \(duration), detected_language = \(language), speaker_count = \(speakers), error_code = NULL, error_message = NULL,
                   lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE id = \(lease.job.id) AND state = 'processing' AND lease_token = \(lease.token)
            RETURNING 1
            """)
    }

    public func fail(_ lease: JobLease, failure: JobFailure, now: Date) async throws -> Bool {
        try await changedOne(
            """
            UPDATE steno_jobs SET state = 'failed', completed_at = \(now), purge_at = \(now),
                   error_code = \(failure.code), error_message = \(failure.message),
                   lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE id = \(lease.job.id) AND state = 'processing' AND lease_token = \(lease.token)
            RETURNING 1
            """)
    }

    public func release(_ lease: JobLease, runAfter: Date, failure: JobFailure?, countAttempt: Bool) async throws -> Bool {
        try await changedOne(
            """
            UPDATE steno_jobs SET state = 'pending', run_after = \(runAfter), attempts = attempts - \(countAttempt ? 0 : 1),
                   progress = 0,
                   error_code = COALESCE(\(failure?.code), error_code),
                   error_message = COALESCE(\(failure?.message), error_message),
                   lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE id = \(lease.job.id) AND state = 'processing' AND lease_token = \(lease.token)
            RETURNING 1
            """)
    }

    /// As documented by the protocol: every processing job goes back to pending. With several nodes on one
    /// database this also takes the jobs of nodes that are alive (their writes then fail and they stop), so a
    /// multi-node deployment relies on lease expiry instead of calling this at start-up.
    public func resumeInterrupted(now: Date) async throws -> Int {
        try await one(
            """
            WITH resumed AS (
                UPDATE steno_jobs SET state = 'pending', run_after = \(now), progress = 0,
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE state = 'processing'
                RETURNING 1
            )
            SELECT count(*) FROM resumed
            """
        )!.decode(Int.self)
    }

    public func cancel(id: UUID, now: Date) async throws -> Job? {
        try await updateThenRead(
            id: id,
            """
            WITH changed AS (
                UPDATE steno_jobs SET state = 'cancelled', completed_at = \(now), purge_at = \(now),
                       error_code = NULL, error_message = NULL,
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE id = \(id) AND state IN ('pending', 'processing')
                RETURNING *
            )
            """)
    }

    public func markRetrieved(id: UUID, now: Date, purgeAt: Date) async throws -> Job? {
        try await updateThenRead(
            id: id,
            """
            WITH changed AS (
                UPDATE steno_jobs SET retrieved_at = \(now), purge_at = LEAST(\(purgeAt), expires_at)
                WHERE id = \(id) AND state = 'completed' AND retrieved_at IS NULL
                RETURNING *
            )
            """)
    }

    public func markDeleted(id: UUID, now: Date) async throws -> [String]? {
        // `old` locks the row and keeps the paths as they were before this update cleared them.
        try await one(
            """
            UPDATE steno_jobs job SET deleted_at = COALESCE(job.deleted_at, \(now)),
                   deletion_reason = COALESCE(job.deletion_reason, 'deleted'),
                   audio_path = NULL, result_path = NULL
            FROM (SELECT id, audio_path, result_path FROM steno_jobs WHERE id = \(id) FOR UPDATE) old
            WHERE job.id = old.id AND job.state IN ('completed', 'failed', 'cancelled')
            RETURNING old.audio_path, old.result_path
            """
        ).map(Self.paths(from:))
    }

    public func purgeFiles(id: UUID, now: Date) async throws -> [String] {
        // A completed job becomes a tombstone; a failed or cancelled one only loses its files.
        try await one(
            """
            UPDATE steno_jobs job SET
                   deleted_at = CASE WHEN job.state = 'completed' THEN COALESCE(job.deleted_at, \(now)) ELSE job.deleted_at END,
                   deletion_reason = CASE WHEN job.state = 'completed' THEN COALESCE(job.deletion_reason, 'retrieved')
                                          ELSE job.deletion_reason END,
                   audio_path = NULL, result_path = NULL
            FROM (SELECT id, audio_path, result_path FROM steno_jobs WHERE id = \(id) FOR UPDATE) old
            WHERE job.id = old.id AND job.state IN ('completed', 'failed', 'cancelled')
            RETURNING old.audio_path, old.result_path
            """
        ).map(Self.paths(from:)) ?? []
    }

    public func expired(now: Date, limit: Int) async throws -> [Job] {
        try await all(
            """
            SELECT * FROM steno_jobs WHERE expires_at <= \(now) AND state IN ('completed', 'failed', 'cancelled')
            ORDER BY expires_at LIMIT \(limit)
            """
        ).map(Self.job(from:))
    }

    public func delete(id: UUID) async throws {
        _ = try await all("DELETE FROM steno_jobs WHERE id = \(id) AND state IN ('completed', 'failed', 'cancelled')")
    }

    public func purgeable(now: Date, limit: Int) async throws -> [Job] {
        try await all(
            """
            SELECT * FROM steno_jobs WHERE purge_at <= \(now) AND state IN ('completed', 'failed', 'cancelled')
              AND (audio_path IS NOT NULL OR result_path IS NOT NULL OR (state = 'completed' AND deleted_at IS NULL))
            ORDER BY purge_at LIMIT \(limit)
            """
        ).map(Self.job(from:))
    }

    public func referencedFiles() async throws -> Set<String> {
        var names = Set<String>()
        let rows = try await all(
            "SELECT audio_path, result_path FROM steno_jobs WHERE audio_path IS NOT NULL OR result_path IS NOT NULL")
        for row in rows {
            names.formUnion(try Self.paths(from: row))
        }
        return names
    }

    public func checkWritable() async -> Bool {
        do {
            // The job table answers the reads uploads and listings make, and the database takes a write.
            _ = try await one("SELECT count(*) FROM steno_jobs WHERE state = 'pending'")
            _ = try await all("SELECT * FROM steno_jobs ORDER BY seq DESC LIMIT 1")
            return try await changedOne("UPDATE steno_health SET checked_at = \(Date()) RETURNING 1")
        } catch {
            logger.warning("job store is not writable", metadata: ["error": "\(String(reflecting: error))"])
            return false
        }
    }

    // MARK: - Helpers

    /// One statement under the store's deadline (`DatabaseUnavailable` past it).
    func all(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let (client, logger) = (client, logger)
        return try await withDatabaseDeadline(timeout) { try await client.query(query, logger: logger).collect() }
    }

    private func one(_ query: PostgresQuery) async throws -> PostgresRow? {
        try await all(query).first
    }

    /// A guarded write (`… RETURNING 1`) changed its row: false when the row no longer matched its `WHERE`.
    func changedOne(_ query: PostgresQuery) async throws -> Bool {
        try await all(query).count == 1
    }

    /// Runs `changing` (a `WITH changed AS (UPDATE … RETURNING *)` clause) and returns the job as it is after the
    /// statement: the updated row, or the untouched one when the update matched nothing (the statement's snapshot
    /// does not see its own update, hence the two branches).
    private func updateThenRead(id: UUID, _ changing: PostgresQuery) async throws -> Job? {
        var query = changing
        query.sql += """

            SELECT * FROM changed
            UNION ALL
            SELECT * FROM steno_jobs WHERE id = $\(query.binds.count + 1) AND NOT EXISTS (SELECT 1 FROM changed)
            """
        query.binds.append(id)
        return try await one(query).map(Self.job(from:))
    }

    private static func paths(from row: PostgresRow) throws -> [String] {
        let (audio, result) = try row.decode((String?, String?).self)
        return [audio, result].compactMap { $0 }
    }

    static func job(from row: PostgresRow) throws -> Job {
        let value = PostgresColumns(row, table: "steno_jobs")
        var job = Job(
            id: try value("id"), state: try value.enumeration("state"),
            options: try JobOptions.stored(
                json: try value("options"), language: try value("language"), prompt: try value("prompt"),
                wordTimestamps: try value("word_timestamps")),
            createdAt: try value("created_at"), expiresAt: try value("expires_at"),
            maxAttempts: try value("max_attempts"), audioPath: "", audioBytes: try value("audio_bytes"))
        job.sequence = try value("seq")
        job.startedAt = try value("started_at")
        job.completedAt = try value("completed_at")
        job.retrievedAt = try value("retrieved_at")
        job.purgeAt = try value("purge_at")
        job.deletedAt = try value("deleted_at")
        job.deletionReason = try value.enumeration("deletion_reason", as: DeletionReason?.self)
        job.attempts = try value("attempts")
        job.runAfter = try value("run_after")
        job.leaseOwner = try value("lease_owner")
        job.leaseToken = try value("lease_token")
        job.leaseExpiresAt = try value("lease_expires_at")
        job.progress = try value("progress")
        job.errorCode = try value("error_code")
        job.errorMessage = try value("error_message")
        job.audioPath = try value("audio_path")
        job.duration = try value("duration")
        job.detectedLanguage = try value("detected_language")
        job.speakerCount = try value("speaker_count")
        job.resultPath = try value("result_path")
        job.idempotencyKey = try value("idempotency_key")
        job.tenant = try value("tenant")
        return job
    }
}

enum PostgresJobStoreError: Error {
    /// A row that the store's own schema should never hold.
    case corruptRow(column: String)
    /// An insert that neither wrote its row nor found the job holding its idempotency key, several times over.
    case insertFailed(id: UUID)
}
