import Foundation
import HummingbirdTesting
import Logging
import PostgresNIO
import StenoServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// PostgreSQL's own full disk (SQLSTATE 53100 `disk_full`) on the distributed mode's real paths: the upload
/// route and the worker pool of a server built as `steno serve --database` builds it, on a real PostgreSQL.
/// The server raises the error from a trigger on the blob chunks (`RAISE … USING ERRCODE = 'disk_full'`: the
/// very error a full disk gives, through the same protocol), and, when the tests run as root and may mount a
/// tmpfs, from a tablespace on a 2 MiB tmpfs that really fills.
@Suite(.requiresPostgres, .postgresServer) struct PostgresDiskFullTests {
    private var server: PostgresTestServer {
        get throws { try #require(PostgresTestServer.current, "the suite's .postgresServer trait starts it") }
    }

    /// An upload whose second chunk finds the disk full: `507 insufficient_storage`, no job row, no blob and no
    /// chunk (the first chunk's insert is rolled back with its transaction), no spool file; once space returns
    /// the same upload is accepted and transcribed.
    @Test func anUploadIntoAFullDatabaseIs507AndLeavesNothing() async throws {
        try await withServer { client, service, sql, directory, _ in
            try await Self.raiseDiskFull(sql, when: "NEW.name LIKE 'audio/%' AND NEW.chunk >= 1")
            let audio = Self.randomBytes(5 << 19)
            let refused = try await client.upload(MultipartForm(file: audio))
            #expect(refused.status.code == 507, "\(String(buffer: refused.body))")
            #expect(try client.errorCode(refused) == "insufficient_storage")
            #expect(try await Self.count(sql, "steno_jobs") == 0, "no row for a refused upload")
            #expect(try await Self.count(sql, "steno_blobs") == 0, "no blob")
            #expect(try await Self.count(sql, "steno_blob_chunks") == 0, "no partial blob: the stored chunk was rolled back")
            #expect(try Self.spoolFiles(directory).isEmpty, "the spooled upload is removed")

            try await Self.spaceReturns(sql)
            let id = try await client.submit(audio)
            let done = try await client.wait(for: id, in: [.completed, .failed], store: service.store)
            #expect(done.state == .completed)
            #expect(try await client.status(id).result?.text == "transcript of \(audio.count) bytes")
        }
    }

    /// A transcription whose result finds the disk full: the job goes back to the queue at once with
    /// `error.code` `storage_full`, its attempt counted and a backoff set, no result blob; it completes on its
    /// next attempt once space returns. Out of attempts, it fails with `storage_full`.
    @Test func aResultIntoAFullDatabaseRetriesTheJobWithStorageFull() async throws {
        let clock = ManualClock(Date())
        try await withServer(clock: clock, { $0.retryBackoff = 60 }) { client, service, sql, _, _ in
            try await Self.raiseDiskFull(sql, when: "NEW.name LIKE 'results/%'")
            let id = try await client.submit(Data("RIFF-result".utf8))
            let retried = try await Self.waitUntil(id, service.store) { $0.state == .pending && $0.errorCode != nil }
            #expect(retried.errorCode == "storage_full")
            #expect(retried.attempts == 1, "the attempt is counted")
            #expect(retried.runAfter > clock.now().addingTimeInterval(30), "retried after the backoff (60 s ± 25 %)")
            #expect(retried.resultPath == nil && retried.leaseToken == nil)
            #expect(try await Self.count(sql, "steno_blobs WHERE name LIKE 'results/%'") == 0, "no result blob")

            try await Self.spaceReturns(sql)
            clock.advance(by: 120)
            service.workers.wake.signal()
            let done = try await client.wait(for: id, in: [.completed, .failed], store: service.store)
            #expect(done.state == .completed)
            #expect(done.attempts == 2)
            #expect(try await client.status(id).result?.text == "transcript of 11 bytes")

            // Full for good: every attempt fails to store its result, and the job fails with the storage code.
            try await Self.raiseDiskFull(sql, when: "NEW.name LIKE 'results/%'")
            let doomed = try await client.submit(Data("RIFF-doomed".utf8))
            // The clock moves only while the job waits for its backoff, never under a held lease.
            let deadline = Date().addingTimeInterval(20)
            var failed = try #require(try await service.store.job(id: UUID(uuidString: doomed)!))
            while !failed.state.isTerminal, Date() < deadline {
                if failed.state == .pending, failed.errorCode != nil {
                    clock.advance(by: 600)
                    service.workers.wake.signal()
                }
                try await Task.sleep(for: .milliseconds(20))
                failed = try #require(try await service.store.job(id: UUID(uuidString: doomed)!))
            }
            #expect(failed.state == .failed)
            #expect(failed.errorCode == "storage_full")
            #expect(failed.attempts == failed.maxAttempts)
            #expect(try await Self.count(sql, "steno_blobs WHERE name LIKE 'results/%'") == 1, "only the first job's result")
        }
    }

    /// The real thing: the blob chunks moved to a tablespace on a 2 MiB tmpfs, a 4 MiB upload fills it and
    /// PostgreSQL itself fails the insert ("could not extend file"): `507 insufficient_storage`, nothing left;
    /// once the chunks move back to a disk with room, uploads work again. Needs root (mount, and the tablespace
    /// directory handed to the server's user); without it this test only says so.
    @Test func aTablespaceThatReallyFillsIs507() async throws {
        guard getuid() == 0 else {
            print("PostgresDiskFullTests: the real full tablespace needs root to mount a tmpfs; not run")
            return
        }
        let mountPoint = "/tmp/steno-pg-full-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mountPoint]) == 0 else {
            print("PostgresDiskFullTests: mount -t tmpfs is not allowed here; the real full tablespace is not run")
            return
        }
        defer { _ = try? Self.run("/bin/umount", [mountPoint]) }
        if let user = getpwnam("postgres") {
            // The test server runs as `postgres` under root (see PostgresTestServer).
            #expect(chown(mountPoint, user.pointee.pw_uid, user.pointee.pw_gid) == 0)
        }
        let tablespace = "steno_full_" + UUID().uuidString.prefix(8).lowercased()
        try await withServer { client, service, sql, directory, _ in
            try await Self.execute(sql, "CREATE TABLESPACE \(tablespace) LOCATION '\(mountPoint)'")
            try await Self.execute(sql, "ALTER TABLE steno_blob_chunks SET TABLESPACE \(tablespace)")
            let audio = Self.randomBytes(4 << 20)
            let refused = try await client.upload(MultipartForm(file: audio))
            #expect(refused.status.code == 507, "\(String(buffer: refused.body))")
            #expect(try client.errorCode(refused) == "insufficient_storage")
            #expect(try await Self.count(sql, "steno_jobs") == 0)
            #expect(try await Self.count(sql, "steno_blob_chunks") == 0)
            #expect(try Self.spoolFiles(directory).isEmpty)

            try await Self.execute(sql, "ALTER TABLE steno_blob_chunks SET TABLESPACE pg_default")
            let id = try await client.submit(audio)
            #expect(try await client.wait(for: id, in: [.completed, .failed], store: service.store).state == .completed)
            try await Self.execute(sql, "DROP TABLESPACE \(tablespace)")
        }
    }

    /// The server's own errors, as postgres-nio delivers them: `disk_full` is out of space, bare or wrapped by a
    /// transaction, and never "unavailable"; out of memory and other resource shortages are a busy server
    /// (`DatabaseUnavailable`: 503 with `Retry-After`, workers write again), not a full disk.
    @Test func sqlStatesOfClass53AreTold() async throws {
        try await server.withDatabase { clients in
            let sql = clients[0]
            func raised(_ state: String) async throws -> any Error {
                do {
                    try await Self.execute(sql, "DO $$ BEGIN RAISE EXCEPTION 'resource trouble' USING ERRCODE = '\(state)'; END $$")
                } catch {
                    return error
                }
                Issue.record("SQLSTATE \(state) was not raised")
                throw CancellationError()
            }
            let full = try await raised("53100")
            #expect(OutOfSpace.matches(full))
            #expect(!(classifyDatabaseError(full) is DatabaseUnavailable))
            #expect(OutOfSpace.matches(classifyDatabaseError(full)))
            for state in ["53000", "53200", "53300"] {
                let busy = try await raised(state)
                #expect(!OutOfSpace.matches(busy), "SQLSTATE \(state)")
                #expect(classifyDatabaseError(busy) is DatabaseUnavailable, "SQLSTATE \(state)")
            }
            #expect(!OutOfSpace.matches(try await raised("23505")), "a unique violation is not a full disk")

            do {
                try await sql.withTransaction(logger: Logger(label: "test")) { connection in
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "DO $$ BEGIN RAISE EXCEPTION 'full' USING ERRCODE = 'disk_full'; END $$"), logger: Logger(label: "test")).collect()
                }
                Issue.record("the transaction did not fail")
            } catch {
                #expect(error is PostgresTransactionError)
                #expect(OutOfSpace.matches(error))
                #expect(OutOfSpace.matches(classifyDatabaseError(error)))
            }
        }
    }

    // MARK: - Helpers

    /// A server as `steno serve --database <url>` builds it (scripted transcriber), ready, with a plain SQL client
    /// on the same database for the test's own statements.
    private func withServer(
        clock: ManualClock = ManualClock(Date()),
        _ adjust: (inout ServerConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (any TestClientProtocol, StenoService, PostgresClient, URL, ManualClock) async throws -> Void
    ) async throws {
        try await server.withNamedDatabase { url, clients in
            let directory = try TemporaryDirectory()
            var configuration = ServerConfiguration.testing(dataDirectory: directory.url, databaseURL: url)
            configuration.logLevel = .critical
            adjust(&configuration)
            let service = try buildApplication(configuration: configuration, transcriber: ScriptedTranscriber(), clock: clock)
            try await service.app.test(.router) { client in
                var ready = false
                for _ in 0..<400 where !ready {
                    ready = try await client.execute(uri: "/readyz", method: .get).status == .ok
                    if !ready { try await Task.sleep(for: .milliseconds(25)) }
                }
                try #require(ready, "the server on PostgreSQL became ready")
                try await body(client, service, clients[0], directory.url, clock)
            }
            withExtendedLifetime(directory) {}
        }
    }

    /// Every insert of a chunk matching `condition` fails as a full disk does.
    private static func raiseDiskFull(_ sql: PostgresClient, when condition: String) async throws {
        try await execute(sql, """
            CREATE OR REPLACE FUNCTION steno_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
            END $$
            """)
        try await execute(sql, """
            CREATE TRIGGER steno_test_disk_full BEFORE INSERT ON steno_blob_chunks
            FOR EACH ROW WHEN (\(condition)) EXECUTE FUNCTION steno_test_disk_full()
            """)
    }

    private static func spaceReturns(_ sql: PostgresClient) async throws {
        try await execute(sql, "DROP TRIGGER steno_test_disk_full ON steno_blob_chunks")
    }

    private static func execute(_ sql: PostgresClient, _ statement: String) async throws {
        _ = try await sql.query(PostgresQuery(unsafeSQL: statement)).collect()
    }

    private static func count(_ sql: PostgresClient, _ from: String) async throws -> Int {
        let row = try #require(try await sql.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(from)")).collect().first)
        return try row.decode(Int.self)
    }

    private static func spoolFiles(_ directory: URL) throws -> [String] {
        let spool = directory.appendingPathComponent("tmp")
        guard FileManager.default.fileExists(atPath: spool.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: spool.path)
    }

    private static func waitUntil(_ id: String, _ store: any JobStore, _ condition: (Job) -> Bool) async throws -> Job {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let job = try await store.job(id: UUID(uuidString: id)!), condition(job) { return job }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("job \(id) never reached the expected state")
        throw CancellationError()
    }

    /// Incompressible, so PostgreSQL stores every byte.
    private static func randomBytes(_ count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    private static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
