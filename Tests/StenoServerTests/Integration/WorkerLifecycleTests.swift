import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import StenoServer
import Testing

/// Graceful shutdown of the worker pool, the cleaner's orphan sweep, odd results, and the server on a real socket.
@Suite struct WorkerLifecycleTests {
    func waitFor(_ id: UUID, _ state: JobState, in store: any JobStore) async throws {
        for _ in 0..<500 {
            if try await store.job(id: id)?.state == state { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("job never reached \(state)")
    }

    /// SIGTERM with a job running past the grace period: the job stops and goes back to the queue, its
    /// attempt given back; nothing stays claimed.
    @Test func shutdownReleasesWhatCannotFinish() async throws {
        let server = try TestServer { $0.shutdownGrace = 0.2 }
        // 30 s: past the grace however late a loaded machine fires it (a 2 s job could finish first).
        let id = try await server.enqueue("HANG until cancelled")
        let group = ServiceGroup(configuration: .init(services: [server.service.workers], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitFor(id, .processing, in: server.service.store)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let job = try #require(try await server.service.store.job(id: id))
        #expect(job.state == .pending)
        #expect(job.attempts == 0)
        #expect(job.leaseToken == nil)
        #expect(server.transcriber.cancelledRuns == 1)
    }

    /// SIGTERM with a job that finishes within the grace period: it completes; no new job is claimed.
    @Test func shutdownLetsRunningJobsFinish() async throws {
        let server = try TestServer { $0.shutdownGrace = 10 }
        let id = try await server.enqueue("SLOW takes two seconds")
        let group = ServiceGroup(configuration: .init(services: [server.service.workers], logger: Logger(label: "test")))
        var later = UUID()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitFor(id, .processing, in: server.service.store)
            await group.triggerGracefulShutdown()
            later = try await server.enqueue("arrived during shutdown")
            try await tasks.waitForAll()
        }
        #expect(try await server.service.store.job(id: id)?.state == .completed)
        #expect(try await server.service.store.job(id: later)?.state == .pending)
        #expect(server.transcriber.cancelledRuns == 0)
    }

    @Test func cleanerSweepsOnlyOldUnreferencedFiles() async throws {
        let server = try TestServer()
        let blobs = server.service.fileBlobs
        let kept = try await server.enqueue("referenced audio")
        let old = Date().addingTimeInterval(-3600)
        let orphan = blobs.audioDirectory.appendingPathComponent(UUID().uuidString.lowercased())
        let staleTemporary = blobs.temporaryDirectory.appendingPathComponent("upload.part")
        let youngOrphan = blobs.resultsDirectory.appendingPathComponent("young.json")
        for file in [orphan, staleTemporary, youngOrphan] { try Data("x".utf8).write(to: file) }
        for file in [orphan, staleTemporary] {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: file.path)
        }
        let referenced = try #require(try await server.service.store.job(id: kept)?.audioPath)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: blobs.url(for: referenced).path)

        let report = try await server.service.cleaner.sweep()
        #expect(report.orphanFiles == 2)
        #expect(!FileManager.default.fileExists(atPath: orphan.path))
        #expect(!FileManager.default.fileExists(atPath: staleTemporary.path))
        #expect(FileManager.default.fileExists(atPath: youngOrphan.path))
        #expect(blobs.exists(referenced))
    }

    @Test func infiniteLogProbabilitiesSurviveStorageAndJSON() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let id = try await client.submit(Data("SILENT room".utf8))
            _ = try await client.wait(for: id, in: [.completed], store: server.service.store)
            let status = try await client.status(id)
            #expect(status.result?.segments.first?.avgLogprob == -1e9)
        }
    }

    /// On a real socket: upload, completion, retrieval.
    @Test func liveServer() async throws {
        let server = try TestServer()
        try await server.service.app.test(.live) { client in
            let big = Data(repeating: 0x52, count: 3 << 20)
            let id = try await client.submit(big)
            _ = try await client.wait(for: id, in: [.completed], store: server.service.store)
            let status = try await client.status(id)
            #expect(status.result?.text == "transcript of \(big.count) bytes")
            #expect(status.audioBytes == big.count)
        }
    }
}
