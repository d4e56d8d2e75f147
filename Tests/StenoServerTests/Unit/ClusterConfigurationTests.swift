import Foundation
import StenoServer
import Testing

/// The settings of the distributed mode: a database URL, a role, and their checks.
@Suite struct ClusterConfigurationTests {
    @Test func databaseAndRoleComeFromTheEnvironment() throws {
        let configuration = try ServerConfiguration(settings: [
            "STENO_DATABASE_URL": "postgres://steno:s%40cret@db.internal:6432/steno?sslmode=require",
            "STENO_ROLE": "worker", "STENO_DATABASE_TIMEOUT": "3s", "STENO_POLL_INTERVAL": "250ms",
        ])
        #expect(configuration.role == .worker)
        #expect(configuration.databaseTimeout == 3)
        #expect(configuration.pollInterval == 0.25)
        let url = try PostgresURL(try #require(configuration.databaseURL))
        #expect(url.host == "db.internal" && url.port == 6432 && url.database == "steno")
        #expect(url.username == "steno" && url.password == "s@cret")
        #expect(url.sslMode == .require)
        // The password never reaches a log line.
        #expect(!url.description.contains("cret"))
        #expect(ServerConfiguration.unknownVariables(in: ["STENO_ROLE": "api", "STENO_DATABASE_URL": "x"]).isEmpty)

        let defaults = try ServerConfiguration(settings: [:])
        #expect(defaults.role == .all && defaults.databaseURL == nil)
    }

    @Test(arguments: [
        ["STENO_ROLE": "api"],
        ["STENO_ROLE": "worker"],
        ["STENO_ROLE": "scheduler", "STENO_DATABASE_URL": "postgres://h/db"],
        ["STENO_DATABASE_URL": "mysql://h/db"],
        ["STENO_DATABASE_URL": "postgres:///db"],
        ["STENO_DATABASE_URL": "postgres://h/db?sslmode=sometimes"],
    ])
    func inconsistentSettingsAreRefused(_ settings: [String: String]) {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: settings) }
    }
}
