import Foundation
import PostgresNIO

/// The database did not answer: down, restarting, unreachable, or slower than the deadline. A transient
/// condition: the API answers `503 database_unavailable` with `Retry-After`, workers retry.
public struct DatabaseUnavailable: Error, CustomStringConvertible {
    public var description: String
}

/// Runs one database call with a deadline. Without it a call made while PostgreSQL is down waits for a
/// connection until the pool gives up (a minute); with it the caller learns within `timeout` and can answer
/// 503 or retry. Errors that mean "no healthy server answered" become `DatabaseUnavailable`; errors the server
/// sent about the statement itself (a constraint, a bug) pass through unchanged.
package func withDatabaseDeadline<Value: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    do {
        return try await withThrowingTaskGroup(of: Value.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw DatabaseUnavailable(description: "the database did not answer within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    } catch {
        throw classifyDatabaseError(error)
    }
}

/// `DatabaseUnavailable` for failures of the connection or the server as a whole; the error itself otherwise.
package func classifyDatabaseError(_ error: any Error) -> any Error {
    if error is DatabaseUnavailable || error is CancellationError { return error }
    // A transaction's wrapper: what failed inside it decides (a lost connection, a full disk, a constraint).
    if let transaction = error as? PostgresTransactionError,
       let cause = transaction.beginError ?? transaction.closureError ?? transaction.commitError {
        return classifyDatabaseError(cause)
    }
    if let error = error as? PSQLError {
        if error.code == .server {
            // Connection exceptions (08), operator intervention such as a shutdown (57P), a server short of
            // resources: too many connections (53300), out of memory (53200), or unspecified (53000). A full
            // disk (53100) stays the statement's error, which `OutOfSpace` recognises.
            let state = error.serverInfo?[.sqlState] ?? ""
            guard state.hasPrefix("08") || state.hasPrefix("57P") || ["53000", "53200", "53300"].contains(state) else { return error }
            return DatabaseUnavailable(description: "the database refused the statement (SQLSTATE \(state))")
        }
        if error.code == .queryCancelled { return error }
        return DatabaseUnavailable(description: "the database connection failed (\(error.code))")
    }
    // The pool's own errors (its circuit breaker after a minute of failed connects) and NIO's channel errors.
    let type = String(reflecting: Swift.type(of: error))
    if ["_ConnectionPoolModule.", "NIOCore.", "NIOPosix.", "NIOSSL."].contains(where: type.hasPrefix) {
        return DatabaseUnavailable(description: "the database is unreachable (\(String(describing: error)))")
    }
    return error
}
