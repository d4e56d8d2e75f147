public import Foundation

/// The life cycle of a job. `completed`, `failed` and `cancelled` are terminal: nothing changes them.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case pending, processing, completed, failed, cancelled

    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// Why a finished job's files and result are gone while its row is kept as a tombstone until `expiresAt`.
public enum DeletionReason: String, Sendable, Codable {
    /// Retrieved, then deleted after the retrieval grace period.
    case retrieved
    /// Deleted by the client.
    case deleted
}

/// One row of the job store: every field the API, the workers and the cleaner need.
public struct Job: Sendable, Hashable {
    public var id: UUID
    /// Order of arrival; the queue order and the list cursor.
    public var sequence: Int64
    public var state: JobState
    public var options: JobOptions
    public var createdAt: Date
    public var startedAt: Date?
    /// When the job reached its terminal state.
    public var completedAt: Date?
    public var retrievedAt: Date?
    public var expiresAt: Date
    /// Files and result are deleted at this time (set by the first retrieval).
    public var purgeAt: Date?
    public var deletedAt: Date?
    public var deletionReason: DeletionReason?
    /// Claims so far; each claim is one attempt.
    public var attempts: Int
    public var maxAttempts: Int
    /// Not claimable before this time (retry backoff).
    public var runAfter: Date
    public var leaseOwner: String?
    public var leaseToken: String?
    public var leaseExpiresAt: Date?
    public var progress: Double
    public var errorCode: String?
    public var errorMessage: String?
    /// File name inside the blob store's audio folder; nil once deleted.
    public var audioPath: String?
    public var audioBytes: Int64
    /// Audio duration in seconds, known once transcribed.
    public var duration: Double?
    public var detectedLanguage: String?
    /// Speakers found (or channels heard), for jobs with speaker labels or multichannel; known once transcribed.
    public var speakerCount: Int?
    /// File name inside the blob store's results folder; nil until completed and after deletion.
    public var resultPath: String?
    /// The client's `Idempotency-Key`: a retried upload with the same key gets this job instead of a new one.
    public var idempotencyKey: String?
    /// The tenant (API key holder) that created the job; `Tenant.anonymous` in open mode. Only its owner sees it.
    public var tenant: String = Tenant.anonymous
    /// The callback asked for at upload. `insert` writes it in the job's own transaction; rows read back leave it
    /// nil (a `WebhookStore` reads the delivery).
    public var webhook: WebhookRequest?

    public init(
        id: UUID, state: JobState = .pending, options: JobOptions, createdAt: Date, expiresAt: Date,
        maxAttempts: Int, audioPath: String?, audioBytes: Int64
    ) {
        self.id = id
        self.sequence = 0
        self.state = state
        self.options = options
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.attempts = 0
        self.maxAttempts = maxAttempts
        self.runAfter = createdAt
        self.progress = 0
        self.audioPath = audioPath
        self.audioBytes = audioBytes
    }
}

/// A job a worker holds: writes about it must carry `token`, and a write whose token is no longer the job's
/// (the lease expired and another worker took it, or the job was cancelled) changes nothing.
public struct JobLease: Sendable, Hashable {
    public var job: Job
    public var token: String
    public var owner: String
}

/// A transcription failure recorded on the job.
public struct JobFailure: Sendable, Hashable, Error {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}
