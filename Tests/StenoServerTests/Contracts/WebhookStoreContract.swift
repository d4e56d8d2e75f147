import Foundation
import StenoServer
import Testing

/// The promises every `WebhookStore` keeps, run against SQLite and PostgreSQL. Each check gets a fresh store and
/// drives time by hand.
enum WebhookStoreContract {
    typealias Factory = @Sendable () async throws -> any WebhookStore

    static let t0 = JobStoreContract.t0
    static let hook = WebhookRequest(url: "https://hooks.example.com/steno", headerName: "Authorization", headerValue: "Bearer abc")

    /// A job with a webhook, inserted at `time`; finished (completed) at the same time unless `finish` is false.
    @discardableResult
    static func job(_ store: any WebhookStore, at time: Date = t0, finish: Bool = true, webhook: WebhookRequest? = hook) async throws -> Job {
        var job = Job(
            id: UUID(), options: JobOptions(), createdAt: time, expiresAt: time.addingTimeInterval(3600), maxAttempts: 3,
            audioPath: "audio/x", audioBytes: 1)
        job.webhook = webhook
        let inserted = try await store.insert(job)
        if finish {
            let lease = try #require(try await store.claim(owner: "worker", leaseDuration: 60, now: time))
            #expect(lease.job.id == inserted.id, "finish jobs one at a time, in order")
            #expect(try await store.complete(lease, resultPath: "results/x", duration: 1, language: "en", now: time))
        }
        return inserted
    }

    static func claim(_ store: any WebhookStore, _ now: Date, limit: Int = 10, maxAttempts: Int = 3, lease: TimeInterval = 30) async throws -> [WebhookLease] {
        try await store.claimWebhooks(owner: "dispatcher", limit: limit, maxAttempts: maxAttempts, leaseDuration: lease, now: now)
    }

    static func insertWritesTheWebhookWithTheJob(_ make: Factory) async throws {
        let store = try await make()
        let job = try await job(store, finish: false)
        let delivery = try #require(try await store.webhook(jobID: job.id))
        #expect(delivery.request == hook)
        #expect(delivery.state == .pending)
        #expect(delivery.attempts == 0)
        #expect(delivery.nextAttemptAt == t0)
        #expect(try await store.job(id: job.id)?.webhook == nil, "rows read back leave the request out")
        let plain = try await Self.job(store, finish: false, webhook: nil)
        #expect(try await store.webhook(jobID: plain.id) == nil)

        // A retried upload with the same key gets the first job and changes nothing of its webhook.
        var first = Job(id: UUID(), options: JobOptions(), createdAt: t0, expiresAt: t0.addingTimeInterval(60), maxAttempts: 1,
                        audioPath: "audio/k", audioBytes: 1)
        first.idempotencyKey = "key-1"
        first.webhook = hook
        let original = try await store.insert(first)
        var retry = first
        retry.id = UUID()
        retry.webhook = WebhookRequest(url: "https://elsewhere.example.com/")
        #expect(try await store.insert(retry).id == original.id)
        #expect(try await store.webhook(jobID: original.id)?.request == hook)
        #expect(try await store.webhook(jobID: retry.id) == nil)
    }

    /// The webhook row and the job row are one write: a webhook the table refuses takes the job with it.
    static func insertIsAtomic(_ make: Factory) async throws {
        let store = try await make()
        var job = Job(id: UUID(), options: JobOptions(), createdAt: t0, expiresAt: t0.addingTimeInterval(60), maxAttempts: 1,
                      audioPath: "audio/y", audioBytes: 1)
        job.webhook = WebhookRequest(url: "https://example.com/" + String(repeating: "a", count: 3000))
        await #expect(throws: (any Error).self) { try await store.insert(job) }
        #expect(try await store.job(id: job.id) == nil)
        #expect(try await store.count(state: .pending) == 0)
    }

    static func onlyFinishedJobsAreClaimedAndOnce(_ make: Factory) async throws {
        let store = try await make()
        let waiting = try await job(store, finish: false)
        #expect(try await claim(store, t0.addingTimeInterval(1)).isEmpty, "the job is not finished")
        let processing = try #require(try await store.claim(owner: "worker", leaseDuration: 60, now: t0))
        #expect(try await claim(store, t0.addingTimeInterval(1)).isEmpty, "the job is still processing")
        #expect(try await store.fail(processing, failure: JobFailure(code: "undecodable_audio", message: "no"), now: t0.addingTimeInterval(2)))
        let claimed = try await claim(store, t0.addingTimeInterval(3))
        #expect(claimed.map(\.delivery.jobID) == [waiting.id])
        #expect(claimed.first?.delivery.attempts == 1)
        #expect(claimed.first?.delivery.leaseExpiresAt == t0.addingTimeInterval(33))
        #expect(claimed.first?.delivery.request == hook)
        #expect(try await claim(store, t0.addingTimeInterval(4)).isEmpty, "held by the first claim")

        // Cancelled jobs call back too.
        let cancelled = try await job(store, finish: false)
        _ = try await store.cancel(id: cancelled.id, now: t0.addingTimeInterval(5))
        #expect(try await claim(store, t0.addingTimeInterval(6)).map(\.delivery.jobID) == [cancelled.id])
    }

    static func outcomesAreGuardedByTheLease(_ make: Factory) async throws {
        let store = try await make()
        let job = try await job(store)
        let first = try #require(try await claim(store, t0).first)
        #expect(try await claim(store, t0.addingTimeInterval(29.5)).isEmpty)
        // The first dispatcher stalled past its lease: another takes the delivery over.
        let second = try #require(try await claim(store, t0.addingTimeInterval(30)).first)
        #expect(second.delivery.attempts == 2)
        #expect(try await store.recordWebhookAttempt(first, outcome: .delivered(statusCode: 200), now: t0.addingTimeInterval(31)) == false)
        #expect(try await store.webhook(jobID: job.id)?.state == .pending)
        #expect(try await store.recordWebhookAttempt(second, outcome: .delivered(statusCode: 204), now: t0.addingTimeInterval(32)))
        let delivered = try #require(try await store.webhook(jobID: job.id))
        #expect(delivered.state == .delivered)
        #expect(delivered.lastStatusCode == 204)
        #expect(delivered.deliveredAt == t0.addingTimeInterval(32))
        #expect(delivered.lastAttemptAt == t0.addingTimeInterval(30))
        #expect(delivered.leaseToken == nil)
        // Final: never claimed again, and a late write changes nothing.
        #expect(try await claim(store, t0.addingTimeInterval(1000)).isEmpty)
        #expect(try await store.recordWebhookAttempt(second, outcome: .failed(statusCode: 500, error: "late"), now: t0.addingTimeInterval(40)) == false)
        #expect(try await store.webhook(jobID: job.id)?.state == .delivered)
    }

    static func retriesComeDueThenFail(_ make: Factory) async throws {
        let store = try await make()
        let job = try await job(store)
        let first = try #require(try await claim(store, t0).first)
        #expect(try await store.recordWebhookAttempt(
            first, outcome: .retry(at: t0.addingTimeInterval(10), statusCode: 503, error: "the receiver answered 503"), now: t0))
        let waiting = try #require(try await store.webhook(jobID: job.id))
        #expect(waiting.state == .pending)
        #expect(waiting.nextAttemptAt == t0.addingTimeInterval(10))
        #expect(waiting.lastStatusCode == 503)
        #expect(waiting.lastError == "the receiver answered 503")
        #expect(waiting.leaseToken == nil)
        #expect(try await claim(store, t0.addingTimeInterval(9.9)).isEmpty)
        let second = try #require(try await claim(store, t0.addingTimeInterval(10)).first)
        #expect(second.delivery.attempts == 2)
        #expect(try await store.recordWebhookAttempt(second, outcome: .failed(statusCode: nil, error: "connection refused"), now: t0.addingTimeInterval(11)))
        let failed = try #require(try await store.webhook(jobID: job.id))
        #expect(failed.state == .failed)
        #expect(failed.lastStatusCode == nil)
        #expect(failed.lastError == "connection refused")
        #expect(try await claim(store, t0.addingTimeInterval(1000)).isEmpty)
    }

    /// A node that dies mid-attempt every time does not make the delivery loop forever.
    static func interruptedAttemptsRunOut(_ make: Factory) async throws {
        let store = try await make()
        let job = try await job(store)
        #expect(try await claim(store, t0, maxAttempts: 2).count == 1)
        #expect(try await claim(store, t0.addingTimeInterval(30), maxAttempts: 2).count == 1)
        #expect(try await claim(store, t0.addingTimeInterval(60), maxAttempts: 2).isEmpty)
        let failed = try #require(try await store.webhook(jobID: job.id))
        #expect(failed.state == .failed)
        #expect(failed.attempts == 2)
        #expect(failed.lastError?.contains("interrupted") == true)
    }

    static func concurrentClaimsAreExclusive(_ make: Factory) async throws {
        let store = try await make()
        var ids = Set<UUID>()
        for index in 0..<20 { ids.insert(try await job(store, at: t0.addingTimeInterval(Double(index))).id) }
        let now = t0.addingTimeInterval(100)
        let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine: [UUID] = []
                    while true {
                        let batch = try await claim(store, now, limit: 3)
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.delivery.jobID)
                    }
                }
            }
            return try await group.reduce(into: [UUID]()) { $0 += $1 }
        }
        #expect(claimed.count == 20)
        #expect(Set(claimed) == ids)
    }

    static func goesWithItsJob(_ make: Factory) async throws {
        let store = try await make()
        let job = try await job(store)
        try await store.delete(id: job.id)
        #expect(try await store.job(id: job.id) == nil)
        #expect(try await store.webhook(jobID: job.id) == nil)
    }

    static let all: [(String, @Sendable (Factory) async throws -> Void)] = [
        ("insertWritesTheWebhookWithTheJob", insertWritesTheWebhookWithTheJob),
        ("insertIsAtomic", insertIsAtomic),
        ("onlyFinishedJobsAreClaimedAndOnce", onlyFinishedJobsAreClaimedAndOnce),
        ("outcomesAreGuardedByTheLease", outcomesAreGuardedByTheLease),
        ("retriesComeDueThenFail", retriesComeDueThenFail),
        ("interruptedAttemptsRunOut", interruptedAttemptsRunOut),
        ("concurrentClaimsAreExclusive", concurrentClaimsAreExclusive),
        ("goesWithItsJob", goesWithItsJob),
    ]
}
