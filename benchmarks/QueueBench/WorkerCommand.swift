import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StenoServer

#if canImport(Glibc)
import Glibc
#endif

/// How a worker process runs jobs.
enum WorkerDriver: String, ExpressibleByArgument, Sendable, CaseIterable {
    /// The product's `WorkerPool` (leases, heartbeats, inference thread, result file, guarded completion), built
    /// by the product's composition root with the no-op transcriber.
    case pool
    /// The store's own claim/complete loop: what the queue costs without the pool around it.
    case loop
}

/// `steno-queue-bench worker`: one worker process. Runs until SIGTERM; prints `ready` once its workers run.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run one worker process.")

    @Option(help: "SQLite data directory, or postgres://user@host:port/database.") var database: String
    @Option(help: "Directory for the audio and result files (SQLite: the data directory).") var dataDir: String?
    @Option(help: "Concurrent workers in this process.") var workers = 1
    @Option(help: "pool (the product's WorkerPool) or loop (the store's claim/complete loop).") var driver = WorkerDriver.pool
    @Option(help: "Seconds the no-op handler holds each job.") var jobSeconds = 0.0
    @Option(help: "Seconds an idle worker waits before it looks for work again (the product's default: 1).") var pollInterval = 1.0

    func run() async throws {
        var logger = Logger(label: "steno-queue-bench.worker")
        logger.logLevel = .warning
        let database = BenchDatabase(database)
        let transcriber = NoopTranscriber(delay: jobSeconds)
        switch (driver, database) {
        case (.pool, .sqlite(let directory)):
            var configuration = ServerConfiguration()
            configuration.dataDirectory = directory
            configuration.workers = workers
            configuration.pollInterval = pollInterval
            configuration.logLevel = .warning
            let service = try buildApplication(configuration: configuration, transcriber: transcriber, logger: logger)
            let group = ServiceGroup(services: [service.workers], gracefulShutdownSignals: [.sigterm], logger: logger)
            Self.announceReady()
            try await group.run()
        case (.pool, .postgres(let url)):
            // A `steno serve --role worker` node: the pool, the LISTEN/NOTIFY wake-up, the cleaner and the
            // database pool as the composition root wires them (HTTP on a free port: health checks only).
            var configuration = ServerConfiguration()
            configuration.databaseURL = url
            configuration.role = .worker
            configuration.port = 0
            configuration.dataDirectory = URL(fileURLWithPath: dataDir ?? NSTemporaryDirectory())
            configuration.workers = workers
            configuration.pollInterval = pollInterval
            configuration.logLevel = .warning
            let service = try buildApplication(configuration: configuration, transcriber: transcriber, logger: logger)
            Self.announceReady()
            try await service.app.runService()
        case (.loop, _):
            let owner = "bench-" + UUID().uuidString.prefix(8).lowercased()
            let (workers, jobSeconds, pollInterval) = (workers, jobSeconds, pollInterval)
            try await database.withStore { store, _ in
                Self.announceReady()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<workers {
                        group.addTask {
                            try await Self.claimLoop(
                                store: store, owner: "\(owner)-\(index)", jobSeconds: jobSeconds, pollInterval: pollInterval)
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }

    /// Claim, hold for `jobSeconds`, complete; poll when the queue is empty. SIGTERM ends the process.
    static func claimLoop(store: any JobStore, owner: String, jobSeconds: Double, pollInterval: Double) async throws {
        while true {
            if let lease = try await store.claim(owner: owner, leaseDuration: 60, now: Date()) {
                if jobSeconds > 0 { try await Task.sleep(for: .seconds(jobSeconds)) }
                _ = try await store.complete(lease, resultPath: "results/none", duration: 1, language: "en", now: Date())
            } else {
                try await Task.sleep(for: .seconds(pollInterval))
            }
        }
    }

    private static func announceReady() {
        print("ready")
        fflush(nil)
    }
}
