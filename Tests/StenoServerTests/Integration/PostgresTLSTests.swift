import Foundation
import Logging
import PostgresNIO
import StenoServer
import Testing

/// The database URL's TLS settings (`sslmode`, `sslrootcert`) against a real PostgreSQL with `ssl=on`, whose
/// certificate names only `localhost` and is signed by a throwaway private CA, and which takes TCP connections
/// only over TLS (`hostssl`). Everything goes through the product's path: `PostgresURL` → `PostgresDatabase`
/// (the pool, which migrates) and `JobNotificationListener` (the LISTEN connection).
@Suite(.requiresPostgres, .tlsPostgresServer) struct PostgresTLSTests {
    private var fixture: TLSPostgresServer {
        get throws { try #require(TLSPostgresServer.current, "the suite's .tlsPostgresServer trait starts it") }
    }

    @Test(arguments: [
        ("127.0.0.1", "sslmode=require"),
        ("127.0.0.1", "sslmode=prefer"),
        ("localhost", "sslmode=verify-full&sslrootcert={ca}"),
        ("127.0.0.1", "sslmode=verify-ca&sslrootcert={ca}"),
        ("127.0.0.1", "sslmode=require&sslrootcert={ca}"),
    ])
    func theNodeConnectsOverTLS(host: String, parameters: String) async throws {
        let fixture = try fixture
        try await fixture.server.withNamedDatabase(nodes: 0) { plain, _ in
            let url = try fixture.url(host: host, parameters: parameters, like: plain)
            let log = CapturedLog()
            let logger = Logger(label: "steno.tests.tls") { _ in log.handler() }
            let database = PostgresDatabase(url: url, logger: logger)
            let listener = JobNotificationListener(url: url, wake: WakeSignal(), logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.run() }
                group.addTask { try await listener.run() }
                defer { group.cancelAll() }

                try await waitUntil("the database is migrated over \(url)", log: log) { database.ready.isOpen }
                let ownSession = try await database.client.query(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").collect()
                #expect(try ownSession.map { try $0.decode(Bool.self) } == [true])

                // The LISTEN connection is encrypted too (its own configuration: `connectionConfiguration()`).
                var listening: [Bool] = []
                try await waitUntil("the listener is LISTENing over \(url)", log: log) {
                    listening = try await database.client.query("""
                        SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                        WHERE a.datname = current_database() AND a.query ILIKE 'listen%'
                        """).collect().map { try $0.decode(Bool.self) }
                    return !listening.isEmpty
                }
                #expect(listening == [true])
                let sessions = try await database.client.query("""
                    SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                    WHERE a.datname = current_database()
                    """).collect().map { try $0.decode(Bool.self) }
                #expect(sessions.count >= 2 && sessions.allSatisfy { $0 })
            }
        }
    }

    /// Each refusal, and the words that explain it: from one connection as the LISTEN connection and the
    /// start-up check open it, and in the node's log (start-up and listener); the node's pool gets nowhere either.
    @Test(arguments: [
        // The private CA is in no system trust store.
        ("localhost", "sslmode=verify-full", "CERTIFICATE_VERIFY_FAILED"),
        // Signed by the right CA, but the certificate names localhost, not 127.0.0.1.
        ("127.0.0.1", "sslmode=verify-full&sslrootcert={ca}", "failedToValidateHostname"),
        ("localhost", "sslmode=verify-full&sslrootcert={other}", "CERTIFICATE_VERIFY_FAILED"),
        // With a CA file, require checks the chain as libpq does.
        ("127.0.0.1", "sslmode=require&sslrootcert={other}", "CERTIFICATE_VERIFY_FAILED"),
        // The server takes TCP only over TLS.
        ("127.0.0.1", "sslmode=disable", "no pg_hba.conf entry"),
    ])
    func theConnectionIsRefused(host: String, parameters: String, reason: String) async throws {
        let fixture = try fixture
        try await fixture.server.withNamedDatabase(nodes: 0) { plain, _ in
            let url = try fixture.url(host: host, parameters: parameters, like: plain)
            let error = await #expect(throws: (any Error).self) {
                let connection = try await PostgresConnection.connect(
                    configuration: try url.connectionConfiguration(), id: 1, logger: Logger(label: "steno.tests.tls"))
                try await connection.close()
            }
            let explanation = error.map { String(reflecting: $0) } ?? ""
            #expect(explanation.contains(reason), "\(explanation)")

            let startLog = CapturedLog(), listenerLog = CapturedLog()
            let database = PostgresDatabase(url: url, logger: Logger(label: "steno.tests.tls") { _ in startLog.handler() })
            let listener = JobNotificationListener(
                url: url, wake: WakeSignal(), logger: Logger(label: "steno.tests.tls") { _ in listenerLog.handler() })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.run() }
                group.addTask { try await listener.run() }
                defer { group.cancelAll() }
                try await waitUntil("the node logs why it cannot start over \(url)", log: startLog) {
                    startLog.text.contains("database not reachable yet") && startLog.text.contains(reason)
                }
                try await waitUntil("the listener logs why it cannot connect over \(url)", log: listenerLog) {
                    listenerLog.text.contains("job notifications interrupted") && listenerLog.text.contains(reason)
                }
                await #expect(throws: (any Error).self) {
                    try await withDatabaseDeadline(.seconds(3)) { try await database.client.query("SELECT 1").collect() }
                }
                #expect(!database.ready.isOpen)
            }
        }
    }

    private func waitUntil(
        _ what: String, timeout: Duration = .seconds(30), log: CapturedLog, _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                throw TimedOut(description: "timed out waiting until \(what); log:\n\(log.text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

private struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Parsing `sslrootcert`: problems are configuration errors at start, never a crash or a late surprise.
@Suite struct PostgresRootCertificateSettingTests {
    @Test func aMissingOrUnreadableFileIsAConfigurationError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steno-rootcert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let notPEM = directory.appendingPathComponent("notes.txt")
        try Data("not a certificate\n".utf8).write(to: notPEM)

        for (path, complaint) in [(directory.appendingPathComponent("missing.crt").path, "no readable file"),
                                  (notPEM.path, "not a PEM file"), (directory.path, "not a PEM file")] {
            let error = #expect(throws: ConfigurationError.self) {
                try ServerConfiguration(settings: [
                    "STENO_DATABASE_URL": "postgres://steno:secret@db/steno?sslmode=verify-full&sslrootcert=\(path)",
                ])
            }
            #expect(error?.description.contains(path) == true && error?.description.contains(complaint) == true,
                    "\(error?.description ?? "")")
            #expect(error?.description.contains("secret") == false)
        }
        // libpq reads no CA file when TLS is off.
        #expect(try PostgresURL("postgres://db/steno?sslmode=disable&sslrootcert=/nowhere/ca.crt").sslMode == .disable)
    }

    @Test func theCAFileIsReadAndShownInTheDescription() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steno-rootcert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = try TestCertificateAuthority("steno", in: directory)

        let url = try PostgresURL(
            "postgres://steno:secret@db.internal/steno?sslmode=verify-ca&sslrootcert=\(authority.certificate.path)")
        #expect(url.sslMode == .verifyCA && url.rootCertificatePath == authority.certificate.path)
        #expect(url.description == "postgres://steno@db.internal:5432/steno?sslmode=verify-ca&sslrootcert=\(authority.certificate.path)")
        _ = try url.connectionConfiguration()
    }

    @Test func systemMeansTheSystemRootsAndOnlyWithVerifyFull() throws {
        // As libpq: sslrootcert=system makes verify-full the default, and refuses any weaker mode.
        #expect(try PostgresURL("postgres://db/steno?sslrootcert=system").sslMode == .verifyFull)
        for mode in ["disable", "prefer", "require", "verify-ca"] {
            #expect(throws: ConfigurationError.self) { try PostgresURL("postgres://db/steno?sslmode=\(mode)&sslrootcert=system") }
        }
    }
}

/// The TLS server of `PostgresTLSTests` and the certificate authorities around it.
struct TLSPostgresServer: Sendable {
    @TaskLocal static var current: TLSPostgresServer?

    let server: PostgresTestServer
    /// The CA that signed the server's certificate.
    let authority: URL
    /// A CA that signed nothing the server has.
    let otherAuthority: URL

    /// `plain` (a test database's URL) with another host and query; `{ca}` and `{other}` name the CAs' files.
    func url(host: String, parameters: String, like plain: String) throws -> PostgresURL {
        let database = try #require(try PostgresURL(plain).database)
        let query = parameters
            .replacingOccurrences(of: "{ca}", with: authority.path)
            .replacingOccurrences(of: "{other}", with: otherAuthority.path)
        return try PostgresURL("postgres://steno@\(host):\(server.port)/\(database)?\(query)")
    }
}

/// Makes the CAs and the server certificate (for `localhost` only), starts a PostgreSQL with `ssl=on` and
/// `hostssl`-only TCP rules around the suite, and deletes it all afterwards.
struct TLSPostgresServerTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steno-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = try TestCertificateAuthority("steno", in: directory)
        let other = try TestCertificateAuthority("other", in: directory)
        let issued = try authority.issueServerCertificate("server", names: ["DNS:localhost"])
        let server = try await PostgresTestServer.start(options: PostgresTestServer.Options(
            files: ["server.crt": try Data(contentsOf: issued.certificate), "server.key": try Data(contentsOf: issued.key)],
            settings: ["ssl=on", "ssl_cert_file={root}/server.crt", "ssl_key_file={root}/server.key"],
            hostBasedAuthentication: "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust"))
        let fixture = TLSPostgresServer(server: server, authority: authority.certificate, otherAuthority: other.certificate)
        do {
            try await TLSPostgresServer.$current.withValue(fixture) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == TLSPostgresServerTrait {
    static var tlsPostgresServer: Self { Self() }
}
