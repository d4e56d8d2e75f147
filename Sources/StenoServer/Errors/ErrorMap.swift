import Foundation
import Logging
import StenoEngine

/// The one translation of internal errors into what clients see. Storage, the database layer, the job service
/// and the engine throw errors of their own, with no HTTP in them; this map gives each its status, stable code
/// and message (`{"error": {"code", "message"}}`) for every middleware, and decides what a job that met one
/// records. A new error code is a new case here (and a row in docs/api.md and openapi.yaml).
enum ErrorMap {
    /// The answer to a request whose handler threw `error`, and the level to log it at (nil: the client's own
    /// mistake or a bound it reached, not worth a log line).
    static func response(for error: any Error) -> (error: APIError, log: Logger.Level?) {
        switch error {
        case let error as APIError:
            return (error, nil)
        case let full as QueueFull:
            return (APIError(.serviceUnavailable, code: "queue_full",
                             message: "\(full.limit) jobs are waiting already; retry later", headers: [.retryAfter: "30"]), nil)
        case let limit as TenantJobLimitReached:
            return (tooManyJobs(limit: limit.limit), nil)
        case is DatabaseUnavailable:
            return (databaseUnavailable, .warning)
        case let failure as StorageFailure where failure.isOutOfDescriptors:
            return (APIError(.serviceUnavailable, code: "server_busy",
                             message: "the server is out of resources for the moment; retry shortly", headers: [.retryAfter: "5"]), .warning)
        case _ where OutOfSpace.matches(error):
            return (insufficientStorage, .error)
        case is StorageFailure:
            return (APIError(.internalServerError, code: "storage_error", message: "the server could not store the upload"), .error)
        default:
            return (internalError, .error)
        }
    }

    /// The answer to a failed request, logged (with `metadata`) when the error is the server's and not the
    /// client's: what both error middlewares do with an error that escaped a handler.
    static func answer(for error: any Error, logger: Logger, _ what: String, metadata: Logger.Metadata) -> APIError {
        let (answer, level) = response(for: error)
        if let level {
            var metadata = metadata
            metadata["error"] = "\(LogRedaction.describe(error))"
            logger.log(level: level, "\(what) failed: \(answer.code)", metadata: metadata)
        }
        return answer
    }

    /// `429 too_many_jobs`: the tenant's pending and processing jobs fill its bound (`--max-jobs-per-key`).
    static func tooManyJobs(limit: Int) -> APIError {
        APIError(.tooManyRequests, code: "too_many_jobs",
                 message: "this API key has \(limit) jobs pending or processing, its limit; retry once one finishes",
                 headers: [.retryAfter: "10"])
    }

    /// The database did not answer (PostgreSQL down or restarting): a retry soon will likely work.
    static let databaseUnavailable = APIError(
        .serviceUnavailable, code: "database_unavailable", message: "the database is unavailable; retry shortly",
        headers: [.retryAfter: "5"])

    /// The server cannot store what the request needs (an upload, a first retrieval's record).
    static let insufficientStorage = APIError(
        .init(code: 507, reasonPhrase: "Insufficient Storage"), code: "insufficient_storage",
        message: "the server is out of storage space; retry later")

    static let internalError = APIError(.internalServerError, code: "internal_error", message: "the server failed to handle the request")

    // MARK: - What a job records

    /// The failure a job records for good when its transcription met `error`: bad input or bad options, which
    /// another attempt cannot fix. Nil for everything else, which is retried.
    static func permanentFailure(_ error: any Error) -> JobFailure? {
        if let failure = error as? JobFailure { return failure }
        guard let engineError = error as? EngineError else { return nil }
        switch engineError {
        case .undecodableAudio, .emptyAudio, .audioTooLong, .unsupportedLanguage, .invalidOption, .decoderTimeout,
             .decoderLimitExceeded, .tooManyChannels:
            return JobFailure(code: engineError.code, message: engineError.description)
        case .invalidModel, .cancelled, .decoderUnavailable:
            return nil
        }
    }

    /// What a client may read of an error a job met, in the service's words: the engine's own messages (written
    /// for clients, paths removed), or a plain description of a server-side fault. Never a raw system error,
    /// which can carry the server's paths; the log has the details.
    static func clientMessage(for error: any Error) -> String {
        if let failure = error as? JobFailure { return failure.message }
        if let engine = error as? EngineError { return engine.description }
        if OutOfSpace.matches(error) { return "the server ran out of storage space" }
        if error is DatabaseUnavailable { return "the job database was unavailable" }
        return "the server failed to process the job (an internal error)"
    }

    /// The failure code of a result that could not be stored: retried, and recorded when out of attempts.
    static func storageFailureCode(_ error: any Error) -> String {
        OutOfSpace.matches(error) ? "storage_full" : "storage_error"
    }
}
