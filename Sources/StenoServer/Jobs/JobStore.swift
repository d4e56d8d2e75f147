public import Foundation

/// Where jobs live. Every write that a worker makes is guarded by its lease token, and terminal states are
/// final: implementations must make both hold atomically (SQLite now, PostgreSQL later), and pass
/// `JobStoreContract` in the tests.
public protocol JobStore: Sendable {
    /// Records a new pending job (its `sequence` is assigned here). When a job of the same tenant with the same
    /// idempotency key exists, nothing is written and that job is returned: callers compare ids.
    func insert(_ job: Job) async throws -> Job
    /// `insert`, unless the job does not fit `limits`: then nothing is written and `TenantJobLimitReached` or
    /// `QueueFull` is thrown (a job found by its idempotency key is returned whatever the counts). The counts and
    /// the insert are one step for every node sharing the store, so the bounds hold globally.
    func insert(_ job: Job, limits: InsertLimits) async throws -> Job
    /// The tenant's job holding this idempotency key (keys of different tenants never meet).
    func job(idempotencyKey: String, tenant: String) async throws -> Job?
    /// Any tenant's job: for workers, the cleaner, and the API after it checks the owner (`job(id:tenant:)`).
    func job(id: UUID) async throws -> Job?
    /// The tenant's jobs, newest first; `before` is the `sequence` of the last job of the previous page.
    func list(tenant: String, state: JobState?, before: Int64?, limit: Int) async throws -> [Job]
    /// Pending jobs ahead of this one (of every tenant: the one queue), plus one; nil when the job is not pending.
    func queuePosition(id: UUID) async throws -> Int?
    /// Jobs of every tenant in this state (the queue bound, metrics).
    func count(state: JobState) async throws -> Int
    /// The tenant's pending and processing jobs (its concurrent-job limit).
    func activeJobs(tenant: String) async throws -> Int

    /// Takes the oldest runnable job: pending and due, or processing with an expired lease (its worker died).
    /// Counts an attempt. A job that has used all its attempts is failed instead of claimed.
    func claim(owner: String, leaseDuration: TimeInterval, now: Date) async throws -> JobLease?
    /// Extends the lease and records progress. False when the lease is no longer held: the worker must stop.
    func heartbeat(_ lease: JobLease, progress: Double, leaseDuration: TimeInterval, now: Date) async throws -> Bool
    /// Marks the job completed. False (and nothing written) when the lease is no longer held.
    func complete(_ lease: JobLease, resultPath: String, duration: Double, language: String, speakers: Int?, now: Date) async throws -> Bool
    /// Marks the job failed for good. False when the lease is no longer held.
    func fail(_ lease: JobLease, failure: JobFailure, now: Date) async throws -> Bool
    /// Puts the job back to pending, due at `runAfter`. With `countAttempt == false` the claim's attempt is
    /// given back (a graceful shutdown is not the job's fault). False when the lease is no longer held.
    func release(_ lease: JobLease, runAfter: Date, failure: JobFailure?, countAttempt: Bool) async throws -> Bool
    /// Start-up: jobs left processing by a previous run of this server go back to pending. Returns their count.
    func resumeInterrupted(now: Date) async throws -> Int

    /// Pending or processing → cancelled (the lease is dropped, so the worker's writes fail and it stops).
    /// Returns the job after the change, or nil if unknown.
    func cancel(id: UUID, now: Date) async throws -> Job?
    /// Records the first retrieval of a completed job and when its files go. Returns the job after the change.
    func markRetrieved(id: UUID, now: Date, purgeAt: Date) async throws -> Job?
    /// Client deletion of a finished job: it becomes a tombstone (no files, no result) until `expiresAt`.
    /// Returns the file names it pointed at, which the caller deletes after this (so a row never points at a
    /// missing file); nil when the job is unknown or not finished.
    func markDeleted(id: UUID, now: Date) async throws -> [String]?
    /// The cleaner's deletion of a finished job's files: a completed job becomes a tombstone (`retrieved`),
    /// a failed or cancelled one keeps its status. Returns the file names to delete.
    func purgeFiles(id: UUID, now: Date) async throws -> [String]
    /// Unfinished jobs' files are never expired; jobs that are finished and past `expiresAt` are.
    func expired(now: Date, limit: Int) async throws -> [Job]
    /// Deletes the row of a finished job for good.
    func delete(id: UUID) async throws
    /// Finished jobs that still have files and whose `purgeAt` has come (retrieval grace over; failed and
    /// cancelled jobs get `purgeAt` when they finish).
    func purgeable(now: Date, limit: Int) async throws -> [Job]
    /// Every file name that some row points at, to find orphans.
    func referencedFiles() async throws -> Set<String>
    /// The job table can be read (as uploads and listings read it) and a write succeeds (for `/readyz`).
    func checkWritable() async -> Bool
}

extension JobStore {
    /// The job if `tenant` owns it: any other tenant is told it does not exist.
    public func job(id: UUID, tenant: String) async throws -> Job? {
        guard let job = try await job(id: id), job.tenant == tenant else { return nil }
        return job
    }
}

extension JobStore {
    /// `insert(_:limits:)` with the tenant's bound alone.
    public func insert(_ job: Job, maxActiveJobs: Int) async throws -> Job {
        try await insert(job, limits: InsertLimits(maxActiveJobsPerTenant: maxActiveJobs))
    }
}

extension JobStore {
    /// A completion without speaker labels.
    public func complete(_ lease: JobLease, resultPath: String, duration: Double, language: String, now: Date) async throws -> Bool {
        try await complete(lease, resultPath: resultPath, duration: duration, language: language, speakers: nil, now: now)
    }
}
