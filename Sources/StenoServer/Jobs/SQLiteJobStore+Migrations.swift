import GRDB

extension SQLiteJobStore {
    /// The schema, one migration per change. Never edit a shipped migration: add the next one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs") { db in
            // Times are Unix seconds (REAL) so that the claim and the cleaner compare numbers.
            try db.execute(
                sql: """
                CREATE TABLE job (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
                    language TEXT,
                    prompt TEXT,
                    word_timestamps BOOLEAN NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    started_at REAL,
                    completed_at REAL,
                    retrieved_at REAL,
                    expires_at REAL NOT NULL,
                    purge_at REAL,
                    deleted_at REAL,
                    deletion_reason TEXT CHECK (deletion_reason IN ('retrieved', 'deleted')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
                    run_after REAL NOT NULL,
                    lease_owner TEXT,
                    lease_token TEXT,
                    lease_expires_at REAL,
                    progress REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
                    error_code TEXT,
                    error_message TEXT,
                    audio_path TEXT,
                    audio_bytes INTEGER NOT NULL DEFAULT 0,
                    duration REAL,
                    detected_language TEXT,
                    result_path TEXT,
                    CHECK (state != 'processing' OR lease_token IS NOT NULL)
                );
                CREATE INDEX job_runnable ON job (state, run_after, seq);
                CREATE INDEX job_expiry ON job (expires_at);
                CREATE INDEX job_purge ON job (purge_at) WHERE purge_at IS NOT NULL;
                CREATE TABLE health (checked_at REAL);
                INSERT INTO health VALUES (NULL);
                """)
        }
        migrator.registerMigration("v2: idempotency keys") { db in
            // Unique among live rows; a key is free again once its job is deleted at its deadline.
            try db.execute(
                sql: """
                ALTER TABLE job ADD COLUMN idempotency_key TEXT;
                CREATE UNIQUE INDEX job_idempotency ON job (idempotency_key) WHERE idempotency_key IS NOT NULL;
                """)
        }
        migrator.registerMigration("v3: tenants") { db in
            // Rows from before keys existed belong to the anonymous tenant (''), which no key holder is.
            // Idempotency keys become unique per tenant, so one tenant's key never finds another's job.
            try db.execute(
                sql: """
                ALTER TABLE job ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
                DROP INDEX job_idempotency;
                CREATE UNIQUE INDEX job_tenant_idempotency ON job (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
                CREATE INDEX job_tenant ON job (tenant, seq);
                CREATE INDEX job_tenant_state ON job (tenant, state);
                """)
        }
        migrator.registerMigration("v4: webhooks") { db in
            // One callback per job, written in the job's insert transaction and gone with the job's row.
            // `next_attempt_at` starts at the job's creation: due as soon as the job is terminal.
            try db.execute(
                sql: """
                CREATE TABLE webhook (
                    job_id TEXT PRIMARY KEY NOT NULL REFERENCES job (id) ON DELETE CASCADE,
                    url TEXT NOT NULL CHECK (length(url) <= 2048),
                    header_name TEXT,
                    header_value TEXT,
                    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    next_attempt_at REAL NOT NULL,
                    last_attempt_at REAL,
                    last_status_code INTEGER,
                    last_error TEXT,
                    delivered_at REAL,
                    lease_owner TEXT,
                    lease_token TEXT,
                    lease_expires_at REAL
                );
                CREATE INDEX webhook_due ON webhook (next_attempt_at) WHERE state = 'pending';
                """)
        }
        migrator.registerMigration("v5: job options document") { db in
            // Every option of a job as one JSON document (`JobOptions`); NULL on rows from before it, which
            // keep reading language, prompt and word_timestamps (still written, for a rollback).
            try db.execute(sql: "ALTER TABLE job ADD COLUMN options TEXT")
        }
        migrator.registerMigration("v6: speaker count") { db in
            // Speakers found in a completed job with speaker labels, for its webhook.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN speaker_count INTEGER")
        }
        return migrator
    }
}
