import Foundation
import HummingbirdTesting
import Logging
import PostgresNIO
import StenoServer
import Testing

/// The webhook store contract on a real SQLite file.
@Suite struct SQLiteWebhookStoreTests {
    @Test(arguments: WebhookStoreContract.all.map(\.0))
    func contract(_ name: String) async throws {
        let check = try #require(WebhookStoreContract.all.first { $0.0 == name }?.1)
        let directory = try TemporaryDirectory()
        try await check { try SQLiteJobStore(path: directory.url.appendingPathComponent("jobs-\(UUID()).sqlite")) }
    }

    /// Two store instances on one file (as two processes would open it) never claim one delivery twice.
    @Test func twoConnectionsClaimEachDeliveryOnce() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.url.appendingPathComponent("steno.sqlite")
        let stores = [try SQLiteJobStore(path: path), try SQLiteJobStore(path: path)]
        for index in 0..<30 {
            try await WebhookStoreContract.job(stores[0], at: WebhookStoreContract.t0.addingTimeInterval(Double(index)))
        }
        let claimed = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for store in stores {
                for _ in 0..<3 {
                    group.addTask {
                        var mine: [UUID] = []
                        while true {
                            let batch = try await WebhookStoreContract.claim(store, WebhookStoreContract.t0.addingTimeInterval(100), limit: 2)
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.delivery.jobID)
                        }
                    }
                }
            }
            return try await group.reduce(into: [UUID]()) { $0 += $1 }
        }
        #expect(claimed.count == 30)
        #expect(Set(claimed).count == 30)
    }
}

/// The webhook store contract on a real PostgreSQL server.
@Suite(.requiresPostgres, .postgresServer) struct PostgresWebhookStoreTests {
    private static let logger: Logger = {
        var logger = Logger(label: "steno.jobs.postgres")
        logger.logLevel = .warning
        return logger
    }()

    static func migratedStore(_ client: PostgresClient) async throws -> PostgresJobStore {
        let store = PostgresJobStore(client: client, logger: logger)
        try await store.migrate()
        return store
    }

    @Test(arguments: WebhookStoreContract.all.map(\.0))
    func contract(_ name: String) async throws {
        let check = try #require(WebhookStoreContract.all.first { $0.0 == name }?.1)
        let server = try #require(PostgresTestServer.current)
        try await server.withDatabase { clients in
            try await check { try await Self.migratedStore(clients[0]) }
        }
    }

    /// A server on PostgreSQL (as `steno serve --database`): without a configured secret (each node would make its
    /// own) it takes no callbacks; with one it delivers a submitted job's webhook, signed with it.
    @Test func distributedModeNeedsASecretAndDelivers() async throws {
        let server = try #require(PostgresTestServer.current)
        try await server.withNamedDatabase { url, _ in
            let directory = try TemporaryDirectory()
            var configuration = ServerConfiguration.testing(dataDirectory: directory.url, databaseURL: url)
            configuration.webhookPollInterval = 0.02
            configuration.webhookAllow = ["127.0.0.1"]
            configuration.logLevel = .critical
            let unsigned = try buildApplication(configuration: configuration, transcriber: ScriptedTranscriber())
            try await unsigned.app.test(.router) { client in
                for _ in 0..<200 {
                    if try await client.execute(uri: "/readyz", method: .get).status == .ok { break }
                    try await Task.sleep(for: .milliseconds(25))
                }
                let refused = try await client.upload(MultipartForm(
                    file: Data("RIFF-pretend".utf8), fields: ["callback_url": "http://127.0.0.1:9/hook"]))
                #expect(refused.status == .badRequest)
                #expect(try client.errorCode(refused) == "webhooks_unavailable")
                _ = try await client.submit(Data("RIFF-pretend".utf8))
            }
            configuration.webhookSecret = WebhookTesting.secret
            let service = try buildApplication(configuration: configuration, transcriber: ScriptedTranscriber())
            try await WebhookReceiver.run { receiver in
                try await service.app.test(.router) { client in
                    for _ in 0..<200 {
                        if try await client.execute(uri: "/readyz", method: .get).status == .ok { break }
                        try await Task.sleep(for: .milliseconds(25))
                    }
                    let id = try await client.submit(Data("RIFF-pretend".utf8), fields: ["callback_url": receiver.url("/pg")])
                    let request = try #require(try await receiver.wait(for: 1, on: "/pg").first)
                    _ = try WebhookTesting.verifiedTimestamp(request)
                    #expect(try WebhookTesting.payload(request)["job_id"] as? String == id)
                    #expect(!FileManager.default.fileExists(atPath: directory.url.appendingPathComponent("webhook-secret").path))
                }
            }
        }
    }

    /// Two nodes (two connection pools), each with its dispatcher, deliver 20 webhooks to a live receiver: each once.
    @Test func twoNodesDeliverOnce() async throws {
        let server = try #require(PostgresTestServer.current)
        try await server.withDatabase(nodes: 2) { clients in
            let nodes = [try await Self.migratedStore(clients[0]), try await Self.migratedStore(clients[1])]
            try await WebhookReceiver.run { receiver in
                var ids = Set<String>()
                for index in 0..<20 {
                    let job = try await WebhookTesting.finishedJob(nodes[index % 2], url: receiver.url("/once"))
                    ids.insert(job.id.uuidString.lowercased())
                }
                // Once per delivery is the leases' promise. An attempt that times out on a starved machine is retried
                // (at least once, by design) and would count twice here, so the attempts get all the time they need.
                let dispatchers = try nodes.map { try WebhookTesting.dispatcher($0) { $0.webhookTimeout = 60 } }
                let delivered = try await WebhookTesting.deliveredJobIDs(by: dispatchers, to: receiver, on: "/once", count: 20)
                #expect(delivered.count == 20)
                #expect(Set(delivered.compactMap { $0 }) == ids)
                for id in ids {
                    #expect(try await nodes[0].webhook(jobID: UUID(uuidString: id)!)?.state == .delivered)
                }
            }
        }
    }
}
