import Foundation
import Logging
import PostgresNIO
import StenoServer
import Testing

/// The job store contract on a real PostgreSQL server, plus what only several nodes on one database can show.
@Suite(.requiresPostgres, .postgresServer) struct PostgresJobStoreTests {
    private static let t0 = JobStoreContract.t0

    private var server: PostgresTestServer {
        get throws { try #require(PostgresTestServer.current, "the suite's .postgresServer trait starts it") }
    }

    private static let logger = PostgresTestServer.quietLogger("steno.jobs.postgres")

    private static func migratedStore(_ client: PostgresClient) async throws -> PostgresJobStore {
        try await PostgresTestServer.migratedJobStore(client, logger: logger)
    }

    @Test(arguments: JobStoreContract.all.map(\.0))
    func contract(_ name: String) async throws {
        let check = try #require(JobStoreContract.all.first { $0.0 == name }?.1)
        try await server.withDatabase { clients in
            try await check { try await Self.migratedStore(clients[0]) }
        }
    }

    /// Two nodes (two connection pools) start at once on a new database, then four workers on each drain one
    /// queue of 50 jobs: each job is claimed by exactly one worker, once, and completed.
    @Test func twoNodesClaimEachJobOnce() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            let nodes = clients.map { PostgresJobStore(client: $0, logger: Self.logger) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in nodes { group.addTask { try await node.migrate() } }
                try await group.waitForAll()
            }
            let versions = try await clients[0].query("SELECT version FROM steno_schema_migrations").collect()
                .map { try $0.decode(Int.self) }
            // Every migration applied once, in order, whichever node ran it.
            #expect(versions.sorted() == Array(1...versions.count))

            var ids = Set<UUID>()
            for index in 0..<50 {
                ids.insert(try await JobStoreContract.newJob(nodes[index % 2], at: Self.t0.addingTimeInterval(Double(index))).id)
            }
            let now = Self.t0.addingTimeInterval(100)
            let claims = try await withThrowingTaskGroup(of: (node: Int, jobs: [UUID]).self) { group in
                for (index, node) in nodes.enumerated() {
                    for worker in 0..<4 {
                        group.addTask {
                            var mine: [UUID] = []
                            while let lease = try await node.claim(owner: "node\(index)-w\(worker)", leaseDuration: 60, now: now) {
                                mine.append(lease.job.id)
                                let completed = try await node.complete(
                                    lease, resultPath: "results/\(lease.job.id).json", duration: 1, language: "en", now: now)
                                #expect(completed)
                            }
                            return (index, mine)
                        }
                    }
                }
                return try await group.reduce(into: [(node: Int, jobs: [UUID])]()) { $0.append($1) }
            }
            let claimed = claims.flatMap(\.jobs)
            #expect(claimed.count == 50)
            #expect(Set(claimed) == ids)
            for node in nodes.indices {
                #expect(claims.filter { $0.node == node }.flatMap(\.jobs).count > 0, "node \(node) claimed nothing")
            }
            let done = try await nodes[1].list(tenant: Tenant.anonymous, state: .completed, before: nil, limit: 100)
            #expect(Set(done.map(\.id)) == ids)
            #expect(done.allSatisfy { $0.attempts == 1 && $0.resultPath == "results/\($0.id).json" })
        }
    }

    /// Node A stalls past its lease (a pause, a partition); node B rescues the job. Whatever A writes afterwards
    /// is rejected, before and after B completes the job.
    @Test func staleNodesWritesAreRejected() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            let a = try await Self.migratedStore(clients[0])
            let b = try await Self.migratedStore(clients[1])
            let job = try await JobStoreContract.newJob(a)
            let stale = try #require(try await a.claim(owner: "node-a", leaseDuration: 30, now: Self.t0))
            #expect(try await b.claim(owner: "node-b", leaseDuration: 30, now: Self.t0.addingTimeInterval(29.999)) == nil)
            let rescue = try #require(try await b.claim(owner: "node-b", leaseDuration: 30, now: Self.t0.addingTimeInterval(30)))
            #expect(rescue.job.id == job.id)
            #expect(rescue.job.attempts == 2)

            #expect(try await a.complete(stale, resultPath: "results/a.json", duration: 1, language: "en", now: Self.t0.addingTimeInterval(31)) == false)
            #expect(try await a.heartbeat(stale, progress: 0.9, leaseDuration: 30, now: Self.t0.addingTimeInterval(31)) == false)
            let during = try #require(try await a.job(id: job.id))
            #expect(during.state == .processing)
            #expect(during.leaseOwner == "node-b")
            #expect(during.resultPath == nil)

            #expect(try await b.complete(rescue, resultPath: "results/b.json", duration: 2, language: "en", now: Self.t0.addingTimeInterval(40)))
            #expect(try await a.complete(stale, resultPath: "results/a.json", duration: 1, language: "en", now: Self.t0.addingTimeInterval(41)) == false)
            #expect(try await a.fail(stale, failure: JobFailure(code: "late", message: "late"), now: Self.t0.addingTimeInterval(41)) == false)
            let done = try #require(try await a.job(id: job.id))
            #expect(done.state == .completed)
            #expect(done.resultPath == "results/b.json")
            #expect(done.completedAt == Self.t0.addingTimeInterval(40))
        }
    }

    /// The same upload retried through both nodes at once: one job, and every attempt gets its id.
    @Test func idempotencyKeyHoldsAcrossNodes() async throws {
        try await server.withDatabase(nodes: 2) { clients in
            let nodes = try await [Self.migratedStore(clients[0]), Self.migratedStore(clients[1])]
            let ids = try await withThrowingTaskGroup(of: UUID.self) { group in
                for attempt in 0..<10 {
                    group.addTask {
                        var job = Job(
                            id: UUID(), options: JobOptions(), createdAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(60),
                            maxAttempts: 1, audioPath: "audio/\(attempt)", audioBytes: 1)
                        job.idempotencyKey = "upload-7"
                        return try await nodes[attempt % 2].insert(job).id
                    }
                }
                return try await group.reduce(into: Set<UUID>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            #expect(try await nodes[0].count(state: .pending) == 1)
            #expect(try await nodes[1].job(idempotencyKey: "upload-7", tenant: Tenant.anonymous)?.id == ids.first)
        }
    }

    /// Times are the caller's, to below a second: a job is due exactly at its time and not a millisecond before,
    /// and a lease ends exactly at its expiry (the contract's clock lies in 2027, so the server's clock would fail it).
    @Test func subSecondTimesKeepTheirOrder() async throws {
        try await server.withDatabase { clients in
            let store = try await Self.migratedStore(clients[0])
            let created = Self.t0.addingTimeInterval(0.25)
            let job = try await JobStoreContract.newJob(store, at: created)
            #expect(job.createdAt == created)
            #expect(try await store.claim(owner: "a", leaseDuration: 0.5, now: created.addingTimeInterval(-0.001)) == nil)
            let lease = try #require(try await store.claim(owner: "a", leaseDuration: 0.5, now: created))
            #expect(lease.job.leaseExpiresAt == Self.t0.addingTimeInterval(0.75))
            #expect(try await store.claim(owner: "b", leaseDuration: 0.5, now: Self.t0.addingTimeInterval(0.749)) == nil)
            #expect(try await store.claim(owner: "b", leaseDuration: 0.5, now: Self.t0.addingTimeInterval(0.75))?.job.id == job.id)
        }
    }
}
