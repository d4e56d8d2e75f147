import ArgumentParser
import StenoTranscribeCommand

/// `steno`: the server, its client commands, and offline transcription.
@main
struct Steno: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steno",
        abstract: "Self-hosted asynchronous speech-to-text.",
        subcommands: [
            ServeCommand.self, SubmitCommand.self, StatusCommand.self, ResultCommand.self, DeleteCommand.self,
            ListCommand.self, KeysCommand.self, TranscribeCommand.self, SettingsCommand.self,
        ]
    )
}
