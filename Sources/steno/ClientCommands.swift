import ArgumentParser
import Foundation
import StenoEngine
import StenoServer
import StenoTranscribeCommand

/// `steno submit FILE [--wait]`
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Upload a recording; print its job id, or with --wait its transcript.")

    @OptionGroup var client: ClientOptions
    @Argument(help: "The recording (any format ffmpeg reads).") var file: String
    @Option(help: "A model the server serves, by name (its default when omitted; `/readyz` lists them).") var model: String?
    @Option(help: "Language code, e.g. en.") var language: String?
    @Option(help: "Text that conditions the first window (names, jargon).") var prompt: String?
    @Flag(help: "Add word timestamps.") var wordTimestamps = false
    @Flag(inversion: .prefixedNo, help: "Voice-activity detection: transcribe only speech (the server's default).") var vad = true
    @OptionGroup var speech: SpeechDetectionOptions
    @Option(help: "transcribe, or translate (to English; multilingual models only).") var task: WhisperTask?
    @Flag(help: "Detect the language of every 30 s window (code-switching; multilingual models only).") var multilingual = false
    @OptionGroup var speakerLabels: SpeakerLabelOptions
    @Flag(help: "Transcribe every audio channel on its own (segments carry their channel).") var multichannel = false
    @Option(help: "One sampling temperature (0-1; 0, the default, falls back to higher ones when a window fails).") var temperature: Double?
    @Option(help: "Beam width, 1 (greedy) to 16 (the server's default is 5).") var beam: Int?
    @Option(help: "Seconds until the job and its files are deleted.") var deleteAfter: Int?
    @Flag(help: "Wait for the transcript, with a progress bar on standard error.") var wait = false
    @Option(help: "With --wait: text, json, srt, vtt or rttm (speaker turns).") var format: String = "text"

    func validate() throws {
        guard ["text", "json", "srt", "vtt", "rttm"].contains(format) else { throw ValidationError("--format must be text, json, srt, vtt or rttm") }
        if let problem = speakerLabels.problem { throw ValidationError(problem) }
    }

    func run() async throws {
        let url = URL(fileURLWithPath: file)
        guard FileManager.default.isReadableFile(atPath: url.path) else { throw ValidationError("cannot read \(file)") }
        var fields: [String: String] = [:]
        if let model { fields["model"] = model }
        if let language { fields["language"] = language }
        if let temperature { fields["temperature"] = String(temperature) }
        if let beam { fields["beam_size"] = String(beam) }
        if let prompt { fields["prompt"] = prompt }
        if wordTimestamps { fields["word_timestamps"] = "true" }
        if vad { fields.merge(speech.formFields) { $1 } } else { fields["vad"] = "false" }
        if let task { fields["task"] = task.rawValue }
        if multilingual { fields["multilingual"] = "true" }
        fields.merge(speakerLabels.formFields) { $1 }
        if multichannel { fields["multichannel"] = "true" }
        if let deleteAfter { fields["delete_after_seconds"] = String(deleteAfter) }
        let api = try client.api
        let created = try await api.submit(file: url, fields: fields)
        guard wait else {
            print(created.jobId)
            return
        }
        FileHandle.standardError.write(Data("job \(created.jobId)\n".utf8))
        let progress = ProgressBar()
        while true {
            // Status polls are not retrievals: the JSON answer carries the result only once completed, and that
            // first completed answer is the retrieval, so the transcript is fetched in the asked format right then.
            let (data, _) = try await api.send("GET", "transcribe/\(created.jobId)", query: [URLQueryItem(name: "format", value: "json")])
            let status = try StenoClient.decoder.decode(Components.Schemas.JobStatus.self, from: data)
            progress.show(status)
            switch status.status {
            case .completed:
                progress.finish()
                switch format {
                case "json": FileHandle.standardOutput.write(data)
                case "text": print(status.result?.text ?? "")
                // Within the server's retrieval grace period (0 makes this answer 410: use json or text then).
                default: FileHandle.standardOutput.write(try await api.result(created.jobId, format: format))
                }
                return
            case .failed:
                progress.finish()
                throw ServerFailure(status: 200, code: status.error?.code ?? "failed", message: status.error?.message ?? "the job failed")
            case .cancelled:
                progress.finish()
                throw ValidationError("the job was cancelled")
            case .pending, .processing:
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

/// A one-line progress bar on standard error (redrawn in place on a terminal).
final class ProgressBar {
    private let terminal = isatty(STDERR_FILENO) == 1
    private var last = ""

    func show(_ status: Components.Schemas.JobStatus) {
        let width = 30
        let filled = Int((status.progress * Double(width)).rounded())
        var line = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
        line += String(format: "%3d%% %@", Int(status.progress * 100), status.status.rawValue)
        if let position = status.queuePosition { line += " (queue position \(position))" }
        guard line != last else { return }
        last = line
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    func finish() {
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// `steno status ID`
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print a job's status as JSON (a completed job's result counts as retrieved).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Job id.") var id: String

    func run() async throws {
        let (data, _) = try await client.api.send("GET", "transcribe/\(id)")
        FileHandle.standardOutput.write(data)
        print()
    }
}

/// `steno result ID [--format srt]`
struct ResultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "result", abstract: "Print a completed job's transcript.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Job id.") var id: String
    @Option(help: "text, json, srt, vtt or rttm (speaker turns).") var format: String = "text"

    func validate() throws {
        guard ["text", "json", "srt", "vtt", "rttm"].contains(format) else { throw ValidationError("--format must be text, json, srt, vtt or rttm") }
    }

    func run() async throws {
        FileHandle.standardOutput.write(try await client.api.result(id, format: format))
    }
}

/// `steno delete ID`
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Cancel a pending or running job, or delete a finished one with its files.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "Job id.") var id: String

    func run() async throws {
        _ = try await client.api.send("DELETE", "transcribe/\(id)")
        print("deleted \(id)")
    }
}

/// `steno list`
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs, newest first.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Only jobs in this state: pending, processing, completed, failed, cancelled.") var status: String?
    @Option(help: "Jobs per page.") var limit: Int = 50
    @Option(help: "Cursor from the previous page.") var cursor: String?

    func run() async throws {
        var query = [URLQueryItem(name: "limit", value: String(limit))]
        if let status { query.append(URLQueryItem(name: "status", value: status)) }
        if let cursor { query.append(URLQueryItem(name: "cursor", value: cursor)) }
        let (data, _) = try await client.api.send("GET", "transcribe", query: query)
        let page = try StenoClient.decoder.decode(Components.Schemas.JobList.self, from: data)
        for job in page.jobs {
            let created = ISO8601DateFormatter().string(from: job.createdAt)
            print("\(job.jobId)  \(job.status.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))  \(String(format: "%3d%%", Int(job.progress * 100)))  \(created)\(job.error.map { "  " + $0.code } ?? "")")
        }
        if let next = page.nextCursor { print("more: --cursor \(next)") }
    }
}
