package import Foundation
package import Logging
package import PostgresNIO

/// The tenants' request budgets in PostgreSQL, shared by every node on the database: a tenant gets its rate once
/// across all API nodes, not once per node.
///
/// GCRA (the generic cell rate algorithm), which behaves as the in-memory token bucket: `requests` at once, then
/// one every `period / requests`. Each tenant has one row holding its theoretical arrival time (`tat`), the time
/// its budget would be full again. A request at `now` is allowed when `max(tat, now) + interval - now <= period`,
/// and then moves `tat` to `max(tat, now) + interval`; a refused request changes nothing and waits
/// `max(tat, now) + interval - period - now`.
///
/// Each request is ONE statement (`INSERT … ON CONFLICT DO UPDATE … RETURNING`): the row is locked while it is
/// decided and written, so concurrent requests on any number of nodes queue on it and none is lost or counted
/// twice. Time is the database's clock (`clock_timestamp()`), one clock for every node, so skew between the
/// nodes' clocks cannot widen the budget. The table holds one row per tenant that ever made a request; tenants
/// are the configured keys' owners, so it stays small and is never cleaned. It is unlogged: a request costs no
/// WAL flush, and a database crash only gives every tenant a full budget again.
package final class PostgresRateLimiter: RateLimiter {
    package let limit: RateLimit
    private let client: PostgresClient
    private let timeout: Duration
    private let logger: Logger
    /// The emission interval, `period / requests`, in whole microseconds (PostgreSQL's resolution), rounded down
    /// so that a full burst of `requests` always fits in `period`.
    private let intervalMicroseconds: Int64
    private let periodMicroseconds: Int64

    package init(limit: RateLimit, client: PostgresClient, timeout: Duration = .seconds(10),
                 logger: Logger = Logger(label: "steno.ratelimit.postgres")) {
        self.limit = limit
        self.client = client
        self.timeout = timeout
        self.logger = logger
        periodMicroseconds = Int64((limit.period * 1_000_000).rounded())
        intervalMicroseconds = max(1, periodMicroseconds / Int64(limit.requests))
    }

    package func acquire(tenant: String) async throws -> TimeInterval? {
        let (interval, period) = (intervalMicroseconds, periodMicroseconds)
        // `seen_at` carries this request's `now` from the inserted row (EXCLUDED) into the update, so the decision
        // uses one reading of the clock. Every right-hand side of the SET reads the row as it was before.
        let query: PostgresQuery = """
            INSERT INTO steno_rate_limits AS bucket (tenant, tat, seen_at, allowed)
            SELECT \(tenant), clock.now + \(interval) * interval '1 microsecond', clock.now, true
            FROM (SELECT clock_timestamp() AS now) clock
            ON CONFLICT (tenant) DO UPDATE SET
                allowed = GREATEST(bucket.tat, EXCLUDED.seen_at) + \(interval) * interval '1 microsecond'
                          <= EXCLUDED.seen_at + \(period) * interval '1 microsecond',
                tat = CASE WHEN GREATEST(bucket.tat, EXCLUDED.seen_at) + \(interval) * interval '1 microsecond'
                                <= EXCLUDED.seen_at + \(period) * interval '1 microsecond'
                           THEN GREATEST(bucket.tat, EXCLUDED.seen_at) + \(interval) * interval '1 microsecond'
                           ELSE bucket.tat END,
                seen_at = EXCLUDED.seen_at
            RETURNING allowed,
                      EXTRACT(EPOCH FROM tat + \(interval) * interval '1 microsecond'
                                         - \(period) * interval '1 microsecond' - seen_at)::float8
            """
        let (client, logger) = (client, logger)
        let rows = try await withDatabaseDeadline(timeout) { try await client.query(query, logger: logger).collect() }
        guard let row = rows.first else { throw PostgresRateLimiterError.noAnswer }
        let (allowed, wait) = try row.decode((Bool, Double).self)
        return allowed ? nil : max(wait, 0)
    }
}

enum PostgresRateLimiterError: Error {
    /// The upsert returned no row, which its statement cannot do.
    case noAnswer
}
