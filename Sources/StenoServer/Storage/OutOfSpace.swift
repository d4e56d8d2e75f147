import Foundation
import GRDB
import PostgresNIO

/// Recognises "the disk is full" in the errors of the filesystem, of SQLite and of PostgreSQL, so that a full
/// disk reaches a client as `507 insufficient_storage` and a worker as a retryable `storage_full` failure, never
/// as a generic internal error (`ErrorMap` says which). The one place that decides it: every caller asks `matches`.
package enum OutOfSpace {
    /// ENOSPC (no space), EDQUOT (quota) and EFBIG (a file-size limit): each means "this write cannot grow".
    static let errnos: Set<Int32> = [ENOSPC, EDQUOT, EFBIG]
    /// PostgreSQL's `disk_full`: the server could not extend a table, an index or a temporary file. (The other
    /// states of class 53, out of memory or connections, are a busy server, not a full disk:
    /// `classifyDatabaseError` makes them `DatabaseUnavailable`.)
    static let postgresStates: Set<String> = ["53100"]

    package static func matches(_ error: any Error) -> Bool {
        if let failure = error as? StorageFailure { return failure.isOutOfSpace }
        if let posix = error as? POSIXError { return errnos.contains(posix.code.rawValue) }
        if let database = error as? DatabaseError { return database.resultCode == .SQLITE_FULL }
        if let postgres = error as? PSQLError {
            return postgres.code == .server && postgresStates.contains(postgres.serverInfo?[.sqlState] ?? "")
        }
        // `PostgresClient.withTransaction` wraps what failed inside the transaction (the blob store's writes).
        if let transaction = error as? PostgresTransactionError {
            return [transaction.closureError, transaction.commitError, transaction.beginError].contains { $0.map(matches) ?? false }
        }
        let nsError = error as NSError
        if nsError.domain == NSPOSIXErrorDomain { return errnos.contains(Int32(nsError.code)) }
        if nsError.domain == NSCocoaErrorDomain, nsError.code == CocoaError.fileWriteOutOfSpace.rawValue { return true }
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? any Error { return matches(underlying) }
        return false
    }
}
