public import Logging
public import PostgresNIO
public import ServiceLifecycle

/// The PostgreSQL connection pool of a node, as a `Service`: it runs the pool, brings the schema up to date
/// (retrying until the database answers, so nodes may start before it) and then opens `ready`, which the
/// HTTP server, the workers and the cleaner wait for. List it first among the services: it stops last, after
/// everything that uses it.
public final class PostgresDatabase: Service {
    public let client: PostgresClient
    public let url: PostgresURL
    package let ready = StartGate()
    private let store: PostgresJobStore
    private let logger: Logger

    public init(url: PostgresURL, maximumConnections: Int = 20, timeout: Duration = .seconds(10), logger: Logger) {
        self.url = url
        self.logger = logger
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        client = PostgresClient(configuration: url.clientConfiguration(maximumConnections: maximumConnections), backgroundLogger: background)
        store = PostgresJobStore(client: client, timeout: timeout, logger: logger)
    }

    /// The job store on this pool.
    public var jobs: PostgresJobStore { store }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.client.run() }
                group.addTask { await self.migrateUntilDone() }
            }
        }
    }

    private func migrateUntilDone() async {
        var delay = 0.5
        while !Task.isCancelled {
            do {
                try await probeConnection()
                try await store.migrate()
                logger.info("database ready", metadata: ["database": "\(url)"])
                ready.open()
                return
            } catch {
                logger.warning("database not reachable yet; retrying", metadata: ["database": "\(url)", "error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 5)
            }
        }
    }

    /// Opens and closes one connection of its own. The pool retries a failing connection quietly and at last
    /// reports only that it gave up; this one fails at once with the reason (a refused certificate, a
    /// pg_hba.conf rule, a wrong password, an unknown host), for the log line above.
    private func probeConnection() async throws {
        let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0, logger: logger)
        try? await connection.close()
    }
}
