import Foundation
import Logging
import PostgresNIO
import StenoServer
import Testing

/// The blob store of the distributed mode on a real PostgreSQL, with the job store's migrations.
@Suite(.requiresPostgres, .postgresServer) struct PostgresBlobStoreTests {
    private var server: PostgresTestServer {
        get throws { try #require(PostgresTestServer.current, "the suite's .postgresServer trait starts it") }
    }

    private static let logger = PostgresTestServer.quietLogger("steno.blobs.postgres")

    /// Two nodes, each with its own spool directory, on one database.
    private func withNodes(_ body: (PostgresBlobStore, PostgresBlobStore, PostgresClient) async throws -> Void) async throws {
        try await server.withDatabase(nodes: 2) { clients in
            try await PostgresJobStore(client: clients[0], logger: Self.logger).migrate()
            let spools = try [TemporaryDirectory(), TemporaryDirectory()]
            let a = try PostgresBlobStore(client: clients[0], scratch: spools[0].url, logger: Self.logger)
            let b = try PostgresBlobStore(client: clients[1], scratch: spools[1].url, logger: Self.logger)
            try await body(a, b, clients[0])
            withExtendedLifetime(spools) {}
        }
    }

    /// An upload of 2.5 MiB committed on one node is three chunks, downloaded whole on the other, and its spool
    /// file is consumed; the local copy exists only while it is used.
    @Test func audioStreamsInOnOneNodeAndOutOnAnother() async throws {
        try await withNodes { a, b, client in
            let bytes = Data((0..<(5 << 19)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) })
            let upload = a.temporaryFile()
            try bytes.write(to: upload)
            let id = UUID()
            let name = try await a.commitAudio(upload, jobID: id)
            #expect(name == "audio/\(id.uuidString.lowercased())")
            #expect(!FileManager.default.fileExists(atPath: upload.path))
            let chunks = try await client.query("SELECT chunk, length(data) FROM steno_blob_chunks WHERE name = \(name) ORDER BY chunk")
                .collect().map { try $0.decode((Int, Int).self) }
            #expect(chunks.map(\.0) == [0, 1, 2])
            #expect(chunks.map(\.1) == [1 << 20, 1 << 20, 1 << 19])

            var local: URL?
            let copy = try await b.withLocalFile(name) { file in
                local = file
                return try Data(contentsOf: file)
            }
            #expect(copy == bytes)
            #expect(!FileManager.default.fileExists(atPath: try #require(local).path))
            #expect(try await b.exists(name))
        }
    }

    /// Results are read back whole; every write is a new name, so a stale worker's clean-up can never delete the
    /// result of the worker that owns the job; deletion is idempotent and a missing blob is an error to read.
    @Test func resultsRoundTripAndDeletionIsIdempotent() async throws {
        try await withNodes { a, b, _ in
            let id = UUID()
            let first = try await a.writeResult(Data("{\"text\":\"one\"}".utf8), jobID: id)
            let second = try await b.writeResult(Data("{\"text\":\"two\"}".utf8), jobID: id)
            #expect(first != second)
            #expect(first.hasPrefix("results/\(id.uuidString.lowercased())"))
            #expect(try await b.read(first) == Data("{\"text\":\"one\"}".utf8))
            let empty = try await a.writeResult(Data(), jobID: id)
            #expect(try await b.read(empty).isEmpty)

            await a.remove(first)
            await b.remove(first)
            #expect(try await !a.exists(first))
            await #expect(throws: (any Error).self) { try await b.read(first) }
            #expect(try await a.read(second) == Data("{\"text\":\"two\"}".utf8))
        }
    }

    /// The sweep deletes unreferenced blobs older than the cutoff (and stale spool files), keeps referenced and
    /// young ones, and two nodes sweeping at once delete each orphan once.
    @Test func orphanSweepKeepsReferencedAndYoungBlobs() async throws {
        try await withNodes { a, b, client in
            let kept = try await a.writeResult(Data("kept".utf8), jobID: UUID())
            let orphan = try await a.writeResult(Data("orphan".utf8), jobID: UUID())
            let stale = a.temporaryFile()
            try Data("half an upload".utf8).write(to: stale)
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: stale.path)
            let young = try await a.writeResult(Data("young".utf8), jobID: UUID())
            _ = try await client.query("UPDATE steno_blobs SET created_at = created_at - interval '1 hour' WHERE name <> \(young)").collect()

            let cutoff = Date().addingTimeInterval(-600)
            async let fromA = a.sweepOrphans(referenced: [kept], olderThan: cutoff)
            async let fromB = b.sweepOrphans(referenced: [kept], olderThan: cutoff)
            let removed = try await fromA + fromB
            #expect(removed.filter { $0 == orphan }.count == 1)
            #expect(removed.contains("tmp/" + stale.lastPathComponent))
            #expect(!FileManager.default.fileExists(atPath: stale.path))
            #expect(try await a.exists(kept))
            #expect(try await a.exists(young))
            #expect(try await !a.exists(orphan))
        }
    }
}
