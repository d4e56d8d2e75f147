package import Foundation
package import Logging
public import ServiceLifecycle

/// Asks the job service, every `interval`, to delete what is due: files of jobs whose retrieval grace is over
/// (and of failed or cancelled jobs), jobs past their deadline with their files, and orphan files left by a
/// crash. The service works in bounded batches, so a backlog never blocks a pass, and changes rows before it
/// removes files. Safe on several nodes at once: each row change happens once, whichever node makes it, and
/// deleting a blob twice is harmless.
public final class Cleaner: Service {
    public struct Report: Sendable, Equatable {
        public var purgedJobs = 0
        public var expiredJobs = 0
        public var orphanFiles = 0
    }

    private let jobs: JobService
    private let interval: TimeInterval
    private let logger: Logger
    /// Files younger than this are never orphans: an upload may sit between its rename and its insert.
    private let orphanAge: TimeInterval = 600
    private let batch = 500
    private let ready: StartGate

    init(
        jobs: JobService, interval: TimeInterval,
        ready: StartGate = StartGate(open: true), logger: Logger
    ) {
        self.ready = ready
        self.jobs = jobs
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        guard await ready.waitUnlessShuttingDown() else { return }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let report = try await sweep()
                if report != Report() { logger.info("cleaner pass", metadata: ["report": "\(report)"]) }
            } catch {
                logger.error("cleaner pass failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(self.interval)) }
        }
    }

    /// One pass. Public so that tests drive it with their own clock.
    @discardableResult
    public func sweep() async throws -> Report {
        var report = Report()
        report.purgedJobs = try await jobs.purgeDue(batch: batch)
        report.expiredJobs = try await jobs.expireDue(batch: batch)
        report.orphanFiles = try await jobs.sweepOrphans(olderThan: orphanAge)
        return report
    }
}
