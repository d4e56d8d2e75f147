import Foundation
import Hummingbird
import HummingbirdTesting
import StenoServer
import Testing

/// Recordings and the model the real-engine tests use: Debian's pocketsphinx-testdata and the model that
/// `scripts/install-model.sh` installs (both are set up by `make test`).
enum Fixtures {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let model = repository.appendingPathComponent("models/tiny.en")
    static let librivox = URL(fileURLWithPath: "/usr/share/pocketsphinx/test/data/librivox")

    static func recording(_ number: String) -> URL {
        librivox.appendingPathComponent("sense_and_sensibility_01_austen_64kb-\(number).wav")
    }

    /// The reference transcript of a recording, from the `transcription` file beside it.
    static func reference(_ number: String) throws -> String {
        let lines = try String(contentsOf: librivox.appendingPathComponent("transcription"), encoding: .utf8).split(separator: "\n")
        let line = try #require(lines.first { $0.contains("-\(number))") })
        return line.replacingOccurrences(of: "<s>", with: "").replacingOccurrences(of: "</s>", with: "")
            .components(separatedBy: "(").first!.trimmingCharacters(in: .whitespaces)
    }

    static func words(_ text: String) -> [String] {
        text.lowercased().components(separatedBy: CharacterSet.letters.inverted).filter { !$0.isEmpty }
    }

    /// The fraction of the reference's words found in the hypothesis (order-insensitive recall).
    static func recall(_ hypothesis: String, reference: String) -> Double {
        var remaining = words(hypothesis)
        let expected = words(reference)
        var found = 0
        for word in expected {
            if let index = remaining.firstIndex(of: word) { remaining.remove(at: index); found += 1 }
        }
        return Double(found) / Double(max(1, expected.count))
    }
}

/// The service with the real Whisper engine and ffmpeg: real recordings, and inputs that are not recordings.
@Suite(.serialized) struct RealEngineTests {
    /// The data directory lives as long as the server that uses it.
    struct RealServer {
        let directory: TemporaryDirectory
        let service: StenoService
    }

    func server(_ adjust: (inout ServerConfiguration) -> Void = { _ in }) throws -> RealServer {
        let directory = try TemporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.url
        configuration.modelDirectory = Fixtures.model
        configuration.pollInterval = 0.05
        configuration.logLevel = .warning
        adjust(&configuration)
        let transcriber = try WhisperTranscriber(
            modelDirectory: configuration.modelDirectory, threads: nil, maxAudioSeconds: configuration.maxAudioSeconds)
        return RealServer(directory: directory, service: try buildApplication(configuration: configuration, transcriber: transcriber))
    }

    @Test func transcribesARealRecording() async throws {
        let server = try server { $0.retrievalGrace = 0 }
        try await server.service.app.test(.router) { client in
            let service = server.service
            let id = try await client.submit(try Data(contentsOf: Fixtures.recording("0920")), fields: ["word_timestamps": "true"])
            let job = try await client.wait(for: id, in: [.completed, .failed], store: service.store, timeout: 300)
            #expect(job.state == .completed, "\(job.errorCode ?? "") \(job.errorMessage ?? "")")
            let status = try await client.status(id)
            let result = try #require(status.result)
            #expect(Fixtures.recall(result.text, reference: try Fixtures.reference("0920")) >= 0.8, "\(result.text)")
            #expect(abs(result.duration - 6.05) < 0.1)
            #expect(result.language == "en")
            let words = result.segments.flatMap { $0.words ?? [] }
            #expect(words.count >= 15)
            #expect(zip(words, words.dropFirst()).allSatisfy { $0.start <= $1.start })
            // Grace 0: the files went with the first retrieval.
            #expect(try FileManager.default.contentsOfDirectory(atPath: service.blobs.audioDirectory.path).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: service.blobs.resultsDirectory.path).isEmpty)
            #expect(try await client.execute(uri: "/transcribe/\(id)", method: .get).status == .gone)
        }
    }

    @Test func inputsThatAreNotRecordingsFailWithACode() async throws {
        let server = try server { $0.maxAudioSeconds = 5 }
        let directory = server.directory
        // A truncated mp3: its first 300 bytes. A 0-second WAV: a header without samples.
        let mp3 = directory.url.appendingPathComponent("full.mp3")
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "quiet", "-y", "-i", Fixtures.recording("0880").path, mp3.path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        let truncatedMP3 = try Data(contentsOf: mp3).prefix(300)
        var emptyWAV = Data("RIFF".utf8) + Self.le32(36) + Data("WAVEfmt ".utf8) + Self.le32(16)
        emptyWAV += Data([1, 0, 1, 0]) + Self.le32(16000) + Self.le32(32000) + Data([2, 0, 16, 0])
        emptyWAV += Data("data".utf8) + Self.le32(0)
        let zeroSecondWAV = emptyWAV

        try await server.service.app.test(.router) { client in
            let service = server.service
            let cases: [(String, Data, Set<String>)] = [
                ("text file", Data("This is a shopping list, not a recording.\n".utf8), ["undecodable_audio"]),
                ("truncated mp3", Data(truncatedMP3), ["undecodable_audio", "empty_audio"]),
                ("0-second wav", zeroSecondWAV, ["empty_audio", "undecodable_audio"]),
                ("too long", try Data(contentsOf: Fixtures.recording("0870")), ["audio_too_long"]),
            ]
            for (name, data, codes) in cases {
                let id = try await client.submit(data)
                let job = try await client.wait(for: id, in: [.completed, .failed], store: service.store, timeout: 120)
                #expect(job.state == .failed, "\(name)")
                #expect(codes.contains(job.errorCode ?? ""), "\(name): \(job.errorCode ?? "nil") \(job.errorMessage ?? "")")
                #expect(job.attempts == 1, "\(name) was retried")
            }
            // And the server still transcribes.
            let ok = try await client.submit(try Data(contentsOf: Fixtures.recording("0930")))
            #expect(try await client.wait(for: ok, in: [.completed, .failed], store: service.store, timeout: 300).state == .completed)
        }
    }

    static func le32(_ value: UInt32) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
}
