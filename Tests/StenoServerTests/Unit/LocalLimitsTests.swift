import Foundation
import StenoServer
import Testing

/// The per-tenant limits of one process: the in-memory request budget, and the job limit kept by the SQLite
/// store's insert.
@Suite struct LocalLimitsTests {
    @Test func inMemoryBudgetBurstsThenRefillsEvenly() throws {
        let limiter = InMemoryRateLimiter(limit: RateLimit(requests: 3, period: 60))
        let t0 = ContinuousClock.now
        for _ in 0..<3 { #expect(limiter.acquire(tenant: "alice", now: t0) == nil) }
        // The fourth waits for one token: 60 s / 3.
        let wait = try #require(limiter.acquire(tenant: "alice", now: t0))
        #expect(abs(wait - 20) < 0.001)
        // Another tenant has its own budget.
        #expect(limiter.acquire(tenant: "bob", now: t0) == nil)
        // A refused request takes nothing; the token comes at 20 s, one only.
        #expect(limiter.acquire(tenant: "alice", now: t0 + .seconds(19.9)) != nil)
        #expect(limiter.acquire(tenant: "alice", now: t0 + .seconds(20.01)) == nil)
        #expect(limiter.acquire(tenant: "alice", now: t0 + .seconds(20.01)) != nil)
        // After a long quiet time the budget is full, not fuller.
        let later = t0 + .seconds(3600)
        for _ in 0..<3 { #expect(limiter.acquire(tenant: "alice", now: later) == nil) }
        #expect(limiter.acquire(tenant: "alice", now: later) != nil)
    }

    /// Many requests at once through the protocol: exactly the budget goes ahead.
    @Test func inMemoryBudgetHoldsUnderConcurrency() async {
        let limiter: any RateLimiter = InMemoryRateLimiter(limit: RateLimit(requests: 10, period: 3600))
        let allowed = await Self.allowedCount(limiter, tenant: "alice", requests: 100)
        #expect(allowed == 10)
    }

    /// The SQLite store counts and inserts in one transaction: concurrent limited inserts create exactly the bound.
    @Test func sqliteInsertKeepsTheJobLimit() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.url.appendingPathComponent("jobs.sqlite"))
        try await LimitedInserts.check(stores: [store])
    }

    @Test func sqliteInsertKeepsTheQueueBound() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.url.appendingPathComponent("steno.sqlite"))
        try await LimitedInserts.checkQueueBound(stores: [store])
    }

    static func allowedCount(_ limiter: any RateLimiter, tenant: String, requests: Int) async -> Int {
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<requests {
                group.addTask { (try? await limiter.acquire(tenant: tenant)) == .some(nil) }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }
}

/// The job limit at insert time, against any number of stores on one database (one per node).
enum LimitedInserts {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func job(tenant: String, key: String? = nil) -> Job {
        let id = UUID()
        var job = Job(
            id: id, options: JobOptions(), createdAt: t0, expiresAt: t0.addingTimeInterval(3600), maxAttempts: 3,
            audioPath: "audio/\(id.uuidString.lowercased())", audioBytes: 10)
        job.tenant = tenant
        job.idempotencyKey = key
        return job
    }

    /// A limit of 5: one job with an idempotency key first, then 40 inserts at once spread over the stores create
    /// the other 4 and refuse 36. The keyed job is still found when the tenant is full; other tenants are not held
    /// back; a finished job frees a place.
    static func check(stores: [any JobStore]) async throws {
        let limit = 5
        let keyed = try await stores[0].insert(job(tenant: "alice", key: "retry-me"), maxActiveJobs: limit)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                group.addTask {
                    do {
                        _ = try await stores[index % stores.count].insert(job(tenant: "alice"), maxActiveJobs: limit)
                        return true
                    } catch is TenantJobLimitReached {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == limit - 1)
        #expect(outcomes.filter { !$0 }.count == 40 - (limit - 1))
        for store in stores { #expect(try await store.activeJobs(tenant: "alice") == limit) }

        // A retried submit gets its job back even at the limit; a new one is refused.
        let again = try await stores[stores.count - 1].insert(job(tenant: "alice", key: "retry-me"), maxActiveJobs: limit)
        #expect(again.id == keyed.id)
        await #expect(throws: TenantJobLimitReached.self) {
            try await stores[0].insert(job(tenant: "alice", key: "new-key"), maxActiveJobs: limit)
        }
        #expect(try await stores[0].job(idempotencyKey: "new-key", tenant: "alice") == nil)

        // Bob has his own bound.
        _ = try await stores[stores.count - 1].insert(job(tenant: "bob"), maxActiveJobs: limit)

        // Cancelling one of Alice's jobs frees one place, and one only.
        _ = try await stores[0].cancel(id: keyed.id, now: t0.addingTimeInterval(1))
        _ = try await stores[stores.count - 1].insert(job(tenant: "alice"), maxActiveJobs: limit)
        await #expect(throws: TenantJobLimitReached.self) {
            try await stores[0].insert(job(tenant: "alice"), maxActiveJobs: limit)
        }
        #expect(try await stores[0].activeJobs(tenant: "alice") == limit)
    }

    /// A queue bound of 5: 40 inserts at once from different tenants, spread over the stores, create 5 and refuse
    /// 35 with `QueueFull`; a retried submit still finds its job; a claimed job (no longer pending) frees a place.
    static func checkQueueBound(stores: [any JobStore]) async throws {
        let limits = InsertLimits(maxPendingJobs: 5)
        let keyed = try await stores[0].insert(job(tenant: "tenant-keyed", key: "retry-me"), limits: limits)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                group.addTask {
                    do {
                        _ = try await stores[index % stores.count].insert(job(tenant: "tenant-\(index)"), limits: limits)
                        return true
                    } catch is QueueFull {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 4)
        for store in stores { #expect(try await store.count(state: .pending) == 5) }
        #expect(try await stores[stores.count - 1].insert(job(tenant: "tenant-keyed", key: "retry-me"), limits: limits).id == keyed.id)
        await #expect(throws: QueueFull.self) { try await stores[0].insert(job(tenant: "another"), limits: limits) }

        _ = try #require(try await stores[0].claim(owner: "worker", leaseDuration: 60, now: t0.addingTimeInterval(1)))
        _ = try await stores[stores.count - 1].insert(job(tenant: "another"), limits: limits)
        await #expect(throws: QueueFull.self) { try await stores[0].insert(job(tenant: "one-more"), limits: limits) }
        #expect(try await stores[0].count(state: .pending) == 5)
    }
}
