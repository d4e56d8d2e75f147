import Foundation
import StenoEngine
import StenoServer
import Testing

/// The promises every `JobStore` keeps, written once against a factory so that a PostgreSQL store can run the
/// same checks. Each check gets a fresh, empty store.
enum JobStoreContract {
    typealias Factory = @Sendable () async throws -> any JobStore

    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func newJob(_ store: any JobStore, at time: Date = t0, lifetime: TimeInterval = 3600, maxAttempts: Int = 3) async throws -> Job {
        let id = UUID()
        return try await store.insert(Job(
            id: id, options: JobOptions(language: "en", prompt: "Steno", wordTimestamps: true),
            createdAt: time, expiresAt: time.addingTimeInterval(lifetime), maxAttempts: maxAttempts,
            audioPath: "audio/\(id.uuidString.lowercased())", audioBytes: 1234))
    }

    static func insertAndRead(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store)
        let read = try #require(try await store.job(id: job.id))
        #expect(read == job)
        #expect(read.state == .pending)
        #expect(read.options == JobOptions(language: "en", prompt: "Steno", wordTimestamps: true))
        #expect(read.audioBytes == 1234)
        #expect(read.expiresAt == t0.addingTimeInterval(3600))
        #expect(try await store.job(id: UUID()) == nil)
    }

    /// Every option comes back as stored: detection off, and detection with every parameter set.
    static func optionsRoundTrip(_ make: Factory) async throws {
        let store = try await make()
        var tuned = SpeechDetection.fasterWhisper
        tuned.threshold = 0.35
        tuned.negativeThreshold = 0.2
        tuned.maxSpeechSeconds = 25
        tuned.minSilenceSeconds = 0.5
        tuned.speechPadSeconds = 0.1
        tuned.minSpeechSeconds = 0.25
        for options in [JobOptions(vad: nil), JobOptions(language: "en", vad: tuned), JobOptions(),
                        JobOptions(language: "es", task: .translate, multilingual: true)] {
            let id = UUID()
            let job = try await store.insert(Job(
                id: id, options: options, createdAt: t0, expiresAt: t0.addingTimeInterval(60), maxAttempts: 1,
                audioPath: "audio/\(id.uuidString.lowercased())", audioBytes: 1))
            #expect(job.options == options)
            #expect(try await store.job(id: id)?.options == options)
        }
    }

    static func claimsInOrderOnce(_ make: Factory) async throws {
        let store = try await make()
        let first = try await newJob(store)
        let second = try await newJob(store, at: t0.addingTimeInterval(1))
        #expect(try await store.queuePosition(id: first.id) == 1)
        #expect(try await store.queuePosition(id: second.id) == 2)

        let a = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0.addingTimeInterval(2)))
        #expect(a.job.id == first.id)
        #expect(a.job.state == .processing)
        #expect(a.job.attempts == 1)
        #expect(a.job.startedAt == t0.addingTimeInterval(2))
        #expect(try await store.queuePosition(id: second.id) == 1)
        let b = try #require(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(2)))
        #expect(b.job.id == second.id)
        #expect(try await store.claim(owner: "c", leaseDuration: 60, now: t0.addingTimeInterval(2)) == nil)
    }

    /// Many claimers at once: every job is claimed exactly once.
    static func concurrentClaimsAreExclusive(_ make: Factory) async throws {
        let store = try await make()
        var ids = Set<UUID>()
        for _ in 0..<40 { ids.insert(try await newJob(store).id) }
        let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var mine: [UUID] = []
                    while let lease = try await store.claim(owner: "w\(worker)", leaseDuration: 60, now: t0) {
                        mine.append(lease.job.id)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [UUID]()) { $0 += $1 }
        }
        #expect(claimed.count == 40)
        #expect(Set(claimed) == ids)
    }

    static func expiredLeaseIsReclaimedAndStaleWritesFail(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store)
        let stale = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0))
        // Still held: nobody else gets it.
        #expect(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(59)) == nil)
        // Heartbeat extends the lease.
        #expect(try await store.heartbeat(stale, progress: 0.5, leaseDuration: 60, now: t0.addingTimeInterval(50)))
        #expect(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(100)) == nil)
        #expect(try await store.job(id: job.id)?.progress == 0.5)
        // The worker stops beating; after the lease runs out another worker takes the job, one more attempt.
        let fresh = try #require(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(111)))
        #expect(fresh.job.id == job.id)
        #expect(fresh.job.attempts == 2)
        #expect(fresh.token != stale.token)
        // Every write of the first worker is now rejected and changes nothing.
        #expect(try await store.heartbeat(stale, progress: 0.9, leaseDuration: 60, now: t0.addingTimeInterval(112)) == false)
        #expect(try await store.complete(stale, resultPath: "results/x.json", duration: 1, language: "en", now: t0.addingTimeInterval(112)) == false)
        #expect(try await store.fail(stale, failure: JobFailure(code: "x", message: "y"), now: t0.addingTimeInterval(112)) == false)
        #expect(try await store.release(stale, runAfter: t0, failure: nil, countAttempt: false) == false)
        let during = try #require(try await store.job(id: job.id))
        #expect(during.state == .processing)
        #expect(during.leaseOwner == "b")
        #expect(during.progress == 0.5)
        // The current worker completes it.
        #expect(try await store.complete(fresh, resultPath: "results/a.json", duration: 4.5, language: "en", now: t0.addingTimeInterval(120)))
        let done = try #require(try await store.job(id: job.id))
        #expect(done.state == .completed)
        #expect(done.resultPath == "results/a.json")
        #expect(done.duration == 4.5)
        #expect(done.progress == 1)
        #expect(done.completedAt == t0.addingTimeInterval(120))
        #expect(done.leaseToken == nil)
    }

    static func terminalStatesAreFinal(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store)
        let lease = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0))
        #expect(try await store.complete(lease, resultPath: "results/r.json", duration: 2, language: "en", now: t0))
        // A second outcome from the same lease, a cancel, a rescue: nothing changes the completed job.
        #expect(try await store.fail(lease, failure: JobFailure(code: "x", message: "y"), now: t0) == false)
        #expect(try await store.release(lease, runAfter: t0, failure: nil, countAttempt: true) == false)
        _ = try await store.cancel(id: job.id, now: t0)
        #expect(try await store.resumeInterrupted(now: t0) == 0)
        #expect(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(1000)) == nil)
        #expect(try await store.job(id: job.id)?.state == .completed)
    }

    static func cancelStopsTheWorkerAndNeverRunsAgain(_ make: Factory) async throws {
        let store = try await make()
        let pending = try await newJob(store)
        let running = try await newJob(store, at: t0.addingTimeInterval(1))
        let cancelledPending = try await store.cancel(id: pending.id, now: t0.addingTimeInterval(2))
        #expect(cancelledPending?.state == .cancelled)
        let lease = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0.addingTimeInterval(2)))
        #expect(lease.job.id == running.id)
        #expect(try await store.cancel(id: running.id, now: t0.addingTimeInterval(3))?.state == .cancelled)
        #expect(try await store.heartbeat(lease, progress: 0.3, leaseDuration: 60, now: t0.addingTimeInterval(4)) == false)
        #expect(try await store.complete(lease, resultPath: "results/r.json", duration: 1, language: "en", now: t0.addingTimeInterval(5)) == false)
        #expect(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(10_000)) == nil)
        let after = try #require(try await store.job(id: running.id))
        #expect(after.state == .cancelled)
        #expect(after.purgeAt == t0.addingTimeInterval(3))
        #expect(try await store.cancel(id: UUID(), now: t0) == nil)
    }

    static func retriesWithBackoffThenExhausts(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store, maxAttempts: 2)
        let first = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0))
        #expect(try await store.release(first, runAfter: t0.addingTimeInterval(30), failure: JobFailure(code: "transient_error", message: "disk hiccup"), countAttempt: true))
        let waiting = try #require(try await store.job(id: job.id))
        #expect(waiting.state == .pending)
        #expect(waiting.attempts == 1)
        #expect(waiting.errorCode == "transient_error")
        // Not due before its backoff.
        #expect(try await store.claim(owner: "a", leaseDuration: 60, now: t0.addingTimeInterval(29)) == nil)
        let second = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0.addingTimeInterval(30)))
        #expect(second.job.attempts == 2)
        // The worker dies with the second attempt: at lease expiry, no third attempt; the job fails.
        #expect(try await store.claim(owner: "b", leaseDuration: 60, now: t0.addingTimeInterval(200)) == nil)
        let failed = try #require(try await store.job(id: job.id))
        #expect(failed.state == .failed)
        #expect(failed.errorCode == "attempts_exhausted")
        #expect(failed.attempts == 2)
    }

    static func shutdownReleaseGivesTheAttemptBack(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store, maxAttempts: 1)
        let lease = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0))
        #expect(try await store.release(lease, runAfter: t0, failure: nil, countAttempt: false))
        #expect(try await store.job(id: job.id)?.attempts == 0)
        let again = try #require(try await store.claim(owner: "b", leaseDuration: 60, now: t0))
        #expect(again.job.attempts == 1)
    }

    static func resumeAtStartUp(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store)
        _ = try await newJob(store)
        _ = try #require(try await store.claim(owner: "dead-process", leaseDuration: 3600, now: t0))
        #expect(try await store.resumeInterrupted(now: t0.addingTimeInterval(5)) == 1)
        let resumed = try #require(try await store.job(id: job.id))
        #expect(resumed.state == .pending)
        #expect(resumed.leaseToken == nil)
        #expect(resumed.attempts == 1)
        // It is first in line again, without waiting for the old lease.
        #expect(try await store.claim(owner: "new", leaseDuration: 60, now: t0.addingTimeInterval(5))?.job.id == job.id)
    }

    static func retrievalDeletionAndExpiry(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store, lifetime: 3600)
        let lease = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0))
        #expect(try await store.complete(lease, resultPath: "results/r.json", duration: 2, language: "en", now: t0.addingTimeInterval(10)))
        #expect(try await store.referencedFiles() == [job.audioPath!, "results/r.json"])
        #expect(try await store.purgeable(now: t0.addingTimeInterval(20), limit: 10).isEmpty)
        // First retrieval schedules deletion; a second does not move it.
        let retrieved = try #require(try await store.markRetrieved(id: job.id, now: t0.addingTimeInterval(20), purgeAt: t0.addingTimeInterval(320)))
        #expect(retrieved.retrievedAt == t0.addingTimeInterval(20))
        _ = try await store.markRetrieved(id: job.id, now: t0.addingTimeInterval(30), purgeAt: t0.addingTimeInterval(330))
        #expect(try await store.job(id: job.id)?.purgeAt == t0.addingTimeInterval(320))
        #expect(try await store.purgeable(now: t0.addingTimeInterval(319), limit: 10).isEmpty)
        #expect(try await store.purgeable(now: t0.addingTimeInterval(320), limit: 10).map(\.id) == [job.id])
        let files = try await store.purgeFiles(id: job.id, now: t0.addingTimeInterval(320))
        #expect(Set(files) == [job.audioPath!, "results/r.json"])
        let tombstone = try #require(try await store.job(id: job.id))
        #expect(tombstone.deletionReason == .retrieved)
        #expect(tombstone.audioPath == nil && tombstone.resultPath == nil)
        #expect(try await store.referencedFiles().isEmpty)
        #expect(try await store.purgeable(now: t0.addingTimeInterval(400), limit: 10).isEmpty)
        // At the deadline the row goes.
        #expect(try await store.expired(now: t0.addingTimeInterval(3599), limit: 10).isEmpty)
        #expect(try await store.expired(now: t0.addingTimeInterval(3600), limit: 10).map(\.id) == [job.id])
        try await store.delete(id: job.id)
        #expect(try await store.job(id: job.id) == nil)
    }

    static func unfinishedJobsNeverExpire(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store, lifetime: 10)
        #expect(try await store.expired(now: t0.addingTimeInterval(100), limit: 10).isEmpty)
        try await store.delete(id: job.id)
        #expect(try await store.job(id: job.id) != nil)
        #expect(try await store.markDeleted(id: job.id, now: t0) == nil)
    }

    static func clientDeletionLeavesATombstone(_ make: Factory) async throws {
        let store = try await make()
        let job = try await newJob(store)
        let lease = try #require(try await store.claim(owner: "a", leaseDuration: 60, now: t0))
        #expect(try await store.fail(lease, failure: JobFailure(code: "undecodable_audio", message: "not audio"), now: t0))
        let failed = try #require(try await store.job(id: job.id))
        #expect(failed.errorCode == "undecodable_audio")
        #expect(failed.purgeAt == t0)
        let files = try #require(try await store.markDeleted(id: job.id, now: t0.addingTimeInterval(1)))
        #expect(files == [job.audioPath!])
        #expect(try await store.markDeleted(id: job.id, now: t0.addingTimeInterval(2)) == [])
        let tombstone = try #require(try await store.job(id: job.id))
        #expect(tombstone.deletionReason == .deleted)
        #expect(tombstone.deletedAt == t0.addingTimeInterval(1))
        #expect(tombstone.state == .failed)
    }

    static func listsNewestFirstWithCursor(_ make: Factory) async throws {
        let store = try await make()
        var jobs: [Job] = []
        for index in 0..<5 { jobs.append(try await newJob(store, at: t0.addingTimeInterval(Double(index)))) }
        _ = try await store.claim(owner: "a", leaseDuration: 60, now: t0.addingTimeInterval(10))
        let page1 = try await store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 2)
        #expect(page1.map(\.id) == [jobs[4].id, jobs[3].id])
        let page2 = try await store.list(tenant: Tenant.anonymous, state: nil, before: page1.last!.sequence, limit: 2)
        #expect(page2.map(\.id) == [jobs[2].id, jobs[1].id])
        let page3 = try await store.list(tenant: Tenant.anonymous, state: nil, before: page2.last!.sequence, limit: 2)
        #expect(page3.map(\.id) == [jobs[0].id])
        #expect(try await store.list(tenant: Tenant.anonymous, state: .processing, before: nil, limit: 10).map(\.id) == [jobs[0].id])
        #expect(try await store.count(state: .pending) == 4)
        #expect(await store.checkWritable())
    }

    static func idempotencyKeysBindOneJob(_ make: Factory) async throws {
        let store = try await make()
        func keyed(_ key: String?) -> Job {
            var job = Job(
                id: UUID(), options: JobOptions(), createdAt: t0, expiresAt: t0.addingTimeInterval(60), maxAttempts: 1,
                audioPath: "audio/x", audioBytes: 1)
            job.idempotencyKey = key
            return job
        }
        let first = try await store.insert(keyed("upload-42"))
        let retry = try await store.insert(keyed("upload-42"))
        #expect(retry.id == first.id)
        #expect(try await store.job(idempotencyKey: "upload-42", tenant: Tenant.anonymous)?.id == first.id)
        #expect(try await store.insert(keyed("upload-43")).id != first.id)
        // Jobs without a key never collide.
        let a = try await store.insert(keyed(nil))
        let b = try await store.insert(keyed(nil))
        #expect(a.id != b.id)
        #expect(try await store.count(state: .pending) == 4)
        // Once the job is gone at its deadline, the key is free again.
        let lease = try #require(try await store.claim(owner: "w", leaseDuration: 60, now: t0))
        _ = try await store.fail(lease, failure: JobFailure(code: "x", message: "y"), now: t0)
        try await store.delete(id: first.id)
        #expect(try await store.insert(keyed("upload-42")).id != first.id)
    }

    /// Jobs belong to their tenant: lookups, listings, idempotency keys and active counts never cross tenants;
    /// the queue and the worker-facing calls stay shared.
    static func tenantsAreScoped(_ make: Factory) async throws {
        let store = try await make()
        func job(_ tenant: String, key: String? = nil, at offset: TimeInterval) -> Job {
            var job = Job(
                id: UUID(), options: JobOptions(), createdAt: t0.addingTimeInterval(offset),
                expiresAt: t0.addingTimeInterval(3600), maxAttempts: 1, audioPath: "audio/\(UUID())", audioBytes: 1)
            job.tenant = tenant
            job.idempotencyKey = key
            return job
        }
        let a1 = try await store.insert(job("alice", key: "same-key", at: 0))
        let b1 = try await store.insert(job("bob", key: "same-key", at: 1))
        let a2 = try await store.insert(job("alice", at: 2))
        // One key, two tenants: two jobs, each found only by its own tenant.
        #expect(a1.id != b1.id)
        #expect(a1.tenant == "alice" && b1.tenant == "bob")
        #expect(try await store.job(idempotencyKey: "same-key", tenant: "alice")?.id == a1.id)
        #expect(try await store.job(idempotencyKey: "same-key", tenant: "bob")?.id == b1.id)
        #expect(try await store.job(idempotencyKey: "same-key", tenant: "carol") == nil)
        #expect(try await store.insert(job("bob", key: "same-key", at: 3)).id == b1.id)

        #expect(try await store.job(id: a1.id, tenant: "alice")?.id == a1.id)
        #expect(try await store.job(id: a1.id, tenant: "bob") == nil)
        #expect(try await store.job(id: a1.id, tenant: Tenant.anonymous) == nil)
        #expect(try await store.list(tenant: "alice", state: nil, before: nil, limit: 10).map(\.id) == [a2.id, a1.id])
        #expect(try await store.list(tenant: "bob", state: nil, before: nil, limit: 10).map(\.id) == [b1.id])
        #expect(try await store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 10).isEmpty)
        #expect(try await store.list(tenant: "alice", state: .pending, before: a2.sequence, limit: 10).map(\.id) == [a1.id])

        // Workers take jobs of every tenant, in arrival order; the active count follows per tenant.
        #expect(try await store.activeJobs(tenant: "alice") == 2)
        let lease = try #require(try await store.claim(owner: "w", leaseDuration: 60, now: t0.addingTimeInterval(10)))
        #expect(lease.job.id == a1.id)
        #expect(try await store.activeJobs(tenant: "alice") == 2)
        #expect(try await store.complete(lease, resultPath: "results/r.json", duration: 1, language: "en", now: t0.addingTimeInterval(11)))
        #expect(try await store.activeJobs(tenant: "alice") == 1)
        #expect(try await store.activeJobs(tenant: "bob") == 1)
        #expect(try await store.activeJobs(tenant: "carol") == 0)
        #expect(try await store.count(state: .pending) == 2)
        #expect(try await store.queuePosition(id: b1.id) == 1)
        #expect(try await store.queuePosition(id: a2.id) == 2)
    }

    /// Every check, for a store implementation to run in one call.
    static let all: [(String, @Sendable (Factory) async throws -> Void)] = [
        ("insertAndRead", insertAndRead),
        ("optionsRoundTrip", optionsRoundTrip),
        ("claimsInOrderOnce", claimsInOrderOnce),
        ("concurrentClaimsAreExclusive", concurrentClaimsAreExclusive),
        ("expiredLeaseIsReclaimedAndStaleWritesFail", expiredLeaseIsReclaimedAndStaleWritesFail),
        ("terminalStatesAreFinal", terminalStatesAreFinal),
        ("cancelStopsTheWorkerAndNeverRunsAgain", cancelStopsTheWorkerAndNeverRunsAgain),
        ("retriesWithBackoffThenExhausts", retriesWithBackoffThenExhausts),
        ("shutdownReleaseGivesTheAttemptBack", shutdownReleaseGivesTheAttemptBack),
        ("resumeAtStartUp", resumeAtStartUp),
        ("retrievalDeletionAndExpiry", retrievalDeletionAndExpiry),
        ("unfinishedJobsNeverExpire", unfinishedJobsNeverExpire),
        ("clientDeletionLeavesATombstone", clientDeletionLeavesATombstone),
        ("listsNewestFirstWithCursor", listsNewestFirstWithCursor),
        ("idempotencyKeysBindOneJob", idempotencyKeysBindOneJob),
        ("tenantsAreScoped", tenantsAreScoped),
    ]
}
