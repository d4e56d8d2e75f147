import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import StenoServer
import Testing

/// The per-tenant limits of nodes sharing one PostgreSQL database hold for all of them together: one request
/// budget and one job bound per tenant, whichever nodes the requests reach.
@Suite(.requiresPostgres, .postgresServer) struct SharedLimitsTests {
    private var server: PostgresTestServer {
        get throws { try #require(PostgresTestServer.current, "the suite's .postgresServer trait starts it") }
    }

    private static let logger = PostgresTestServer.quietLogger("steno.tests.limits")

    private static func migrate(_ client: PostgresClient) async throws -> PostgresJobStore {
        try await PostgresTestServer.migratedJobStore(client, logger: logger)
    }

    /// 20 per hour, 100 requests at once over two nodes (two pools): exactly 20 go ahead, the others are told to
    /// wait for the next one, three minutes away. An in-memory budget per node would let 40 through.
    @Test func twoNodesShareOneRateBudget() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            _ = try await Self.migrate(clients[0])
            let limit = RateLimit(requests: 20, period: 3600)
            let nodes = clients.map { PostgresRateLimiter(limit: limit, client: $0, logger: Self.logger) }
            let answers = try await withThrowingTaskGroup(of: TimeInterval?.self) { group in
                for index in 0..<100 {
                    group.addTask { try await nodes[index % 2].acquire(tenant: "alice") }
                }
                return try await group.reduce(into: [TimeInterval?]()) { $0.append($1) }
            }
            #expect(answers.filter { $0 == nil }.count == 20)
            let waits = answers.compactMap { $0 }
            #expect(waits.count == 80)
            #expect(waits.allSatisfy { $0 > 150 && $0 <= 180 }, "\(waits.min() ?? 0)…\(waits.max() ?? 0)")
            // The budgets cost no WAL flush (migration 7).
            let persistence = try await clients[0].query("SELECT relpersistence::text FROM pg_class WHERE relname = 'steno_rate_limits'")
                .collect().first?.decode(String.self)
            #expect(persistence == "u")
            // Refused requests took nothing, on either node; Bob's budget is his own.
            #expect(try await nodes[0].acquire(tenant: "alice") != nil)
            #expect(try await nodes[1].acquire(tenant: "bob") == nil)
        }
    }

    /// 2 per 20 s (one every 10 s): a burst of two, then the third waits up to 10 s; after that wait one more
    /// goes ahead (on the other node), and none of the next three does. The long period keeps the test
    /// exact on a loaded machine, where each call may take a second: the budget refills only every 10 s.
    @Test func sharedBudgetRefillsEvenly() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            _ = try await Self.migrate(clients[0])
            let limit = RateLimit(requests: 2, period: 20)
            let nodes = clients.map { PostgresRateLimiter(limit: limit, client: $0, logger: Self.logger) }
            let burstStarted = ContinuousClock.now
            #expect(try await nodes[0].acquire(tenant: "alice") == nil)
            #expect(try await nodes[1].acquire(tenant: "alice") == nil)
            let wait = try #require(try await nodes[0].acquire(tenant: "alice"))
            let burst = burstStarted.duration(to: .now).seconds
            #expect(wait > 0 && wait <= 10 && wait + burst > 9, "wait \(wait) s after a burst of \(burst) s")
            try await Task.sleep(for: .seconds(wait + 0.1))
            #expect(try await nodes[1].acquire(tenant: "alice") == nil)
            var next: [TimeInterval?] = []
            for node in [0, 1, 0] { next.append(try await nodes[node].acquire(tenant: "alice")) }
            #expect(next.filter { $0 == nil }.isEmpty, "\(next)")
            #expect(next.compactMap { $0 }.allSatisfy { $0 > 0 && $0 <= 10 }, "\(next)")
        }
    }

    /// A database that cannot be reached is `DatabaseUnavailable` (503) within the deadline, not an error 500.
    @Test func unreachableDatabaseIsUnavailable() async throws {
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1", port: 1, username: "steno", password: nil, database: "none", tls: .disable)
        configuration.options.connectTimeout = .milliseconds(200)
        let client = PostgresClient(configuration: configuration)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let limiter = PostgresRateLimiter(
                limit: RateLimit(requests: 5, period: 60), client: client, timeout: .milliseconds(500), logger: Self.logger)
            let started = ContinuousClock.now
            await #expect(throws: DatabaseUnavailable.self) { try await limiter.acquire(tenant: "alice") }
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    /// A job limit of 5 and 40 inserts at once through two stores (two nodes): exactly 5 jobs.
    @Test func twoNodesKeepOneJobLimit() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            let stores = [try await Self.migrate(clients[0]), PostgresJobStore(client: clients[1], logger: Self.logger)]
            try await LimitedInserts.check(stores: stores)
        }
    }

    /// A queue bound of 5 and 40 inserts at once through two stores (two nodes): exactly 5 pending jobs.
    @Test func twoNodesKeepOneQueueBound() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            let stores = [try await Self.migrate(clients[0]), PostgresJobStore(client: clients[1], logger: Self.logger)]
            try await LimitedInserts.checkQueueBound(stores: stores)
        }
    }

    // MARK: - Through the API of two nodes

    /// Two servers built as `steno serve --database` builds them, on one database, each with its own router.
    private func withTwoNodes(
        _ adjust: (inout ServerConfiguration) -> Void, transcriber: any Transcriber,
        _ body: @Sendable @escaping (any TestClientProtocol, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await server.withNamedDatabase { url, _ in
            let directories = [try TemporaryDirectory(), try TemporaryDirectory()]
            let services = try directories.map { directory in
                var configuration = ServerConfiguration.testing(dataDirectory: directory.url, databaseURL: url)
                configuration.shutdownGrace = 0.2
                configuration.logLevel = .critical
                TenancyTests.withKeys(&configuration)
                adjust(&configuration)
                return try buildApplication(configuration: configuration, transcriber: transcriber)
            }
            // The data directories (upload spools) must outlive the servers.
            defer { withExtendedLifetime(directories) {} }
            try await services[0].app.test(.router) { first in
                try await services[1].app.test(.router) { second in
                    for client in [first, second] {
                        for _ in 0..<400 {
                            if try await client.execute(uri: "/readyz", method: .get).status == .ok { break }
                            try await Task.sleep(for: .milliseconds(25))
                        }
                    }
                    try await body(first, second)
                }
            }
        }
    }

    /// `--rate-limit 3/m` on two nodes: Alice gets 3 requests in all, then `429 rate_limited` with Retry-After on
    /// both nodes.
    @Test func rateLimitHoldsAcrossNodes() async throws {
        try await withTwoNodes({ $0.rateLimit = RateLimit(parsing: "3/m") }, transcriber: HeldTranscriber()) { first, second in
            var statuses: [HTTPResponse.Status] = []
            for index in 0..<6 {
                let client = index % 2 == 0 ? first : second
                let response = try await client.execute(
                    uri: "/transcribe", method: .get, headers: TenancyTests.auth(TenancyTests.aliceKey))
                statuses.append(response.status)
                if response.status == .tooManyRequests {
                    #expect(try client.errorCode(response) == "rate_limited")
                    let wait = try #require(response.headers[.retryAfter].flatMap(Int.init))
                    #expect((1...20).contains(wait))
                }
            }
            #expect(statuses == [.ok, .ok, .ok, .tooManyRequests, .tooManyRequests, .tooManyRequests])
            #expect(try await second.execute(uri: "/transcribe", method: .get, headers: TenancyTests.auth(TenancyTests.bobKey)).status == .ok)
        }
    }

    /// `--max-jobs-per-key 2` on two nodes: ten uploads at once, five to each node, create two jobs; the others
    /// get `429 too_many_jobs` with Retry-After. Each node's own reservations would let two through each.
    @Test func jobLimitHoldsAcrossNodes() async throws {
        let transcriber = HeldTranscriber()
        defer { transcriber.release() }
        try await withTwoNodes({ $0.maxJobsPerKey = 2 }, transcriber: transcriber) { first, second in
            let answers = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?, String?).self) { group in
                for index in 0..<10 {
                    group.addTask {
                        let client = index % 2 == 0 ? first : second
                        let form = MultipartForm(file: Data("recording \(index)".utf8))
                        let response = try await client.execute(
                            uri: "/transcribe", method: .post,
                            headers: TenancyTests.auth(TenancyTests.aliceKey, [.contentType: form.contentType]), body: form.body)
                        let code = response.status == .accepted ? nil : try client.errorCode(response)
                        return (response.status, response.headers[.retryAfter], code)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.filter { $0.0 == .accepted }.count == 2, "\(answers)")
            let refused = answers.filter { $0.0 != .accepted }
            #expect(refused.count == 8)
            #expect(refused.allSatisfy { $0.0 == .tooManyRequests && $0.1 == "10" && $0.2 == "too_many_jobs" })
            let list = try await second.execute(uri: "/transcribe", method: .get, headers: TenancyTests.auth(TenancyTests.aliceKey))
            #expect(try TestJSON.decode(Components.Schemas.JobList.self, list.body).jobs.count == 2)
            transcriber.release()
        }
    }

    /// `--max-queued-jobs 3` on two API nodes (no workers, so nothing leaves the queue): ten uploads at once, five
    /// to each node, create three jobs; the others get `503 queue_full` with Retry-After. The count each node
    /// makes before reading the body sees an empty queue for all ten.
    @Test func queueBoundHoldsAcrossNodes() async throws {
        try await withTwoNodes({ $0.maxQueuedJobs = 3; $0.role = .api }, transcriber: ScriptedTranscriber()) { first, second in
            let answers = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?, String?).self) { group in
                for index in 0..<10 {
                    group.addTask {
                        let client = index % 2 == 0 ? first : second
                        let form = MultipartForm(file: Data("recording \(index)".utf8))
                        let response = try await client.execute(
                            uri: "/transcribe", method: .post,
                            headers: TenancyTests.auth(TenancyTests.aliceKey, [.contentType: form.contentType]), body: form.body)
                        let code = response.status == .accepted ? nil : try client.errorCode(response)
                        return (response.status, response.headers[.retryAfter], code)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.filter { $0.0 == .accepted }.count == 3, "\(answers)")
            let refused = answers.filter { $0.0 != .accepted }
            #expect(refused.count == 7)
            #expect(refused.allSatisfy { $0.0 == .serviceUnavailable && $0.1 == "30" && $0.2 == "queue_full" }, "\(refused)")
        }
    }
}
