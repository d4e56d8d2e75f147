public import Foundation
import GRDB

/// The job store on one SQLite file: a GRDB `DatabasePool` in WAL mode (readers never wait for the writer),
/// with a busy timeout so that writes from HTTP handlers, workers and the cleaner queue up instead of failing.
/// GRDB serialises every write of the process on one connection, and each method is one transaction, so a
/// claim (`UPDATE … WHERE id = (SELECT …) RETURNING *`) is atomic. One server per data directory.
public final class SQLiteJobStore: JobStore {
    let pool: DatabasePool

    public init(path: URL) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "steno.jobs"
        configuration.prepareDatabase { db in
            // WAL + FULL: every commit is on stable storage before it returns, so a 202 survives a power loss,
            // not only a crash of the process (NORMAL would lose the last commits). It costs one WAL fsync per
            // write transaction (README, "Durability").
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        pool = try DatabasePool(path: path.path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    public func insert(_ job: Job) async throws -> Job {
        try await pool.write { db in try Self.insert(job, db) }
    }

    /// `insert`'s writes, in the caller's transaction.
    static func insert(_ job: Job, _ db: Database) throws -> Job {
        try db.execute(
            sql: """
            INSERT INTO job (id, state, language, prompt, word_timestamps, options, created_at, expires_at, run_after,
                             attempts, max_attempts, progress, audio_path, audio_bytes, idempotency_key, tenant)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)
            ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            """,
            arguments: [
                job.id.uuidString.lowercased(), job.state.rawValue, job.options.language, job.options.prompt,
                job.options.wordTimestamps, job.options.storedJSON, job.createdAt.timeIntervalSince1970,
                job.expiresAt.timeIntervalSince1970, job.runAfter.timeIntervalSince1970, job.maxAttempts,
                job.audioPath, job.audioBytes, job.idempotencyKey, job.tenant,
            ])
        if db.changesCount == 1, let webhook = job.webhook { try Self.insertWebhook(db, jobID: job.id, webhook, at: job.createdAt) }
        if db.changesCount == 0, let key = job.idempotencyKey,
           let existing = try Row.fetchOne(
               db, sql: "SELECT * FROM job WHERE tenant = ? AND idempotency_key = ?", arguments: [job.tenant, key]) {
            return try Self.job(from: existing)
        }
        return try Self.fetch(db, id: job.id)!
    }

    public func job(id: UUID) async throws -> Job? {
        try await pool.read { db in try Self.fetch(db, id: id) }
    }

    public func job(idempotencyKey: String, tenant: String) async throws -> Job? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM job WHERE tenant = ? AND idempotency_key = ?", arguments: [tenant, idempotencyKey]
            ).map(Self.job(from:))
        }
    }

    public func list(tenant: String, state: JobState?, before: Int64?, limit: Int) async throws -> [Job] {
        try await pool.read { db in
            var conditions = ["tenant = ?"]
            var arguments: StatementArguments = [tenant]
            if let state {
                conditions.append("state = ?")
                _ = arguments.append(contentsOf: [state.rawValue])
            }
            if let before {
                conditions.append("seq < ?")
                _ = arguments.append(contentsOf: [before])
            }
            let filter = "WHERE " + conditions.joined(separator: " AND ")
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: "SELECT * FROM job \(filter) ORDER BY seq DESC LIMIT ?", arguments: arguments)
                .map(Self.job(from:))
        }
    }

    public func queuePosition(id: UUID) async throws -> Int? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT seq, state FROM job WHERE id = ?", arguments: [Self.key(id)]),
                  row["state"] == JobState.pending.rawValue else { return nil }
            let ahead = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM job WHERE state = 'pending' AND seq < ?", arguments: [row["seq"] as Int64]) ?? 0
            return ahead + 1
        }
    }

    public func count(state: JobState) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = ?", arguments: [state.rawValue]) ?? 0
        }
    }

    public func activeJobs(tenant: String) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM job WHERE tenant = ? AND state IN ('pending', 'processing')", arguments: [tenant]) ?? 0
        }
    }

    public func claim(owner: String, leaseDuration: TimeInterval, now: Date) async throws -> JobLease? {
        let token = SystemRandom.token()
        let now = now.timeIntervalSince1970
        return try await pool.write { db in
            // Jobs whose every attempt ended in a crash or an expired lease fail instead of running again.
            try db.execute(
                sql: """
                UPDATE job SET state = 'failed', completed_at = ?, purge_at = ?, progress = progress,
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                       error_code = 'attempts_exhausted',
                       error_message = 'the job was interrupted ' || attempts || ' times (server crash or lost worker)'
                WHERE attempts >= max_attempts
                  AND ((state = 'pending' AND run_after <= ?) OR (state = 'processing' AND lease_expires_at <= ?))
                """,
                arguments: [now, now, now, now])
            let row = try Row.fetchOne(
                db,
                sql: """
                UPDATE job SET state = 'processing', attempts = attempts + 1, started_at = COALESCE(started_at, ?),
                       lease_owner = ?, lease_token = ?, lease_expires_at = ?
                WHERE id = (SELECT id FROM job
                            WHERE (state = 'pending' AND run_after <= ?)
                               OR (state = 'processing' AND lease_expires_at <= ?)
                            ORDER BY seq LIMIT 1)
                RETURNING *
                """,
                arguments: [now, owner, token, now + leaseDuration, now, now])
            return try row.map { JobLease(job: try Self.job(from: $0), token: token, owner: owner) }
        }
    }

    public func heartbeat(_ lease: JobLease, progress: Double, leaseDuration: TimeInterval, now: Date) async throws -> Bool {
        try await guardedUpdate(
            lease, set: "progress = MAX(progress, ?), lease_expires_at = ?",
            arguments: [min(max(progress, 0), 1), now.timeIntervalSince1970 + leaseDuration])
    }

    public func complete(_ lease: JobLease, resultPath: String, duration: Double, language: String, speakers: Int?, now: Date) async throws -> Bool {
        try await guardedUpdate(
            lease,
            set: """
            state = 'completed', progress = 1, completed_at = ?, result_path = ?, duration = ?, detected_language = ?,
            speaker_count = ?, error_code = NULL, error_message = NULL, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            """,
            arguments: [now.timeIntervalSince1970, resultPath, duration, language, speakers])
    }

    public func fail(_ lease: JobLease, failure: JobFailure, now: Date) async throws -> Bool {
        try await guardedUpdate(
            lease,
            set: """
            state = 'failed', completed_at = ?, purge_at = ?, error_code = ?, error_message = ?,
            lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            """,
            arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, failure.code, failure.message])
    }

    public func release(_ lease: JobLease, runAfter: Date, failure: JobFailure?, countAttempt: Bool) async throws -> Bool {
        try await guardedUpdate(
            lease,
            set: """
            state = 'pending', run_after = ?, attempts = attempts - ?, progress = 0,
            error_code = COALESCE(?, error_code), error_message = COALESCE(?, error_message),
            lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            """,
            arguments: [runAfter.timeIntervalSince1970, countAttempt ? 0 : 1, failure?.code, failure?.message])
    }

    public func resumeInterrupted(now: Date) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: """
                UPDATE job SET state = 'pending', run_after = ?, progress = 0,
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE state = 'processing'
                """,
                arguments: [now.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func cancel(id: UUID, now: Date) async throws -> Job? {
        try await pool.write { db in
            try db.execute(
                sql: """
                UPDATE job SET state = 'cancelled', completed_at = ?, purge_at = ?,
                       error_code = NULL, error_message = NULL,
                       lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE id = ? AND state IN ('pending', 'processing')
                """,
                arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, Self.key(id)])
            return try Self.fetch(db, id: id)
        }
    }

    public func markRetrieved(id: UUID, now: Date, purgeAt: Date) async throws -> Job? {
        try await pool.write { db in
            try db.execute(
                sql: """
                UPDATE job SET retrieved_at = ?, purge_at = MIN(?, expires_at)
                WHERE id = ? AND state = 'completed' AND retrieved_at IS NULL
                """,
                arguments: [now.timeIntervalSince1970, purgeAt.timeIntervalSince1970, Self.key(id)])
            return try Self.fetch(db, id: id)
        }
    }

    public func markDeleted(id: UUID, now: Date) async throws -> [String]? {
        try await pool.write { db in
            guard let job = try Self.fetch(db, id: id), job.state.isTerminal else { return nil }
            try db.execute(
                sql: """
                UPDATE job SET deleted_at = COALESCE(deleted_at, ?), deletion_reason = COALESCE(deletion_reason, 'deleted'),
                       audio_path = NULL, result_path = NULL
                WHERE id = ?
                """,
                arguments: [now.timeIntervalSince1970, Self.key(id)])
            return [job.audioPath, job.resultPath].compactMap { $0 }
        }
    }

    public func purgeFiles(id: UUID, now: Date) async throws -> [String] {
        try await pool.write { db in
            guard let job = try Self.fetch(db, id: id), job.state.isTerminal else { return [] }
            if job.state == .completed {
                try db.execute(
                    sql: """
                    UPDATE job SET deleted_at = COALESCE(deleted_at, ?), deletion_reason = COALESCE(deletion_reason, 'retrieved'),
                           audio_path = NULL, result_path = NULL WHERE id = ?
                    """,
                    arguments: [now.timeIntervalSince1970, Self.key(id)])
            } else {
                try db.execute(sql: "UPDATE job SET audio_path = NULL, result_path = NULL WHERE id = ?", arguments: [Self.key(id)])
            }
            return [job.audioPath, job.resultPath].compactMap { $0 }
        }
    }

    public func expired(now: Date, limit: Int) async throws -> [Job] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                SELECT * FROM job WHERE expires_at <= ? AND state IN ('completed', 'failed', 'cancelled')
                ORDER BY expires_at LIMIT ?
                """,
                arguments: [now.timeIntervalSince1970, limit]
            ).map(Self.job(from:))
        }
    }

    public func delete(id: UUID) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM job WHERE id = ? AND state IN ('completed', 'failed', 'cancelled')",
                arguments: [Self.key(id)])
        }
    }

    public func purgeable(now: Date, limit: Int) async throws -> [Job] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                SELECT * FROM job WHERE purge_at <= ? AND state IN ('completed', 'failed', 'cancelled')
                  AND (audio_path IS NOT NULL OR result_path IS NOT NULL OR (state = 'completed' AND deleted_at IS NULL))
                ORDER BY purge_at LIMIT ?
                """,
                arguments: [now.timeIntervalSince1970, limit]
            ).map(Self.job(from:))
        }
    }

    public func referencedFiles() async throws -> Set<String> {
        try await pool.read { db in
            var names = Set<String>()
            let rows = try Row.fetchCursor(db, sql: "SELECT audio_path, result_path FROM job WHERE audio_path IS NOT NULL OR result_path IS NOT NULL")
            while let row = try rows.next() {
                if let audio: String = row["audio_path"] { names.insert(audio) }
                if let result: String = row["result_path"] { names.insert(result) }
            }
            return names
        }
    }

    public func checkWritable() async -> Bool {
        do {
            try await pool.write { db in
                // The job table answers the reads uploads and listings make (a damaged table fails here, not
                // only in their requests), and the database takes a write.
                _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'pending'")
                _ = try Row.fetchOne(db, sql: "SELECT * FROM job ORDER BY seq DESC LIMIT 1")
                try db.execute(sql: "UPDATE health SET checked_at = ?", arguments: [Date().timeIntervalSince1970])
            }
            return true
        } catch {
            return false
        }
    }

    // MARK: - Helpers

    /// One write of a worker: applies only while the job is processing under this lease's token.
    private func guardedUpdate(_ lease: JobLease, set assignments: String, arguments: StatementArguments) async throws -> Bool {
        var arguments = arguments
        _ = arguments.append(contentsOf: [Self.key(lease.job.id), lease.token])
        return try await pool.write { [arguments] db in
            try db.execute(
                sql: "UPDATE job SET \(assignments) WHERE id = ? AND state = 'processing' AND lease_token = ?",
                arguments: arguments)
            return db.changesCount == 1
        }
    }

    private static func key(_ id: UUID) -> String { id.uuidString.lowercased() }

    private static func fetch(_ db: Database, id: UUID) throws -> Job? {
        try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [key(id)]).map(job(from:))
    }

    private static func date(_ row: Row, _ column: String) -> Date? {
        (row[column] as Double?).map(Date.init(timeIntervalSince1970:))
    }

    static func job(from row: Row) throws -> Job {
        guard let id = UUID(uuidString: row["id"]), let state = JobState(rawValue: row["state"]) else {
            throw DatabaseError(message: "corrupt job row \(String(describing: row["id"] as String?))")
        }
        var job = Job(
            id: id, state: state,
            options: try JobOptions.stored(
                json: row["options"], language: row["language"], prompt: row["prompt"], wordTimestamps: row["word_timestamps"]),
            createdAt: date(row, "created_at")!, expiresAt: date(row, "expires_at")!,
            maxAttempts: row["max_attempts"], audioPath: "", audioBytes: row["audio_bytes"])
        job.sequence = row["seq"]
        job.startedAt = date(row, "started_at")
        job.completedAt = date(row, "completed_at")
        job.retrievedAt = date(row, "retrieved_at")
        job.purgeAt = date(row, "purge_at")
        job.deletedAt = date(row, "deleted_at")
        job.deletionReason = (row["deletion_reason"] as String?).flatMap(DeletionReason.init(rawValue:))
        job.attempts = row["attempts"]
        job.runAfter = date(row, "run_after")!
        job.leaseOwner = row["lease_owner"]
        job.leaseToken = row["lease_token"]
        job.leaseExpiresAt = date(row, "lease_expires_at")
        job.progress = row["progress"]
        job.errorCode = row["error_code"]
        job.errorMessage = row["error_message"]
        job.audioPath = row["audio_path"]
        job.duration = row["duration"]
        job.detectedLanguage = row["detected_language"]
        job.speakerCount = row["speaker_count"]
        job.resultPath = row["result_path"]
        job.idempotencyKey = row["idempotency_key"]
        job.tenant = row["tenant"]
        return job
    }
}
