import Foundation
import StenoServer

/// Does a worker process that starts leave the jobs of running processes alone? One process works through
/// jobs that take 50 ms each; a second process starts while the first holds one. A job whose lease the newcomer
/// reset at start-up (`resumeInterrupted`) is claimed a second time: the count of such jobs is the answer
/// (0 is right).
enum ResetCheck {
    static func run(store kind: String, driver: WorkerDriver, _ workload: QueueWorkload, index: Int) async throws -> Int {
        let directory = workload.workDirectory.appendingPathComponent("reset-\(index)")
        let dataDirectory = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (database, dropDatabase) = try await QueueRun.freshDatabase(kind, workload, dataDirectory: dataDirectory)
        let result = await outcome { try await check(database, driver, dataDirectory, directory, workload) }
        await dropDatabase?()
        return try result.get()
    }

    private static func check(
        _ database: BenchDatabase, _ driver: WorkerDriver, _ dataDirectory: URL, _ directory: URL, _ workload: QueueWorkload
    ) async throws -> Int {
        let arguments = [
            "--database", database.description, "--data-dir", dataDirectory.path, "--driver", driver.rawValue,
            "--job-seconds", "0.05", "--poll-interval", String(workload.pollInterval),
        ]
        return try await database.withStore(scratch: dataDirectory) { store, blobs in
            let workers = WorkerProcesses(logDirectory: directory)
            do {
                try await workers.start(count: 1, arguments: arguments)
                let producer = Producer(store: store, blobs: blobs)
                var ids: [UUID] = []
                for _ in 0..<100 { ids.append(try await producer.submit()) }
                while try await store.count(state: .completed) < 10 { try await Task.sleep(for: .milliseconds(10)) }
                try workers.launch(arguments: arguments)
                try await workers.waitUntilReady(total: 2)
                let jobs = try await QueueRun.waitForCompletion(store, ids: Set(ids), terminal: ids.count, timeout: 120)
                await workers.stop()
                return jobs.filter { $0.attempts > 1 }.count
            } catch {
                await workers.stop()
                throw error
            }
        }
    }
}
