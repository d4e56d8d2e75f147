package import Foundation
package import Logging
public import ServiceLifecycle

/// Deletes what is due, every `interval`: files of jobs whose retrieval grace is over (and of failed or
/// cancelled jobs), jobs past their deadline with their files, and orphan files left by a crash. Works in
/// bounded batches so that a backlog never blocks a pass. Rows change first, then files go, so a row never
/// points at a missing file. Safe on several nodes at once: each row change happens once, whichever node makes
/// it, and deleting a blob twice is harmless.
public final class Cleaner: Service {
    public struct Report: Sendable, Equatable {
        public var purgedJobs = 0
        public var expiredJobs = 0
        public var orphanFiles = 0
    }

    private let store: any JobStore
    private let blobs: any BlobStore
    private let clock: any WallClock
    private let interval: TimeInterval
    private let logger: Logger
    /// Files younger than this are never orphans: an upload may sit between its rename and its insert.
    private let orphanAge: TimeInterval = 600
    private let batch = 500
    private let ready: StartGate

    package init(
        store: any JobStore, blobs: any BlobStore, clock: any WallClock, interval: TimeInterval,
        ready: StartGate = StartGate(open: true), logger: Logger
    ) {
        self.ready = ready
        self.store = store
        self.blobs = blobs
        self.clock = clock
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
        let now = clock.now()
        while true {
            let due = try await store.purgeable(now: now, limit: batch)
            for job in due {
                for name in try await store.purgeFiles(id: job.id, now: now) { await blobs.remove(name) }
            }
            report.purgedJobs += due.count
            if due.count < batch { break }
        }
        while true {
            let expired = try await store.expired(now: now, limit: batch)
            for job in expired {
                try await store.delete(id: job.id)
                for name in [job.audioPath, job.resultPath].compactMap({ $0 }) { await blobs.remove(name) }
            }
            report.expiredJobs += expired.count
            if expired.count < batch { break }
        }
        let referenced = try await store.referencedFiles()
        report.orphanFiles = try await blobs.sweepOrphans(referenced: referenced, olderThan: Date().addingTimeInterval(-orphanAge)).count
        return report
    }
}
