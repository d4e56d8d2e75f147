import Foundation
import Logging
import PostgresNIO
import StenoServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL server for a test suite: `initdb` in a temporary directory, `postgres` on a free
/// loopback port (unix socket in the same directory), one fresh database per test, everything stopped and deleted
/// at the end. Uses the server binaries of Debian's `postgresql` package (`scripts/setup.sh` installs it); a
/// missing PostgreSQL skips the suites with a message outside CI and fails them in CI (`requiresPostgres`).
///
/// PostgreSQL refuses to run as root: under root (CI) the server runs as the `postgres` user through `runuser`,
/// in a directory owned by that user; otherwise as the current user. A watchdog in the launching shell stops the
/// server and deletes its directory when asked to, and also when the test process dies without asking.
final class PostgresTestServer: @unchecked Sendable {
    @TaskLocal static var current: PostgresTestServer?

    /// What a suite needs beyond the default server (TLS, for one). The default changes nothing.
    struct Options: Sendable {
        /// Files put in the server's directory before it starts, owned by the server's user and readable by it
        /// only (PostgreSQL demands that of a TLS key); settings name them `{root}/name`.
        var files: [String: Data] = [:]
        /// Extra server settings, `name=value` (each passed as `-c`); `{root}` stands for the server's directory.
        var settings: [String] = []
        /// Replaces pg_hba.conf. A `local all all trust` line comes first: the admin connection then uses the
        /// unix socket, so it keeps working whatever the TCP rules demand.
        var hostBasedAuthentication: String?
    }

    let port: Int
    private let root: URL
    private let options: Options
    private let launcher: Process
    private let launcherErrors: Pipe
    /// Creates and drops the per-test databases; replaced after a restart (`lock` guards it).
    private var adminConnection: PostgresConnection
    private let lock = NSLock()
    private var admin: PostgresConnection { lock.withLock { adminConnection } }
    private static let logger = Logger(label: "steno.tests.postgres")

    private init(port: Int, root: URL, options: Options, launcher: Process, launcherErrors: Pipe, admin: PostgresConnection) {
        self.port = port
        self.root = root
        self.options = options
        self.launcher = launcher
        self.launcherErrors = launcherErrors
        self.adminConnection = admin
    }

    /// Runs `body` against a new empty database with `nodes` running clients on it (each one a separate
    /// connection pool, as on separate machines). The clients stop and the database is dropped afterwards.
    func withDatabase<Value: Sendable>(
        nodes: Int = 1, _ body: ([PostgresClient]) async throws -> Value
    ) async throws -> Value {
        try await withNamedDatabase(nodes: nodes) { _, clients in try await body(clients) }
    }

    /// As `withDatabase`, also giving the database's URL (for `steno serve --database`).
    func withNamedDatabase<Value: Sendable>(
        nodes: Int = 1, _ body: (_ url: String, [PostgresClient]) async throws -> Value
    ) async throws -> Value {
        let name = "steno_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        _ = try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Self.logger).collect()
        let clients = (0..<nodes).map { _ in PostgresClient(configuration: clientConfiguration(database: name)) }
        let outcome: Result<Value, any Error>
        do {
            outcome = .success(try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { await client.run() } }
                // Cancelling `run()` closes a client.
                defer { group.cancelAll() }
                return try await body("postgres://steno@127.0.0.1:\(port)/\(name)?sslmode=disable", clients)
            })
        } catch {
            outcome = .failure(error)
        }
        _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"), logger: Self.logger).collect()
        return try outcome.get()
    }

    func clientConfiguration(database: String) -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: "steno", password: nil, database: database, tls: .disable)
        configuration.options.maximumConnections = 10
        return configuration
    }

    // MARK: - Start and stop

    /// Stops the PostgreSQL server (a fast shutdown: clients are disconnected) and returns once it is down; the
    /// data directory and port stay, for `startAgain()`.
    func stopForRestart() async throws {
        _ = FileManager.default.createFile(atPath: root.appendingPathComponent("down").path, contents: nil)
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("is-down").path) {
            guard ContinuousClock.now < deadline, launcher.isRunning else {
                throw LaunchFailure(description: "PostgreSQL did not stop for the restart")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Starts the server stopped by `stopForRestart()` on the same port and data, and waits until it accepts
    /// connections again.
    func startAgain() async throws {
        try FileManager.default.removeItem(at: root.appendingPathComponent("down"))
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let connection = try? await PostgresConnection.connect(
                configuration: Self.adminConfiguration(root: root, port: port, options: options), id: 0, logger: Self.logger)
            {
                let old = lock.withLock { () -> PostgresConnection in
                    defer { adminConnection = connection }
                    return adminConnection
                }
                try? await old.close()
                return
            }
            guard ContinuousClock.now < deadline, launcher.isRunning else {
                throw LaunchFailure(description: "PostgreSQL did not come back after the restart")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Starts a server (a few attempts, in case another process takes the free port first) and waits until it
    /// accepts connections.
    static func start(options: Options = Options()) async throws -> PostgresTestServer {
        let binaries = try serverBinaries()
        var failures: [String] = []
        for _ in 0..<3 {
            do {
                return try await launch(binaries: binaries, options: options)
            } catch let error as LaunchFailure {
                failures.append(error.description)
            }
        }
        throw LaunchFailure(description: failures.joined(separator: "\n---\n"))
    }

    /// Stops the server and deletes its directory; waits for both.
    func stop() async {
        try? await admin.close()
        _ = FileManager.default.createFile(atPath: root.appendingPathComponent("stop").path, contents: nil)
        let deadline = ContinuousClock.now + .seconds(30)
        while launcher.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if launcher.isRunning { launcher.terminate() }
        launcher.waitUntilExit()
        if launcher.terminationStatus != 0 {
            // The server failed during the tests: its last log lines explain why.
            let output = String(decoding: launcherErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            print("PostgreSQL test server exited with status \(launcher.terminationStatus): \(output)")
        }
    }

    private static func launch(binaries: URL, options: Options) async throws -> PostgresTestServer {
        let port = try freeLoopbackPort()
        let root = URL(fileURLWithPath: "/tmp/steno-pg-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: false)

        var files = options.files
        var settings = options.settings
        if let rules = options.hostBasedAuthentication {
            files["pg_hba.conf"] = Data("local all all trust\n\(rules)\n".utf8)
            settings.append("hba_file={root}/pg_hba.conf")
        }
        let launcher = Process()
        let arguments = ["/bin/sh", "-c", launchScript, "sh", binaries.path, root.path, String(port),
                         String(ProcessInfo.processInfo.processIdentifier)]
            + settings.flatMap { ["-c", $0.replacingOccurrences(of: "{root}", with: root.path)] }
        var serverUser: (uid: uid_t, gid: gid_t)?
        if getuid() == 0 {
            // initdb and postgres refuse root: hand the directory to the `postgres` user and run as it.
            guard let user = getpwnam("postgres") else {
                throw LaunchFailure(description: "running as root and there is no `postgres` user (install Debian's postgresql package: scripts/setup.sh)")
            }
            guard chown(root.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw LaunchFailure(description: "cannot give \(root.path) to the postgres user (errno \(errno))")
            }
            serverUser = (user.pointee.pw_uid, user.pointee.pw_gid)
            guard let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                .first(where: FileManager.default.isExecutableFile(atPath:)) else {
                throw LaunchFailure(description: "running as root and runuser is missing")
            }
            launcher.executableURL = URL(fileURLWithPath: runuser)
            launcher.arguments = ["-u", "postgres", "--"] + arguments
        } else {
            launcher.executableURL = URL(fileURLWithPath: arguments[0])
            launcher.arguments = Array(arguments.dropFirst())
        }
        for (name, contents) in files {
            let path = root.appendingPathComponent(name).path
            guard FileManager.default.createFile(atPath: path, contents: contents, attributes: [.posixPermissions: 0o600]),
                  serverUser.map({ chown(path, $0.uid, $0.gid) == 0 }) ?? true else {
                throw LaunchFailure(description: "cannot write \(path) for the server")
            }
        }
        let errors = Pipe()
        launcher.standardInput = FileHandle.nullDevice
        launcher.standardOutput = FileHandle.nullDevice
        launcher.standardError = errors
        try launcher.run()

        // Ready when it accepts a connection; failed when the launcher exits first.
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if !launcher.isRunning {
                launcher.waitUntilExit()
                let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                try? FileManager.default.removeItem(at: root)
                throw LaunchFailure(description: "PostgreSQL did not start (port \(port)): \(output)")
            }
            if let admin = try? await PostgresConnection.connect(
                configuration: adminConfiguration(root: root, port: port, options: options), id: 0, logger: logger)
            {
                return PostgresTestServer(
                    port: port, root: root, options: options, launcher: launcher, launcherErrors: errors, admin: admin)
            }
            if ContinuousClock.now > deadline {
                _ = FileManager.default.createFile(atPath: root.appendingPathComponent("stop").path, contents: nil)
                throw LaunchFailure(description: "PostgreSQL did not accept connections on port \(port) within 60 s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The admin connection: over TCP without TLS, or over the unix socket when the suite sets its own
    /// pg_hba.conf (which may refuse plain TCP).
    private static func adminConfiguration(root: URL, port: Int, options: Options) -> PostgresConnection.Configuration {
        if options.hostBasedAuthentication != nil {
            return PostgresConnection.Configuration(
                unixSocketPath: root.appendingPathComponent("socket/.s.PGSQL.\(port)").path,
                username: "steno", password: nil, database: "postgres")
        }
        return PostgresConnection.Configuration(
            host: "127.0.0.1", port: port, username: "steno", password: nil, database: "postgres", tls: .disable)
    }

    /// `sh -c` script; arguments: server binaries, directory, port, pid of the test process, then extra arguments
    /// for `postgres` (`-c name=value` settings). The server runs with durability off (fsync, full-page writes):
    /// its data is thrown away anyway.
    private static let launchScript = #"""
        bin=$1 root=$2 port=$3 owner=$4
        shift 4
        if ! "$bin/initdb" --pgdata="$root/data" --username=steno --auth=trust --encoding=UTF8 --locale=C \
                --no-sync --no-instructions >"$root/initdb.log" 2>&1; then
            echo "initdb failed:" >&2; tail -n 40 "$root/initdb.log" >&2; rm -rf "$root"; exit 1
        fi
        mkdir "$root/socket"
        start() {
            "$bin/postgres" -D "$root/data" -k "$root/socket" -h 127.0.0.1 -p "$port" \
                -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200 "$@" \
                >>"$root/postgres.log" 2>&1 &
            pid=$!
        }
        start "$@"
        # Until the tests ask for a stop, or their process is gone, or the server died by itself. A `down` file
        # stops the server for a restart test (`is-down` says it is down); removing it starts the server again.
        status=0
        while [ ! -e "$root/stop" ] && [ -d "/proc/$owner" ]; do
            if [ -e "$root/down" ]; then
                if [ -n "$pid" ]; then kill -INT "$pid"; wait "$pid"; pid=""; : >"$root/is-down"; fi
            elif [ -z "$pid" ]; then
                rm -f "$root/is-down"; start "$@"
            elif ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            sleep 0.1
        done
        if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null; wait "$pid"; status=$?; fi
        if [ "$status" -ne 0 ]; then
            echo "postgres exited with status $status:" >&2; tail -n 40 "$root/postgres.log" >&2
        fi
        rm -rf "$root"
        exit "$status"
        """#

    /// The newest installed server, or `STENO_POSTGRES_BIN`.
    private static func serverBinaries() throws -> URL {
        if let configured = ProcessInfo.processInfo.environment["STENO_POSTGRES_BIN"] {
            return URL(fileURLWithPath: configured)
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let newest = versions.compactMap(Int.init).sorted().last { version in
            FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb")
        }
        guard let newest else {
            throw LaunchFailure(description: "no PostgreSQL server under /usr/lib/postgresql (install Debian's postgresql package: scripts/setup.sh)")
        }
        return URL(fileURLWithPath: "/usr/lib/postgresql/\(newest)/bin")
    }

    /// A port that was free a moment ago: bound to port 0 on the loopback address, then released.
    private static func freeLoopbackPort() throws -> Int {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw LaunchFailure(description: "socket() failed (errno \(errno))") }
        defer { close(socketDescriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(socketDescriptor, generic, length) == 0 && getsockname(socketDescriptor, generic, &length) == 0
            }
        }
        guard bound else { throw LaunchFailure(description: "cannot bind a loopback port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct LaunchFailure: Error, CustomStringConvertible {
        var description: String
    }
}

/// Starts a `PostgresTestServer` around a whole suite (`@Suite(.requiresPostgres, .postgresServer)`); its tests find it in
/// `PostgresTestServer.current`.
extension PostgresTestServer {
    /// A logger for the stores of a test: warnings only (migrations log at info, once per test).
    static func quietLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = .warning
        return logger
    }

    /// A job store on `client` with the schema in place.
    static func migratedJobStore(_ client: PostgresClient, logger: Logger) async throws -> PostgresJobStore {
        let store = PostgresJobStore(client: client, logger: logger)
        try await store.migrate()
        return store
    }
}

struct PostgresServerTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try await PostgresTestServer.start()
        do {
            try await PostgresTestServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == PostgresServerTrait {
    static var postgresServer: Self { Self() }
}

/// Suites that need PostgreSQL skip, saying so, on a machine without it; in CI (`CI` set) they always run, so a
/// missing server fails them instead of hiding them.
extension PostgresTestServer {
    static var canRun: Bool {
        ProcessInfo.processInfo.environment["CI"] != nil || (try? serverBinaries()) != nil
    }
}

extension Trait where Self == ConditionTrait {
    static var requiresPostgres: Self {
        .enabled(if: PostgresTestServer.canRun,
                 "PostgreSQL is not installed (Debian's postgresql package; scripts/setup.sh installs it): skipped outside CI")
    }
}
