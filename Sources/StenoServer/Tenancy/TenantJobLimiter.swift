import Foundation

/// The per-tenant bound on concurrent jobs (pending and processing). An upload reserves a place before its
/// body is read and gives it back once its job is recorded (or the upload failed): the count in the store plus
/// the reservations never passes the bound on one node, however many uploads race, and an upload over it is
/// refused before its body is read. This is the early check; the bound itself is kept by the store, which counts
/// and inserts in one step (`JobStore.insert(_:limits:)`), so nodes sharing a PostgreSQL database cannot
/// pass it together with their uploads in flight.
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

/// The tenant already has its limit of pending and processing jobs: the store wrote nothing.
public struct TenantJobLimitReached: Error, CustomStringConvertible {
    public var tenant: String
    public var limit: Int

    public init(tenant: String, limit: Int) {
        self.tenant = tenant
        self.limit = limit
    }

    public var description: String { "the tenant has \(limit) jobs pending or processing, its limit" }
}
