package import Foundation

/// What happened to a job, as the job service announces it.
package enum JobEvent: Sendable, Equatable {
    /// A new job is recorded and waits for a worker.
    case accepted(UUID)
    /// The job reached a terminal state: completed, failed or cancelled.
    case finished(UUID, JobState)
}

/// The job service's announcements, for those that react to them without being part of the lifecycle:
/// metrics count them, idle workers wake for a new job, the webhook dispatcher wakes for a finished one.
/// Handlers run on the announcing task and must return quickly (count, signal).
package final class JobEvents: Sendable {
    private let handlers = Locked<[@Sendable (JobEvent) -> Void]>([])

    package init() {}

    package func subscribe(_ handler: @escaping @Sendable (JobEvent) -> Void) {
        handlers.withLock { $0.append(handler) }
    }

    func publish(_ event: JobEvent) {
        for handler in handlers.current { handler(event) }
    }
}
