public import Foundation

/// A request rate: `20/s`, `600/m`, `5000/h`. Up to `requests` at once, refilled evenly over `period`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    public var requests: Int
    public var period: TimeInterval

    public init(requests: Int, period: TimeInterval) {
        self.requests = requests
        self.period = period
    }

    /// `N/s`, `N/m`, `N/h` (also `N/sec`, `N/min`, `N/hour`); nil for anything else.
    public init?(parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).lowercased().split(separator: "/")
        guard parts.count == 2, let requests = Int(parts[0]), requests >= 1 else { return nil }
        switch parts[1] {
        case "s", "sec", "second": period = 1
        case "m", "min", "minute": period = 60
        case "h", "hour": period = 3600
        default: return nil
        }
        self.requests = requests
    }

    public var description: String {
        "\(requests)/" + (period == 1 ? "s" : period == 60 ? "m" : period == 3600 ? "h" : "\(period)s")
    }
}

/// Where the tenants' request budgets live: in the process (`InMemoryRateLimiter`, one node) or in the database
/// that several nodes share (`PostgresRateLimiter`, so N API nodes give a tenant its rate once, not N times).
package protocol RateLimiter: Sendable {
    var limit: RateLimit { get }
    /// nil when the request may go ahead (and is counted); otherwise the seconds until it may. Throws
    /// `DatabaseUnavailable` when a shared budget cannot be reached (the API answers 503).
    func acquire(tenant: String) async throws -> TimeInterval?
}

/// One token bucket per tenant, on the monotonic clock: a request takes a token or is refused with the time until
/// the next token. Buckets of tenants that went quiet are full again, and dropped when the map grows.
package final class InMemoryRateLimiter: RateLimiter {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    package let limit: RateLimit
    private let buckets = Locked<[String: Bucket]>([:])

    package init(limit: RateLimit) { self.limit = limit }

    package func acquire(tenant: String) async -> TimeInterval? {
        acquire(tenant: tenant, now: .now)
    }

    /// nil when the request may go ahead; otherwise the seconds to wait for a token.
    package func acquire(tenant: String, now: ContinuousClock.Instant) -> TimeInterval? {
        let capacity = Double(limit.requests)
        let perSecond = capacity / limit.period
        return buckets.withLock { buckets in
            var bucket = buckets[tenant] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = (now - bucket.updated).seconds
            bucket.tokens = min(capacity, bucket.tokens + max(0, elapsed) * perSecond)
            bucket.updated = now
            defer {
                if buckets.count > 10_000 { buckets = buckets.filter { $0.value.tokens < capacity } }
                buckets[tenant] = bucket
            }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return (1 - bucket.tokens) / perSecond
        }
    }
}
