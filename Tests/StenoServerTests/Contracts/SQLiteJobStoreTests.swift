import Foundation
import GRDB
import StenoServer
import Testing

/// The job store contract on a real SQLite file (WAL mode, as in production).
@Suite struct SQLiteJobStoreTests {
    @Test(arguments: JobStoreContract.all.map(\.0))
    func contract(_ name: String) async throws {
        let check = try #require(JobStoreContract.all.first { $0.0 == name }?.1)
        let directory = try TemporaryDirectory()
        try await check { try SQLiteJobStore(path: directory.url.appendingPathComponent("jobs-\(UUID()).sqlite")) }
    }

    @Test func survivesReopening() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.url.appendingPathComponent("steno.sqlite")
        let job = try await JobStoreContract.newJob(try SQLiteJobStore(path: path))
        let reopened = try SQLiteJobStore(path: path)
        #expect(try await reopened.job(id: job.id) == job)
    }

    /// A row written before the options document existed (its `options` NULL) reads its three old columns and
    /// today's defaults for the rest (voice-activity detection on).
    @Test func rowsFromBeforeTheOptionsDocumentReadTheirColumns() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.url.appendingPathComponent("steno.sqlite")
        let job = try await JobStoreContract.newJob(try SQLiteJobStore(path: path))
        let database = try DatabaseQueue(path: path.path)
        try await database.write { db in
            try db.execute(sql: "UPDATE job SET options = NULL, language = 'de', prompt = NULL, word_timestamps = 0")
        }
        let read = try #require(try await SQLiteJobStore(path: path).job(id: job.id))
        #expect(read.options == JobOptions(language: "de", prompt: nil, wordTimestamps: false, vad: JobOptions.defaultVAD))
    }
}
