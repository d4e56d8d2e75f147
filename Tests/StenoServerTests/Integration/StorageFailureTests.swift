import Foundation
import Logging
import ServiceLifecycle
import StenoServer
import Testing

/// A result that cannot be stored: the worker pool retries the job and, out of attempts, fails it with a
/// storage code; no row ever points at a result file that is not there, and once storage works again jobs
/// complete. (The real full disk, on a tmpfs, is `scripts/faults/disk-full.sh`.)
@Suite struct StorageFailureTests {
    @Test func aResultThatCannotBeWrittenIsRetriedThenFailsWithACode() async throws {
        let server = try TestServer()
        let blobs = server.service.fileBlobs
        // `results/` replaced by a file: every rename of a result into it fails.
        try FileManager.default.removeItem(at: blobs.resultsDirectory)
        try Data().write(to: blobs.resultsDirectory)

        let group = ServiceGroup(configuration: .init(services: [server.service.workers], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let broken = try await server.enqueue("broken storage")
            let failed = try await Self.wait(for: broken, in: server.service.store)
            #expect(failed.state == .failed)
            #expect(failed.errorCode == "storage_error")
            #expect(failed.attempts == failed.maxAttempts, "retried until out of attempts")
            #expect(failed.resultPath == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: blobs.temporaryDirectory.path).isEmpty, "no partial file left")

            // Storage works again: the next job completes and its row points at a file that exists.
            try FileManager.default.removeItem(at: blobs.resultsDirectory)
            try FileManager.default.createDirectory(at: blobs.resultsDirectory, withIntermediateDirectories: true)
            let next = try await server.enqueue("fine again")
            let done = try await Self.wait(for: next, in: server.service.store)
            #expect(done.state == .completed)
            #expect(done.attempts == 1)
            #expect(blobs.exists(try #require(done.resultPath)))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    static func wait(for id: UUID, in store: any JobStore) async throws -> Job {
        for _ in 0..<1000 {
            if let job = try await store.job(id: id), job.state.isTerminal { return job }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("job \(id) never finished")
        throw CancellationError()
    }
}
