import Foundation
package import Logging
import PostgresNIO
public import ServiceLifecycle

/// LISTENs on the `steno_jobs` channel (notified by a trigger whenever a job becomes pending, on any node) and
/// wakes this node's idle workers, so a job submitted elsewhere starts within milliseconds instead of at the next
/// poll. Polling stays as the fallback: a notification lost while the connection was down costs one poll
/// interval at most, and every (re)connection wakes the workers once to catch up.
///
/// Runs on a connection of its own, outside the pool. When it breaks (the database restarted, the network
/// failed) the listener reconnects with backoff; a keep-alive query notices a connection that died silently.
public final class JobNotificationListener: Service {
    static let channel = "steno_jobs"
    private let url: PostgresURL
    private let wake: WakeSignal
    private let logger: Logger
    private let keepAlive: Duration

    package init(url: PostgresURL, wake: WakeSignal, keepAlive: Duration = .seconds(15), logger: Logger) {
        self.url = url
        self.wake = wake
        self.keepAlive = keepAlive
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.listenUntilCancelled() }
    }

    private func listenUntilCancelled() async {
        var delay = 0.1
        var everConnected = false
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: try url.connectionConfiguration(), id: 1, logger: logger)
                do {
                    try await connection.listen(on: Self.channel) { notifications in
                        delay = 0.1
                        logger.log(level: everConnected ? .notice : .info, "listening for new jobs", metadata: ["channel": "\(Self.channel)"])
                        everConnected = true
                        wake.signal()
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                for try await _ in notifications { self.wake.signal() }
                                throw DatabaseUnavailable(description: "the notification stream ended")
                            }
                            group.addTask {
                                while true {
                                    try await Task.sleep(for: self.keepAlive)
                                    _ = try await withDatabaseDeadline(.seconds(10)) {
                                        try await connection.query("SELECT 1", logger: self.logger).collect()
                                    }
                                }
                            }
                            defer { group.cancelAll() }
                            try await group.next()
                        }
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { break }
                logger.warning("job notifications interrupted; reconnecting", metadata: ["error": "\(String(reflecting: error))", "retry_in": "\(delay)s"])
            }
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 5)
        }
    }
}
