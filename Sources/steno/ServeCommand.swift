import ArgumentParser
import Foundation
import Logging
import StenoServer

/// `steno serve`: the HTTP API and the workers in one process. Its options are the settings table's
/// (`SettingsTable`): every one is also an environment variable (`STENO_` + the name in capitals); a flag wins
/// over the variable, which wins over the default.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the transcription service (API, workers and cleaner, or one role of several nodes).",
        discussion: "Settings (durations: 90, 90s, 10m, 24h, 1h30m; sizes: bytes or K/M/G):\n\n" + ServerConfiguration.settingsHelp)

    /// The settings as given on the command line, read by the settings table (not by the argument parser,
    /// which would need each one declared a second time).
    @Argument(parsing: .allUnrecognized, help: .hidden) var settings: [String] = []

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("STENO_") }
        let configuration: ServerConfiguration
        let settings: [String: String]
        do {
            settings = try ServerConfiguration.overriding(environment, withArguments: self.settings)
            configuration = try ServerConfiguration(settings: settings)
            // Before the model loads: a refused exposure should not take seconds to say so.
            try configuration.checkExposure()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        // Every line passes through the redaction point: no key, secret or authorization header reaches the log.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = configuration.logLevel
            return RedactingLogHandler(handler)
        }
        var logger = Logger(label: "steno")
        logger.logLevel = configuration.logLevel
        for name in ServerConfiguration.unknownVariables(in: settings) {
            logger.warning("ignoring unknown setting \(name)")
        }
        let served = configuration.models.map { "\($0.name)=\($0.directory.path)" }.joined(separator: ", ")
        logger.info(configuration.role.runsWorkers ? "loading the default model" : "reading the models' languages (an API node loads no weights)",
                    metadata: ["models": "\(served)", "default": "\(configuration.defaultModel ?? configuration.models[0].name)"])
        let transcriber = try WhisperTranscriber(configuration: configuration)
        let service = try buildApplication(configuration: configuration, transcriber: transcriber, logger: logger)
        let storage = try configuration.databaseURL.map { try PostgresURL($0).description } ?? configuration.dataDirectory.path
        logger.notice("steno starting", metadata: [
            "address": "\(configuration.host):\(configuration.port)", "role": "\(configuration.role.rawValue)",
            "node": "\(service.nodeID)", "storage": "\(storage)",
        ])
        try await service.app.runService()
    }
}

/// `steno settings`: the settings table as markdown, for docs/configuration.md (`make settings-table`).
struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings", abstract: "Print the settings of `steno serve` as the markdown table of docs/configuration.md.")

    func run() {
        print(ServerConfiguration.settingsMarkdown, terminator: "")
    }
}
