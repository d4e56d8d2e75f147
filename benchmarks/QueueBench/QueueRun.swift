import Foundation
import GRDB
import Logging
import PostgresNIO
import StenoServer

/// One configuration of the queue benchmark: a store, a number of worker processes, a driver.
struct QueueConfiguration: Sendable, Hashable {
    var store: String  // "sqlite" or "postgres"
    var processes: Int
    var workersPerProcess = 1
    var driver = WorkerDriver.pool

    var label: String { "\(store) \(driver.rawValue) \(processes)×\(workersPerProcess)" }
}

/// What to measure and how much.
struct QueueWorkload: Sendable {
    /// Jobs in the backlog that the workers drain (throughput phase).
    var backlog = 2000
    /// Jobs that arrive one by one at idle workers (latency phase).
    var latencyJobs = 200
    /// Mean arrivals per second in the latency phase (exponential gaps, fixed seed).
    var arrivalRate = 20.0
    var pollInterval = 1.0
    /// PostgreSQL server to create each run's database on (a URL naming an existing database).
    var postgresServer: String?
    var workDirectory: URL
}

/// The figures of one run.
struct QueueRunResult: Codable, Sendable {
    var label: String
    /// Jobs claimed and completed per second while every worker was busy: the middle 80 % of the completions
    /// of the backlog (leaves out the workers' first poll and the last jobs' tail).
    var throughput: Double
    /// Backlog size / (last completion − first claim).
    var drainThroughput: Double
    /// Add-to-start latency (the job's creation to its first claim), milliseconds.
    var latencyP50: Double
    var latencyP99: Double
    var latencyMax: Double
    /// Jobs claimed more than once (a rerun: lease lost, or reset by a starting process). Should be 0.
    var reruns: Int
    /// Jobs that did not complete in time. Should be 0.
    var unfinished: Int
}

enum QueueRun {
    static func run(_ configuration: QueueConfiguration, _ workload: QueueWorkload, index: Int) async throws -> QueueRunResult {
        let directory = workload.workDirectory.appendingPathComponent("run-\(index)")
        let dataDirectory = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let (database, dropDatabase) = try await freshDatabase(configuration.store, workload, dataDirectory: dataDirectory)
        let result = await outcome { try await measure(configuration, workload, database, dataDirectory, directory) }
        await dropDatabase?()
        return try result.get()
    }

    private static func measure(
        _ configuration: QueueConfiguration, _ workload: QueueWorkload, _ database: BenchDatabase, _ dataDirectory: URL,
        _ directory: URL
    ) async throws -> QueueRunResult {
        try await database.withStore(scratch: dataDirectory) { store, blobs in
            let workers = WorkerProcesses(logDirectory: directory)
            do {
                try await workers.start(count: configuration.processes, arguments: [
                    "--database", database.description, "--data-dir", dataDirectory.path,
                    "--workers", String(configuration.workersPerProcess), "--driver", configuration.driver.rawValue,
                    "--poll-interval", String(workload.pollInterval),
                ])
                // Each pool resumes interrupted jobs when it starts: let that pass before the first job exists.
                try await Task.sleep(for: .seconds(1))

                // Throughput: the backlog is written with a far-away run_after, then released at once.
                let producer = Producer(store: store, blobs: blobs)
                let backlog = try await producer.insertBacklog(count: workload.backlog)
                try await openGate(database)
                let drained = try await waitForCompletion(store, ids: Set(backlog), terminal: backlog.count, timeout: 600)

                // Latency: single arrivals at workers that are idle by now.
                try await Task.sleep(for: .seconds(1.5))
                let arrivals = try await producer.insertPaced(count: workload.latencyJobs, rate: workload.arrivalRate)
                let answered = try await waitForCompletion(
                    store, ids: Set(arrivals), terminal: backlog.count + arrivals.count, timeout: 300)
                await workers.stop()

                let completions = drained.compactMap(\.completedAt).map(\.timeIntervalSince1970).sorted()
                let firstClaim = drained.compactMap(\.startedAt).map(\.timeIntervalSince1970).min() ?? .nan
                let latencies = answered.compactMap { job in
                    job.startedAt.map { $0.timeIntervalSince(job.createdAt) * 1000 }
                }
                let all = drained + answered
                return QueueRunResult(
                    label: configuration.label,
                    throughput: steadyRate(completions),
                    drainThroughput: Double(completions.count) / ((completions.last ?? .nan) - firstClaim),
                    latencyP50: Statistics.percentile(latencies, 50),
                    latencyP99: Statistics.percentile(latencies, 99),
                    latencyMax: latencies.max() ?? .nan,
                    reruns: all.filter { $0.attempts > 1 }.count,
                    unfinished: backlog.count + arrivals.count - all.filter { $0.state == .completed }.count)
            } catch {
                await workers.stop()
                throw error
            }
        }
    }

    /// Jobs per second between the completion at 10 % and the one at 90 % of the sorted completion times.
    static func steadyRate(_ completions: [Double]) -> Double {
        guard completions.count >= 10 else { return .nan }
        let low = completions.count / 10
        let high = completions.count - 1 - completions.count / 10
        return Double(high - low) / (completions[high] - completions[low])
    }

    static func freshDatabase(
        _ store: String, _ workload: QueueWorkload, dataDirectory: URL
    ) async throws -> (BenchDatabase, (@Sendable () async -> Void)?) {
        switch store {
        case "sqlite":
            return (.sqlite(directory: dataDirectory), nil)
        case "postgres":
            guard let server = workload.postgresServer else { throw BenchError("postgres runs need --postgres URL") }
            let (url, drop) = try await BenchDatabase.createPostgresDatabase(server: server)
            return (.postgres(url: url), drop)
        default:
            throw BenchError("unknown store \(store) (sqlite or postgres)")
        }
    }

    /// Makes every pending job due now. Benchmark-only SQL against the stores' tables, so that the whole
    /// backlog becomes claimable at one instant however long it took to write.
    static func openGate(_ database: BenchDatabase) async throws {
        let now = Date()
        switch database {
        case .sqlite(let directory):
            let queue = try DatabaseQueue(path: directory.appendingPathComponent("steno.sqlite").path)
            try await queue.write { db in
                try db.execute(sql: "UPDATE job SET run_after = ? WHERE state = 'pending'", arguments: [now.timeIntervalSince1970])
            }
            try queue.close()
        case .postgres(let url):
            let client = PostgresClient(configuration: try BenchDatabase.clientConfiguration(url))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                _ = try await client.query("UPDATE steno_jobs SET run_after = \(now) WHERE state = 'pending'").collect()
            }
        }
    }

    /// Waits until the store holds `terminal` finished jobs in all (a cheap count, polled), then returns the jobs
    /// of `ids`.
    static func waitForCompletion(_ store: any JobStore, ids: Set<UUID>, terminal: Int, timeout: TimeInterval) async throws -> [Job] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var finished = 0
            for state in JobState.allCases where state.isTerminal { finished += try await store.count(state: state) }
            if finished >= terminal { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 1_000_000).filter { ids.contains($0.id) }
    }
}
