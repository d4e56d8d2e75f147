public import Foundation

/// The callback a client asked for at upload: where to POST when the job finishes, and one optional header of
/// the client's own (an authorization token, say) sent with every attempt.
public struct WebhookRequest: Sendable, Hashable {
    public var url: String
    public var headerName: String?
    public var headerValue: String?

    public init(url: String, headerName: String? = nil, headerValue: String? = nil) {
        self.url = url
        self.headerName = headerName
        self.headerValue = headerValue
    }
}

/// Where a delivery stands. `delivered` and `failed` are final.
public enum WebhookState: String, Sendable, Codable, CaseIterable {
    /// Waiting for the job to finish, for its next attempt, or being attempted now (under a lease).
    case pending
    /// A 2xx answer was received.
    case delivered
    /// Given up: a 3xx or a 4xx other than 408/429, a refused address, or every attempt used.
    case failed
}

/// One job's webhook and what its attempts so far have given.
public struct WebhookDelivery: Sendable, Hashable {
    public var jobID: UUID
    public var request: WebhookRequest
    public var state: WebhookState
    /// Attempts started so far (a claim counts one, like a job's claim).
    public var attempts: Int
    /// Not attempted before this time (retry backoff); the job's creation time at first.
    public var nextAttemptAt: Date
    public var lastAttemptAt: Date?
    /// The HTTP status of the last answer; nil when the last attempt got none (network error, refused address).
    public var lastStatusCode: Int?
    public var lastError: String?
    public var deliveredAt: Date?
    public var leaseOwner: String?
    public var leaseToken: String?
    public var leaseExpiresAt: Date?

    public init(jobID: UUID, request: WebhookRequest, nextAttemptAt: Date) {
        self.jobID = jobID
        self.request = request
        self.state = .pending
        self.attempts = 0
        self.nextAttemptAt = nextAttemptAt
    }
}

/// A delivery a dispatcher holds: its outcome is written only while `token` is still the delivery's, so two
/// nodes never both record (nor, with leases longer than the request timeout, both send) one delivery.
public struct WebhookLease: Sendable, Hashable {
    public var delivery: WebhookDelivery
    public var token: String
    public var owner: String
}

/// What one attempt ends in, as the dispatcher decided it.
public enum WebhookOutcome: Sendable, Hashable {
    /// A 2xx answer.
    case delivered(statusCode: Int)
    /// Try again at `at` (network error, 5xx, 408, 429).
    case retry(at: Date, statusCode: Int?, error: String?)
    /// Give up for good.
    case failed(statusCode: Int?, error: String?)
}
