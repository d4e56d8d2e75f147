package import Foundation
package import StenoEngine

/// The job lifecycle, over the job rows (`JobStore`) and their files (`BlobStore`). HTTP handlers parse and
/// present, workers run the engine, the cleaner keeps time; every change to a job goes through here, so the
/// rules that keep rows and files consistent live in one place:
///
/// - **A row never points at a missing file.** A job's audio is stored before its row is written; a row is
///   changed (or deleted) before the files it pointed at are removed. A crash in between leaves an orphan file,
///   which `sweepOrphans` removes, never a dangling row.
/// - **Bounds hold across nodes.** Admission refuses early (before the body is read); the store checks the
///   queue and tenant bounds again in the insert itself.
/// - **A stale worker changes nothing.** Worker writes carry the lease; a write the store refuses drops the
///   result it would have recorded.
/// - **Every terminal state is announced once** (`JobEvents.finished`), by whichever step made it.
package final class JobService: Sendable {
    package struct Settings: Sendable {
        /// Pending jobs beyond which uploads are refused (`QueueFull`).
        package var maxQueuedJobs: Int
        /// The tenant's pending plus processing jobs at most (`TenantJobLimitReached`); nil for no bound.
        package var maxJobsPerTenant: Int?
        /// Default time from creation to deletion.
        package var retention: TimeInterval
        /// Longest lifetime a client may ask for.
        package var maxRetention: TimeInterval
        package var maxAttempts: Int
        /// Time from the first retrieval of a result to the deletion of its files (0: at once).
        package var retrievalGrace: TimeInterval
        /// First retry delay; doubles with each attempt.
        package var retryBackoff: TimeInterval

        package init(
            maxQueuedJobs: Int = 1000, maxJobsPerTenant: Int? = nil, retention: TimeInterval = 24 * 3600,
            maxRetention: TimeInterval = 30 * 24 * 3600, maxAttempts: Int = 3, retrievalGrace: TimeInterval = 300,
            retryBackoff: TimeInterval = 5
        ) {
            self.maxQueuedJobs = maxQueuedJobs
            self.maxJobsPerTenant = maxJobsPerTenant
            self.retention = retention
            self.maxRetention = maxRetention
            self.maxAttempts = maxAttempts
            self.retrievalGrace = retrievalGrace
            self.retryBackoff = retryBackoff
        }

        init(_ configuration: ServerConfiguration) {
            maxQueuedJobs = configuration.maxQueuedJobs
            maxJobsPerTenant = configuration.maxJobsPerKey
            retention = configuration.retention
            maxRetention = configuration.maxRetention
            maxAttempts = configuration.maxAttempts
            retrievalGrace = configuration.retrievalGrace
            retryBackoff = configuration.retryBackoff
        }
    }

    package let store: any JobStore
    package let blobs: any BlobStore
    package let events: JobEvents
    package let settings: Settings
    private let clock: any WallClock
    private let tenantLimiter: TenantJobLimiter?

    package init(store: any JobStore, blobs: any BlobStore, clock: any WallClock, events: JobEvents, settings: Settings) {
        self.store = store
        self.blobs = blobs
        self.clock = clock
        self.events = events
        self.settings = settings
        tenantLimiter = settings.maxJobsPerTenant.map(TenantJobLimiter.init)
    }

    // MARK: - Admission and creation

    /// A tenant's place held while its upload is received: the queue and the tenant's bound were checked when
    /// it was given. `create` consumes it; an upload that fails gives it back with `release` (twice is harmless).
    package final class Admission: Sendable {
        let tenant: String
        let idempotencyKey: String?
        private let onRelease: Locked<(@Sendable () -> Void)?>

        init(tenant: String, idempotencyKey: String?, onRelease: (@Sendable () -> Void)?) {
            self.tenant = tenant
            self.idempotencyKey = idempotencyKey
            self.onRelease = Locked(onRelease)
        }

        package func release() {
            let release = onRelease.withLock { handler in
                defer { handler = nil }
                return handler
            }
            release?()
        }
    }

    package enum AdmissionOutcome: Sendable {
        /// A retried upload: the job its first attempt created, with nothing to store.
        case existing(Job)
        /// Room for a new job; receive the audio, then `create`.
        case admitted(Admission)
    }

    /// Checks, before any of an upload is read, whether it can become a job: a known idempotency key answers
    /// with its job; a full queue throws `QueueFull`, a tenant at its bound `TenantJobLimitReached`.
    package func admit(tenant: String, idempotencyKey: String?) async throws -> AdmissionOutcome {
        if let idempotencyKey, let existing = try await store.job(idempotencyKey: idempotencyKey, tenant: tenant) {
            return .existing(existing)
        }
        if try await store.count(state: .pending) >= settings.maxQueuedJobs { throw QueueFull(limit: settings.maxQueuedJobs) }
        guard let tenantLimiter else { return .admitted(Admission(tenant: tenant, idempotencyKey: idempotencyKey, onRelease: nil)) }
        guard try await tenantLimiter.reserve(tenant: tenant, store: store) else {
            throw TenantJobLimitReached(tenant: tenant, limit: tenantLimiter.maxJobs)
        }
        return .admitted(Admission(tenant: tenant, idempotencyKey: idempotencyKey) { tenantLimiter.release(tenant: tenant) })
    }

    /// What the client asked for, validated by the handler that parsed it.
    package struct NewJob: Sendable {
        package var options: JobOptions
        /// Time from creation to deletion; nil for the default retention.
        package var lifetime: TimeInterval?
        package var webhook: WebhookRequest?
        /// The received audio, a local file this call consumes, and its size; nil for a job whose worker fetches
        /// its `audio_url`.
        package var audio: URL?
        package var audioBytes: Int64

        package init(options: JobOptions, lifetime: TimeInterval? = nil, webhook: WebhookRequest? = nil, audio: URL?, audioBytes: Int64) {
            self.options = options
            self.lifetime = lifetime
            self.webhook = webhook
            self.audio = audio
            self.audioBytes = audioBytes
        }
    }

    /// Records a new job: the audio first, then the row. Returns the job, which is another one when an upload
    /// with the same idempotency key won a race (this one's audio is then dropped). Gives the admission back.
    package func create(_ request: NewJob, admission: Admission) async throws -> Job {
        defer { admission.release() }
        let id = SystemRandom.uuid()
        let now = clock.now()
        var audioPath: String?
        if let audio = request.audio { audioPath = try await blobs.commitAudio(audio, jobID: id) }
        var record = Job(
            id: id, options: request.options, createdAt: now,
            expiresAt: now.addingTimeInterval(request.lifetime ?? settings.retention),
            maxAttempts: settings.maxAttempts, audioPath: audioPath, audioBytes: request.audioBytes)
        record.idempotencyKey = admission.idempotencyKey
        record.webhook = request.webhook
        record.tenant = admission.tenant
        let job: Job
        do {
            // The store keeps the bounds across nodes: admission only saw what was there before the body.
            job = try await store.insert(
                record, limits: InsertLimits(maxActiveJobsPerTenant: settings.maxJobsPerTenant, maxPendingJobs: settings.maxQueuedJobs))
        } catch {
            if let audioPath { await blobs.remove(audioPath) }
            throw error
        }
        if job.id != id {
            if let audioPath { await blobs.remove(audioPath) }
        } else {
            events.publish(.accepted(id))
        }
        return job
    }

    // MARK: - Reading

    package enum Lookup: Sendable {
        /// Unknown, another tenant's, or a finished job past its deadline (gone even before the cleaner's pass).
        case notFound
        /// A tombstone: the job's files and result were deleted, its id answers until its deadline.
        case gone(Job, DeletionReason)
        case found(Job)
    }

    /// The tenant's job as the API shows it. An unfinished job is kept past its deadline until it finishes.
    package func lookup(id: UUID, tenant: String) async throws -> Lookup {
        guard let job = try await store.job(id: id, tenant: tenant), job.expiresAt > clock.now() || !job.state.isTerminal else {
            return .notFound
        }
        if let reason = job.deletionReason { return .gone(job, reason) }
        return .found(job)
    }

    /// The job once it has finished (completed, failed or cancelled), or nil when `timeout` (real time, not the
    /// job clock) runs out first or the job is gone. Reads the store every `pollInterval` (one indexed row), so
    /// it sees a job whichever node's worker ran it. Throws `CancellationError` when the calling task is cancelled.
    package func waitUntilFinished(id: UUID, tenant: String, timeout: TimeInterval, pollInterval: TimeInterval = 0.25) async throws -> Job? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while true {
            guard let job = try await store.job(id: id, tenant: tenant) else { return nil }
            if job.state.isTerminal { return job }
            let left = deadline - .now
            if left <= .zero { return nil }
            try await Task.sleep(for: min(.milliseconds(Int64(pollInterval * 1000)), left))
        }
    }

    /// Pending jobs ahead of this one, plus one; nil when it is not pending.
    package func queuePosition(of job: Job) async throws -> Int? {
        job.state == .pending ? try await store.queuePosition(id: job.id) : nil
    }

    /// One page of the tenant's jobs, newest first, and the cursor of the next page.
    package func list(tenant: String, state: JobState?, before: Int64?, limit: Int) async throws -> (jobs: [Job], next: Int64?) {
        let page = try await store.list(tenant: tenant, state: state, before: before, limit: limit + 1)
        return (Array(page.prefix(limit)), page.count > limit ? page[limit - 1].sequence : nil)
    }

    package enum Retrieval: Sendable {
        case result(Job, TranscriptionResult)
        /// The cleaner removed the result between the read of the row and the read of the file.
        case deleted
    }

    /// A completed job's result. The first retrieval is recorded and starts the grace period after which the
    /// files go (at once with no grace); the result is read before any of that.
    package func retrieve(_ job: Job) async throws -> Retrieval {
        guard let resultPath = job.resultPath, let data = try await readIfPresent(resultPath),
              let result = try? ResultCoding.decoder.decode(TranscriptionResult.self, from: data) else {
            return .deleted
        }
        var job = job
        let now = clock.now()
        if job.retrievedAt == nil,
           let updated = try await store.markRetrieved(id: job.id, now: now, purgeAt: now.addingTimeInterval(settings.retrievalGrace)) {
            job = updated
            if settings.retrievalGrace <= 0 { try await purgeFiles(of: job.id, now: now) }
        }
        return .result(job, result)
    }

    /// A blob, or nil when it is gone; a database that does not answer is an error, not a deleted result.
    private func readIfPresent(_ name: String) async throws -> Data? {
        do {
            return try await blobs.read(name)
        } catch let error as DatabaseUnavailable {
            throw error
        } catch {
            return nil
        }
    }

    // MARK: - Cancelling and deleting

    package enum Removal: Sendable, Equatable {
        /// An unfinished job, now cancelled; `wasState` is what it was.
        case cancelled(wasState: JobState)
        /// A finished job, now a tombstone without files.
        case deleted
        /// Nothing changed (it finished or was removed meanwhile).
        case unchanged
    }

    /// The client's `DELETE`: an unfinished job is cancelled (it stays visible as `cancelled`, its audio goes now,
    /// its worker's writes fail); a finished one loses its files and result and answers `410` until its deadline.
    package func remove(_ job: Job) async throws -> Removal {
        let now = clock.now()
        if !job.state.isTerminal {
            var outcome = Removal.unchanged
            if let cancelled = try await store.cancel(id: job.id, now: now), cancelled.state == .cancelled {
                events.publish(.finished(job.id, .cancelled))
                outcome = .cancelled(wasState: job.state)
            }
            try await purgeFiles(of: job.id, now: now)
            return outcome
        }
        guard let files = try await store.markDeleted(id: job.id, now: now) else { return .unchanged }
        for name in files { await blobs.remove(name) }
        return .deleted
    }

    // MARK: - Workers

    /// The oldest runnable job, under a lease of `leaseDuration`.
    package func claim(owner: String, leaseDuration: TimeInterval) async throws -> JobLease? {
        try await store.claim(owner: owner, leaseDuration: leaseDuration, now: clock.now())
    }

    /// Renews the lease and records progress; false when the lease is lost (cancelled, taken over).
    package func heartbeat(_ lease: JobLease, progress: Double, leaseDuration: TimeInterval) async throws -> Bool {
        try await store.heartbeat(lease, progress: progress, leaseDuration: leaseDuration, now: clock.now())
    }

    /// Stores a finished transcription's result, the first half of completing a job. Every call writes a new
    /// name, so a stale worker's late write never replaces the owner's.
    package func storeResult(_ result: TranscriptionResult, of lease: JobLease) async throws -> String {
        try await blobs.writeResult(try ResultCoding.encoder.encode(result), jobID: lease.job.id)
    }

    /// Marks the job completed with the result `storeResult` wrote. When the lease is lost, or the write fails,
    /// the result is removed (no row points at it) and false returned or the error thrown.
    package func complete(_ lease: JobLease, resultName: String, result: TranscriptionResult) async throws -> Bool {
        let completed: Bool
        do {
            completed = try await store.complete(
                lease, resultPath: resultName, duration: result.duration, language: result.language,
                speakers: result.speakers?.count, now: clock.now())
        } catch {
            await blobs.remove(resultName)
            throw error
        }
        guard completed else {
            await blobs.remove(resultName)
            return false
        }
        events.publish(.finished(lease.job.id, .completed))
        return true
    }

    /// Fails the job for good; false when the lease is lost.
    package func fail(_ lease: JobLease, failure: JobFailure) async throws -> Bool {
        guard try await store.fail(lease, failure: failure, now: clock.now()) else { return false }
        events.publish(.finished(lease.job.id, .failed))
        return true
    }

    /// Puts the job back in the queue, due after `delay`. Without `countAttempt` the claim's attempt is given
    /// back (a shutdown or an unavailable database is not the job's fault). False when the lease is lost.
    package func requeue(_ lease: JobLease, after delay: TimeInterval, failure: JobFailure?, countAttempt: Bool) async throws -> Bool {
        try await store.release(lease, runAfter: clock.now().addingTimeInterval(delay), failure: failure, countAttempt: countAttempt)
    }

    /// What becomes of a job whose attempt met a failure another attempt may fix.
    package enum HandBack: Sendable, Equatable {
        /// Out of attempts: fails for good with this.
        case fail(JobFailure)
        /// Queued again after this delay, the failure recorded.
        case retry(after: TimeInterval, JobFailure)
    }

    /// The retry rule: back to the queue with exponential backoff (base × 2^(attempt-1), ±25 %, at most an
    /// hour), or failed with `finalCode` once the job has used its attempts.
    package func handBack(_ job: Job, error: any Error, code: String, finalCode: String) -> HandBack {
        let message = ErrorMap.clientMessage(for: error)
        if job.attempts >= job.maxAttempts {
            return .fail(JobFailure(code: finalCode, message: "failed \(job.attempts) times; last error: \(message)"))
        }
        let base = settings.retryBackoff * pow(2, Double(max(0, job.attempts - 1)))
        return .retry(after: min(3600, base * Double.random(in: 0.75...1.25)), JobFailure(code: code, message: message))
    }

    /// Start-up of a single node: jobs its previous run left processing go back to the queue.
    package func resumeInterrupted() async throws -> Int {
        try await store.resumeInterrupted(now: clock.now())
    }

    // MARK: - Expiry

    /// The files of a job whose row no longer needs them: the row changes first, then the files go.
    private func purgeFiles(of id: UUID, now: Date) async throws {
        for name in try await store.purgeFiles(id: id, now: now) { await blobs.remove(name) }
    }

    /// Deletes the files of finished jobs whose grace is over, in batches of `batch`. Returns the job count.
    package func purgeDue(batch: Int) async throws -> Int {
        let now = clock.now()
        var purged = 0
        while true {
            let due = try await store.purgeable(now: now, limit: batch)
            for job in due { try await purgeFiles(of: job.id, now: now) }
            purged += due.count
            if due.count < batch { return purged }
        }
    }

    /// Deletes finished jobs past their deadline: the row first, then its files. Returns the job count.
    package func expireDue(batch: Int) async throws -> Int {
        let now = clock.now()
        var expired = 0
        while true {
            let due = try await store.expired(now: now, limit: batch)
            for job in due {
                try await store.delete(id: job.id)
                for name in [job.audioPath, job.resultPath].compactMap({ $0 }) { await blobs.remove(name) }
            }
            expired += due.count
            if due.count < batch { return expired }
        }
    }

    /// Removes files no row points at that are older than `age` (younger ones may be an upload between its
    /// commit and its insert). Returns their count.
    package func sweepOrphans(olderThan age: TimeInterval) async throws -> Int {
        let referenced = try await store.referencedFiles()
        return try await blobs.sweepOrphans(referenced: referenced, olderThan: Date().addingTimeInterval(-age)).count
    }

    // MARK: - Health

    /// Whether the job table answers reads and writes, and the free bytes where uploads are spooled.
    package func readiness() async -> (database: Bool, freeBytes: Int64?) {
        (await store.checkWritable(), blobs.freeBytes())
    }

    /// Jobs of every tenant by state (for metrics).
    package func counts() async throws -> [JobState: Int] {
        var counts: [JobState: Int] = [:]
        for state in JobState.allCases { counts[state] = try await store.count(state: state) }
        return counts
    }
}
