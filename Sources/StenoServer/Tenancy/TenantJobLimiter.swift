import Foundation

/// The per-tenant bound on concurrent jobs (pending and processing). An upload reserves a place before its
/// body is read and gives it back once its job is recorded (or the upload failed): the count in the store plus
/// the reservations never passes the bound on one node, however many uploads race. Nodes sharing a PostgreSQL
/// database each check the shared count, so together they can pass it by their uploads in flight.
final class TenantJobLimiter: Sendable {
    let maxJobs: Int
    private let reserved = Locked<[String: Int]>([:])

    init(maxJobs: Int) { self.maxJobs = maxJobs }

    /// Reserves a place for `tenant`, or returns false when its jobs (recorded and in flight) fill the bound.
    /// A true answer must be followed by `release(tenant:)`.
    func reserve(tenant: String, store: any JobStore) async throws -> Bool {
        // Reserve first, count second: a job recorded after the reservation is already counted by it, and one
        // recorded before is in the store's count.
        let inFlight = reserved.withLock { reserved -> Int in
            reserved[tenant, default: 0] += 1
            return reserved[tenant]!
        }
        let recorded: Int
        do {
            recorded = try await store.activeJobs(tenant: tenant)
        } catch {
            release(tenant: tenant)
            throw error
        }
        if recorded + inFlight > maxJobs {
            release(tenant: tenant)
            return false
        }
        return true
    }

    func release(tenant: String) {
        reserved.withLock { reserved in
            reserved[tenant, default: 1] -= 1
            if reserved[tenant] == 0 { reserved[tenant] = nil }
        }
    }
}
