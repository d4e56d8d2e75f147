import Logging
import PostgresNIO

extension PostgresJobStore {
    /// One versioned change of the schema. Never edit a shipped migration: add the next one.
    struct Migration: Sendable {
        var version: Int
        var name: String
        /// Run in order, in the migration's transaction (PostgreSQL's DDL is transactional).
        var statements: [String]
    }

    /// Times are `timestamptz` written from the caller's clock (the protocol passes `now`): the server's own
    /// clock is never used for job logic, so comparisons such as `run_after <= now` mean the same as in SQLite.
    /// postgres-nio stores a `Date` to the microsecond, truncating, which keeps the order of any two times.
    static let migrations: [Migration] = [
        Migration(version: 1, name: "jobs", statements: [
            """
            CREATE TABLE steno_jobs (
                id uuid PRIMARY KEY,
                seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                state text NOT NULL CHECK (state IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
                language text,
                prompt text,
                word_timestamps boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL,
                started_at timestamptz,
                completed_at timestamptz,
                retrieved_at timestamptz,
                expires_at timestamptz NOT NULL,
                purge_at timestamptz,
                deleted_at timestamptz,
                deletion_reason text CHECK (deletion_reason IN ('retrieved', 'deleted')),
                attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                max_attempts integer NOT NULL CHECK (max_attempts >= 1),
                run_after timestamptz NOT NULL,
                lease_owner text,
                lease_token text,
                lease_expires_at timestamptz,
                progress double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
                error_code text,
                error_message text,
                audio_path text,
                audio_bytes bigint NOT NULL DEFAULT 0,
                duration double precision,
                detected_language text,
                result_path text,
                idempotency_key text,
                CHECK (state <> 'processing' OR lease_token IS NOT NULL)
            )
            """,
            // Unique among live rows; a key is free again once its job is deleted at its deadline.
            "CREATE UNIQUE INDEX steno_jobs_idempotency ON steno_jobs (idempotency_key) WHERE idempotency_key IS NOT NULL",
            // Unfinished jobs in arrival order: the claim walks this small index and stops at the first
            // runnable row that no other node has locked.
            "CREATE INDEX steno_jobs_active ON steno_jobs (seq) WHERE state IN ('pending', 'processing')",
            // Jobs out of attempts are rare: the claim's check for them reads an index that is almost always empty.
            """
            CREATE INDEX steno_jobs_exhausted ON steno_jobs (seq)
                WHERE state IN ('pending', 'processing') AND attempts >= max_attempts
            """,
            "CREATE INDEX steno_jobs_state ON steno_jobs (state, seq)",
            "CREATE INDEX steno_jobs_expiry ON steno_jobs (expires_at) WHERE state IN ('completed', 'failed', 'cancelled')",
            "CREATE INDEX steno_jobs_purge ON steno_jobs (purge_at) WHERE purge_at IS NOT NULL",
            // `/readyz` proves the database takes writes by updating this row.
            "CREATE TABLE steno_health (checked_at timestamptz)",
            "INSERT INTO steno_health VALUES (NULL)",
        ]),
        // Rows from before keys existed belong to the anonymous tenant (''), which no key holder is. Idempotency
        // keys become unique per tenant, so one tenant's key never finds another's job.
        Migration(version: 2, name: "tenants", statements: [
            "ALTER TABLE steno_jobs ADD COLUMN tenant text NOT NULL DEFAULT ''",
            "DROP INDEX steno_jobs_idempotency",
            """
            CREATE UNIQUE INDEX steno_jobs_tenant_idempotency ON steno_jobs (tenant, idempotency_key)
                WHERE idempotency_key IS NOT NULL
            """,
            "CREATE INDEX steno_jobs_tenant ON steno_jobs (tenant, seq)",
            "CREATE INDEX steno_jobs_tenant_active ON steno_jobs (tenant) WHERE state IN ('pending', 'processing')",
        ]),
        Migration(version: 3, name: "webhooks", statements: [
            // One callback per job, written in the job's insert statement and gone with the job's row.
            // `next_attempt_at` starts at the job's creation: due as soon as the job is terminal.
            """
            CREATE TABLE steno_webhooks (
                job_id uuid PRIMARY KEY REFERENCES steno_jobs (id) ON DELETE CASCADE,
                url text NOT NULL CHECK (length(url) <= 2048),
                header_name text,
                header_value text,
                state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                next_attempt_at timestamptz NOT NULL,
                last_attempt_at timestamptz,
                last_status_code integer,
                last_error text,
                delivered_at timestamptz,
                lease_owner text,
                lease_token text,
                lease_expires_at timestamptz
            )
            """,
            // The dispatchers' claim reads the pending deliveries only.
            "CREATE INDEX steno_webhooks_due ON steno_webhooks (next_attempt_at) WHERE state = 'pending'",
        ]),
        // `PostgresBlobStore`: a blob is a header row and its 1 MiB chunks, deleted with it.
        Migration(version: 4, name: "blobs", statements: [
            """
            CREATE TABLE steno_blobs (
                name text PRIMARY KEY,
                bytes bigint NOT NULL,
                chunks integer NOT NULL,
                created_at timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE steno_blob_chunks (
                name text NOT NULL REFERENCES steno_blobs (name) ON DELETE CASCADE,
                chunk integer NOT NULL,
                data bytea NOT NULL,
                PRIMARY KEY (name, chunk)
            )
            """,
            // Audio is mostly compressed already: store chunks out of line without trying to compress them.
            "ALTER TABLE steno_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
            "CREATE INDEX steno_blobs_created ON steno_blobs (created_at)",
        ]),
        // Wakes idle workers on every node: a job that becomes pending (a submit, a retry, a release) notifies the
        // `steno_jobs` channel when its transaction commits, and the nodes LISTENing there claim at once.
        Migration(version: 5, name: "job notifications", statements: [
            """
            CREATE FUNCTION steno_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('steno_jobs', '');
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER steno_jobs_notify AFTER INSERT OR UPDATE OF state ON steno_jobs
                FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION steno_jobs_notify()
            """,
        ]),
        // `PostgresRateLimiter`: each tenant's request budget, shared by every node (GCRA's theoretical arrival
        // time; `seen_at` and `allowed` are the last request's time and answer).
        Migration(version: 6, name: "rate limits", statements: [
            """
            CREATE TABLE steno_rate_limits (
                tenant text PRIMARY KEY,
                tat timestamptz NOT NULL,
                seen_at timestamptz NOT NULL,
                allowed boolean NOT NULL
            )
            """,
        ]),
        // Budgets need no durability: unlogged, a request's update commits without waiting for a WAL flush
        // (0.2 ms instead of 3 ms on a test machine). After a database crash or a failover the table is empty,
        // which gives every tenant a full budget again.
        Migration(version: 7, name: "unlogged rate limits", statements: [
            "ALTER TABLE steno_rate_limits SET UNLOGGED",
        ]),
        // Every option of a job as one JSON document (`JobOptions`); NULL on rows from before it, which keep
        // reading language, prompt and word_timestamps (still written, for a rollback).
        Migration(version: 8, name: "job options document", statements: [
            "ALTER TABLE steno_jobs ADD COLUMN options text",
        ]),
        // Speakers found in a completed job with speaker labels, for its webhook.
        Migration(version: 9, name: "speaker count", statements: [
            "ALTER TABLE steno_jobs ADD COLUMN speaker_count integer",
        ]),
    ]

    /// Any fixed number shared by every Steno node: the advisory lock that serialises migrations when several
    /// nodes start at once against a new database.
    static let migrationLock: Int64 = 0x5354_454E_4F5F_4D31

    /// Brings the schema up to date: the migrations not yet recorded in `steno_schema_migrations` run in one
    /// transaction, under an advisory lock, so concurrent starts of several nodes apply each exactly once.
    public func migrate() async throws {
        let logger = self.logger
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger).collect()
            _ = try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS steno_schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: logger
            ).collect()
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM steno_schema_migrations", logger: logger)
                .decode(Int.self) {
                applied.insert(version)
            }
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                }
                _ = try await connection.query(
                    "INSERT INTO steno_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                ).collect()
                logger.info("applied job store migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }
}
