import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import StenoEngine
import StenoServer
import Testing

/// The checkout the tests run from.
enum Repository {
    /// The first folder above this file that holds the package's Package.swift.
    static let root: URL = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path), folder.path != "/" {
            folder = folder.deletingLastPathComponent()
        }
        return folder
    }()
}

/// A directory removed when the value goes away.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("steno-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A clock the test moves by hand.
final class ManualClock: WallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = start }

    func now() -> Date { lock.withLock { current } }
    func advance(by seconds: TimeInterval) { lock.withLock { current += seconds } }
}

/// A test double for the engine that acts on what the uploaded file says:
/// `GARBAGE…` is undecodable, `SLOW…` takes 50 windows of 40 ms and `HANG…` 750 (30 s: long enough to be
/// cancelled on a loaded machine), both honouring cancellation, `FLAKY…` fails
/// transiently on its first attempt, anything else is transcribed at once as "transcript of N bytes".
final class ScriptedTranscriber: Transcriber, @unchecked Sendable {
    let models: ModelCatalog
    private let lock = NSLock()

    /// One model: `["en"]` as an English-only model; a multilingual model's list for the multilingual options.
    init(languages: Set<String> = ["en"]) {
        models = .single(languages: languages)
    }

    init(models: ModelCatalog) {
        self.models = models
    }
    private var calls: [String: Int] = [:]
    private(set) var cancelledRuns = 0
    private var lastOptions: TranscriptionOptions?
    private var lastModel: String?

    /// The engine options of the latest transcription.
    var latestOptions: TranscriptionOptions? { lock.withLock { lastOptions } }
    /// The model the latest transcription ran on.
    var latestModel: String? { lock.withLock { lastModel } }

    func calls(for file: URL) -> Int { lock.withLock { calls[file.lastPathComponent] ?? 0 } }

    func transcribe(
        file: URL, model: String, options: TranscriptionOptions, progress: @escaping TranscriptionProgress,
        isCancelled: @escaping CancellationCheck, text windowText: @escaping TranscriptionText
    ) throws -> TranscriptionResult {
        let data = try Data(contentsOf: file)
        let call = lock.withLock { () -> Int in
            lastOptions = options
            lastModel = model
            calls[file.lastPathComponent, default: 0] += 1
            return calls[file.lastPathComponent]!
        }
        let head = String(decoding: data.prefix(8), as: UTF8.self)
        if head.hasPrefix("GARBAGE") { throw EngineError.undecodableAudio("no audio stream") }
        if head.hasPrefix("FLAKY"), call == 1 { throw CocoaError(.fileReadUnknown) }
        if head.hasPrefix("SLOW") || head.hasPrefix("HANG") {
            let windows = head.hasPrefix("HANG") ? 750 : 50
            for window in 0..<windows {
                if isCancelled() {
                    lock.withLock { cancelledRuns += 1 }
                    throw EngineError.cancelled
                }
                Thread.sleep(forTimeInterval: 0.04)
                progress(Double(window + 1) / Double(windows))
                if window % 10 == 9 { windowText(" part \(window / 10 + 1).") }
            }
        }
        let text = "transcript of \(data.count) bytes"
        // A window decoded to nothing has a log-probability of -infinity, which JSON cannot carry as a number.
        let logprob = head.hasPrefix("SILENT") ? -Double.infinity : -0.2
        let words = options.wordTimestamps ? [TranscribedWord(start: 0, end: 0.5, word: " transcript", probability: 0.9)] : nil
        return TranscriptionResult(
            text: text, language: options.language ?? "en", languageProbability: 1, duration: 2.5,
            segments: [TranscribedSegment(id: 0, start: 0, end: 2.5, text: " " + text, tokens: [1, 2], temperature: 0,
                                          avgLogprob: logprob, compressionRatio: 1.1, noSpeechProb: 0.01, words: words,
                                          language: options.language ?? "en")])
    }
}

/// A multipart/form-data body.
struct MultipartForm {
    let boundary = "steno-test-\(UUID().uuidString.prefix(8))"
    var parts: [(name: String, filename: String?, data: Data)] = []

    init(file: Data? = nil, fields: [String: String] = [:]) {
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { parts.append((name, nil, Data(value.utf8))) }
        if let file { parts.append(("file", "audio.wav", file)) }
    }

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    var body: ByteBuffer {
        var buffer = ByteBuffer()
        for part in parts {
            buffer.writeString("--\(boundary)\r\n")
            if let filename = part.filename {
                buffer.writeString("Content-Disposition: form-data; name=\"\(part.name)\"; filename=\"\(filename)\"\r\n")
                buffer.writeString("Content-Type: application/octet-stream\r\n\r\n")
            } else {
                buffer.writeString("Content-Disposition: form-data; name=\"\(part.name)\"\r\n\r\n")
            }
            buffer.writeBytes(part.data)
            buffer.writeString("\r\n")
        }
        buffer.writeString("--\(boundary)--\r\n")
        return buffer
    }
}

/// JSON of the API, as the generated types expect it.
enum TestJSON {
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = formatter.date(from: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not ISO 8601: \(text)"))
            }
            return date
        }
        return decoder
    }()

    static func decode<T: Decodable>(_ type: T.Type, _ buffer: ByteBuffer) throws -> T {
        try decoder.decode(type, from: Data(buffer.readableBytesView))
    }
}

/// A server built the way `steno serve` builds it, on a temporary data directory.
extension ServerConfiguration {
    /// The settings of in-process test servers: quick polls and heartbeats, retries at once, no periodic
    /// cleanup (tests run the cleaner themselves), warnings only in the log.
    static func testing(dataDirectory: URL, databaseURL: String? = nil) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = dataDirectory
        configuration.databaseURL = databaseURL
        configuration.pollInterval = 0.05
        configuration.heartbeatInterval = 0.05
        configuration.retryBackoff = 0
        configuration.cleanupInterval = 3600
        configuration.logLevel = .warning
        return configuration
    }
}

struct TestServer {
    let directory: TemporaryDirectory
    let service: StenoService
    let transcriber: ScriptedTranscriber
    let clock: ManualClock

    init(
        clock: ManualClock = ManualClock(),
        languages: Set<String> = ["en"],
        models: ModelCatalog? = nil,
        _ adjust: (inout ServerConfiguration) -> Void = { _ in }
    ) throws {
        directory = try TemporaryDirectory()
        var configuration = ServerConfiguration.testing(dataDirectory: directory.url)
        adjust(&configuration)
        transcriber = models.map { ScriptedTranscriber(models: $0) } ?? ScriptedTranscriber(languages: languages)
        self.clock = clock
        service = try buildApplication(configuration: configuration, transcriber: transcriber, clock: clock)
    }
}

extension TestClientProtocol {
    /// Uploads a form; returns the response.
    func upload(_ form: MultipartForm) async throws -> TestResponse {
        try await execute(uri: "/transcribe", method: .post, headers: [.contentType: form.contentType], body: form.body)
    }

    /// Uploads and expects 202; returns the job id.
    func submit(_ data: Data, fields: [String: String] = [:]) async throws -> String {
        let response = try await upload(MultipartForm(file: data, fields: fields))
        #expect(response.status == .accepted, "\(String(buffer: response.body))")
        return try TestJSON.decode(Components.Schemas.JobCreated.self, response.body).jobId
    }

    func status(_ id: String) async throws -> Components.Schemas.JobStatus {
        let response = try await execute(uri: "/transcribe/\(id)", method: .get)
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        return try TestJSON.decode(Components.Schemas.JobStatus.self, response.body)
    }

    /// Polls the store (not the API, which would count as a retrieval) until the job is in one of `states`.
    func wait(for id: String, in states: Set<JobState>, store: any JobStore, timeout: Double = 20) async throws -> Job {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let job = try await store.job(id: UUID(uuidString: id)!), states.contains(job.state) { return job }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("job \(id) never reached \(states)")
        throw CancellationError()
    }

    func errorCode(_ response: TestResponse) throws -> String {
        try TestJSON.decode(Components.Schemas.ErrorResponse.self, response.body).error.code
    }
}
