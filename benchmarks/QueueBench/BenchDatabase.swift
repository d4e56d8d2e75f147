import Foundation
import Logging
import PostgresNIO
import StenoServer

/// Where a benchmark run keeps its jobs: a SQLite data directory (`steno.sqlite` inside, as `steno serve` lays it
/// out) or a PostgreSQL database given by URL (`postgres://user@host:port/database`).
enum BenchDatabase: Sendable, CustomStringConvertible {
    case sqlite(directory: URL)
    case postgres(url: String)

    init(_ text: String) {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            self = .sqlite(directory: URL(fileURLWithPath: text))
        }
    }

    var description: String {
        switch self {
        case .sqlite(let directory): directory.path
        case .postgres(let url): url
        }
    }

    var kind: String {
        switch self {
        case .sqlite: "sqlite"
        case .postgres: "postgres"
        }
    }

    /// Runs `body` with the store open (and, for PostgreSQL, its client running and the schema migrated) and the
    /// blob store the product pairs with it: files in the SQLite data directory, or blobs in PostgreSQL
    /// (local scratch files under `scratch`).
    func withStore<Value: Sendable>(
        scratch: URL = FileManager.default.temporaryDirectory,
        _ body: @Sendable (any JobStore, any BlobStore) async throws -> Value
    ) async throws -> Value {
        switch self {
        case .sqlite(let directory):
            return try await body(
                try SQLiteJobStore(path: directory.appendingPathComponent("steno.sqlite")), try FileBlobStore(root: directory))
        case .postgres(let url):
            let client = PostgresClient(configuration: try Self.clientConfiguration(url))
            return try await withThrowingTaskGroup(of: Value?.self) { group in
                group.addTask { await client.run(); return nil }
                defer { group.cancelAll() }
                var logger = Logger(label: "steno-queue-bench.postgres")
                logger.logLevel = .warning
                let store = PostgresJobStore(client: client, logger: logger)
                try await store.migrate()
                let blobs = try PostgresBlobStore(client: client, scratch: scratch, logger: logger)
                return try await body(store, blobs)
            }
        }
    }

    static func clientConfiguration(_ url: String) throws -> PostgresClient.Configuration {
        guard let parts = URLComponents(string: url), let host = parts.host else {
            throw BenchError("not a PostgreSQL URL: \(url)")
        }
        let database = String(parts.path.dropFirst())
        var configuration = PostgresClient.Configuration(
            host: host, port: parts.port ?? 5432, username: parts.user ?? "postgres", password: parts.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.maximumConnections = 20
        return configuration
    }

    /// A new empty database on the server of `url` (which names an existing database to connect to);
    /// `drop` deletes it again. Every run gets its own, so runs never see each other's jobs.
    static func createPostgresDatabase(server url: String) async throws -> (url: String, drop: @Sendable () async -> Void) {
        let name = "steno_bench_" + UUID().uuidString.prefix(8).lowercased()
        try await adminQuery(url, "CREATE DATABASE \(name)")
        guard var parts = URLComponents(string: url) else { throw BenchError("not a PostgreSQL URL: \(url)") }
        parts.path = "/" + name
        return (parts.string!, { try? await adminQuery(url, "DROP DATABASE \(name) WITH (FORCE)") })
    }

    private static func adminQuery(_ url: String, _ sql: String) async throws {
        let client = try clientConfiguration(url)
        let logger = Logger(label: "steno.bench.admin")
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: client.host ?? "127.0.0.1", port: client.port ?? 5432, username: client.username,
                password: client.password, database: client.database, tls: .disable),
            id: 0, logger: logger)
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The outcome of `body`, so that cleanup can run after it whatever happened.
func outcome<Value>(_ body: () async throws -> Value) async -> Result<Value, any Error> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}
