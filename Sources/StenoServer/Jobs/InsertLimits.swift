/// The bounds a new job must fit under, checked in the same step as its insert so that they hold across every
/// node sharing the store (a check made before the insert lets uploads arriving together pass it together).
public struct InsertLimits: Sendable, Equatable {
    /// The tenant's pending and processing jobs (`--max-jobs-per-key`): over it, `TenantJobLimitReached`.
    public var maxActiveJobsPerTenant: Int?
    /// Pending jobs of every tenant (`--max-queued-jobs`): over it, `QueueFull`.
    public var maxPendingJobs: Int?

    public init(maxActiveJobsPerTenant: Int? = nil, maxPendingJobs: Int? = nil) {
        self.maxActiveJobsPerTenant = maxActiveJobsPerTenant
        self.maxPendingJobs = maxPendingJobs
    }

    /// No bound at all: a plain insert.
    public var isEmpty: Bool { maxActiveJobsPerTenant == nil && maxPendingJobs == nil }
}

/// The queue already holds `limit` pending jobs; nothing was written.
public struct QueueFull: Error, CustomStringConvertible {
    public var limit: Int

    public init(limit: Int) { self.limit = limit }

    public var description: String { "\(limit) jobs are waiting already" }
}
