import Foundation
import Hummingbird
import HummingbirdTesting
import StenoEngine
import StenoServer
import Testing

/// Recordings and the model the real-engine tests use: Debian's pocketsphinx-testdata and the model that
/// `scripts/install-model.sh` installs (both are set up by `make test`).
enum Fixtures {
    static let model = Repository.root.appendingPathComponent("models/tiny.en")
    static let vadModel = Repository.root.appendingPathComponent("models/silero-vad/silero_vad.safetensors")
    static let speakerModel = Repository.root.appendingPathComponent("models/speaker-encoder/ge2e.safetensors")
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

    func server(clock: any WallClock = SystemClock(), _ adjust: (inout ServerConfiguration) -> Void = { _ in }) throws -> RealServer {
        let directory = try TemporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.url
        configuration.modelDirectory = Fixtures.model
        configuration.vadModel = Fixtures.vadModel
        configuration.pollInterval = 0.05
        configuration.logLevel = .warning
        adjust(&configuration)
        let transcriber = try WhisperTranscriber(
            modelDirectory: configuration.modelDirectory, voiceActivityModel: Fixtures.vadModel, speakerModel: Fixtures.speakerModel,
            threads: nil, maxAudioSeconds: configuration.maxAudioSeconds)
        return RealServer(directory: directory, service: try buildApplication(configuration: configuration, transcriber: transcriber, clock: clock))
    }

    /// On a real socket: a recording is accepted before it is transcribed, completes with the right words,
    /// and its files go after the retrieval grace period; the id answers 410, then 404 after its deadline
    /// (time moved by the injected clock, not waited for).
    @Test func transcribesARealRecordingEndToEnd() async throws {
        let clock = ManualClock()
        let server = try server(clock: clock) { $0.retrievalGrace = 120 }
        try await server.service.app.test(.live) { client in
            let service = server.service
            let id = try await client.submit(try Data(contentsOf: Fixtures.recording("0920")), fields: ["word_timestamps": "true"])
            // The answer came before the transcription: the job is still waiting or running.
            let first = try #require(try await service.store.job(id: UUID(uuidString: id)!))
            #expect(first.state == .pending || first.state == .processing)

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
            let srt = try await client.execute(uri: "/transcribe/\(id)?format=srt", method: .get)
            #expect(String(buffer: srt.body).hasPrefix("1\n00:00:00,000 --> "))

            // Retrieval grace: the files stay, then go; the id answers 410, then 404 after its deadline.
            let files = [try #require(job.audioPath), try #require(job.resultPath)]
            clock.advance(by: 119)
            try await service.cleaner.sweep()
            #expect(files.allSatisfy(service.fileBlobs.exists))
            clock.advance(by: 1)
            try await service.cleaner.sweep()
            #expect(!files.contains(where: service.fileBlobs.exists))
            #expect(try FileManager.default.contentsOfDirectory(atPath: service.fileBlobs.audioDirectory.path).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: service.fileBlobs.resultsDirectory.path).isEmpty)
            #expect(try await client.execute(uri: "/transcribe/\(id)", method: .get).status == .gone)
            clock.advance(by: 24 * 3600)
            try await service.cleaner.sweep()
            #expect(try await client.execute(uri: "/transcribe/\(id)", method: .get).status == .notFound)
        }
    }

    /// Speaker labels through the API on a live socket: a conversation of two real voices (the LibriVox reader
    /// and Asterisk's English prompts, four turns half a second apart) gives two speakers, each word the
    /// speaker of its turn, speaker prefixes in the text and the subtitles, RTTM turns, and the speaker count in
    /// the webhook-facing row.
    @Test func twoSpeakersAreLabelledThroughTheAPI() async throws {
        let server = try server()
        let turns = [Fixtures.recording("0870"), URL(fileURLWithPath: "/usr/share/asterisk/sounds/en/vm-intro.wav"),
                     Fixtures.recording("0880"), URL(fileURLWithPath: "/usr/share/asterisk/sounds/en/agent-newlocation.wav")]
        let conversation = server.directory.url.appendingPathComponent("conversation.wav")
        var filters = "", inputs: [String] = []
        for (i, turn) in turns.enumerated() {
            inputs += ["-i", turn.path]
            filters += "[\(i)]aresample=16000,aformat=channel_layouts=mono,apad=pad_dur=0.5[t\(i)];"
        }
        filters += turns.indices.map { "[t\($0)]" }.joined() + "concat=n=\(turns.count):v=0:a=1"
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "quiet", "-y"] + inputs + ["-filter_complex", filters, "-ar", "16000", conversation.path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        // Where each turn lies: its decoded length plus the pause.
        var turnSpans: [(start: Double, end: Double, speaker: String)] = [], time = 0.0
        for (i, turn) in turns.enumerated() {
            let seconds = try AudioDecoder().decode(file: turn, limitSeconds: nil).duration
            turnSpans.append((time, time + seconds, i % 2 == 0 ? "SPEAKER_1" : "SPEAKER_2"))
            time += seconds + 0.5
        }
        let spans = turnSpans

        try await server.service.app.test(.live) { client in
            let id = try await client.submit(try Data(contentsOf: conversation), fields: ["speaker_labels": "true", "word_timestamps": "true"])
            let job = try await client.wait(for: id, in: [.completed, .failed], store: server.service.store, timeout: 300)
            #expect(job.state == .completed, "\(job.errorCode ?? "") \(job.errorMessage ?? "")")
            #expect(job.speakerCount == 2)
            let status = try await client.status(id)
            #expect(status.options.speakerLabels == true && status.options.multichannel == false)
            let result = try #require(status.result)
            #expect(result.speakers?.map(\.speaker) == ["SPEAKER_1", "SPEAKER_2"], "\(result.speakers ?? [])")
            let words = result.segments.flatMap { $0.words ?? [] }
            var right = 0, counted = 0
            for word in words {
                let middle = (word.start + word.end) / 2
                guard let span = spans.first(where: { middle >= $0.start && middle <= $0.end }) else { continue }
                counted += 1
                if word.speaker == span.speaker { right += 1 }
            }
            #expect(counted >= 30 && Double(right) >= 0.95 * Double(counted), "\(right) of \(counted)")
            #expect(result.text.hasPrefix("[SPEAKER_1] ") && result.text.contains("\n[SPEAKER_2] "), "\(result.text)")
            let vtt = String(buffer: try await client.execute(uri: "/transcribe/\(id)?format=vtt", method: .get).body)
            #expect(vtt.contains("<v SPEAKER_2>"))
            let rttm = String(buffer: try await client.execute(uri: "/transcribe/\(id)?format=rttm", method: .get).body)
            let lines = rttm.split(separator: "\n")
            #expect(lines.count == result.speakerTurns?.count && lines.count >= 4)
            #expect(lines.allSatisfy { $0.hasPrefix("SPEAKER \(id) 1 ") })
        }
    }

    /// Voice-activity detection through the API (on by default): a recording between two 20 s silences gives
    /// its words at their true times and one speech region around them; with `vad=false`, no regions.
    @Test func speechAfterALongSilenceKeepsItsTimes() async throws {
        let server = try server()
        let padded = server.directory.url.appendingPathComponent("padded.wav")
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ffmpeg.arguments = ["-v", "quiet", "-y", "-i", Fixtures.recording("0920").path,
                            "-af", "adelay=delays=20000:all=1,apad=pad_dur=20", padded.path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        let speech = 20.0...(20.0 + 6.05)
        try await server.service.app.test(.live) { client in
            let id = try await client.submit(try Data(contentsOf: padded), fields: ["word_timestamps": "true"])
            let job = try await client.wait(for: id, in: [.completed, .failed], store: server.service.store, timeout: 300)
            #expect(job.state == .completed, "\(job.errorCode ?? "") \(job.errorMessage ?? "")")
            let result = try #require(try await client.status(id).result)
            #expect(abs(result.duration - 46.05) < 0.1)
            #expect(Fixtures.recall(result.text, reference: try Fixtures.reference("0920")) >= 0.8, "\(result.text)")
            let regions = try #require(result.speechRegions)
            #expect(regions.count == 1 && regions[0].start >= 19.5 && regions[0].end <= 26.6, "\(regions)")
            let words = result.segments.flatMap { $0.words ?? [] }
            #expect(words.count >= 15)
            #expect(words.allSatisfy { $0.start >= speech.lowerBound - 0.5 && $0.end <= speech.upperBound + 0.5 }, "\(words.map(\.start))")

            let plain = try await client.submit(try Data(contentsOf: padded), fields: ["vad": "false"])
            _ = try await client.wait(for: plain, in: [.completed, .failed], store: server.service.store, timeout: 300)
            let unfiltered = try #require(try await client.status(plain).result)
            #expect(unfiltered.speechRegions == nil)
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

    /// While the only worker transcribes a long recording, HTTP answers at once (inference runs on a thread of
    /// its own); a DELETE then cancels the running job for good and the worker goes on with the next one.
    @Test func httpStaysResponsiveAndCancelStopsTheEngine() async throws {
        let server = try server()
        let long = server.directory.url.appendingPathComponent("long.wav")
        let sox = Process()
        sox.executableURL = URL(fileURLWithPath: "/usr/bin/sox")
        let clips = ["0870", "0880", "0890", "0920", "0930"].map { Fixtures.recording($0).path }
        sox.arguments = clips + clips + clips + clips + [long.path]
        try sox.run()
        sox.waitUntilExit()

        try await server.service.app.test(.live) { client in
            let service = server.service
            let id = try await client.submit(try Data(contentsOf: long))
            _ = try await client.wait(for: id, in: [.processing], store: service.store, timeout: 60)
            var slowest = 0.0
            for _ in 0..<20 {
                let start = Date()
                #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
                _ = try await client.execute(uri: "/transcribe/\(id)", method: .get)
                slowest = max(slowest, Date().timeIntervalSince(start))
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(slowest < 2, "slowest pair of requests: \(slowest) s")
            #expect(try await service.store.job(id: UUID(uuidString: id)!)?.state == .processing)

            #expect(try await client.execute(uri: "/transcribe/\(id)", method: .delete).status == .noContent)
            #expect(try await client.status(id).status == .cancelled)
            // The worker drops the cancelled job (no result is written, the state stays cancelled) and goes on.
            let next = try await client.submit(try Data(contentsOf: Fixtures.recording("0930")))
            let done = try await client.wait(for: next, in: [.completed, .failed], store: service.store, timeout: 120)
            #expect(done.state == .completed)
            #expect(try await client.status(id).status == .cancelled)
            #expect(try await service.store.job(id: UUID(uuidString: id)!)?.resultPath == nil)
        }
    }

    /// An API node's transcriber knows the model's languages without holding its weights; were it ever asked to
    /// transcribe, it would load them then.
    @Test func anAPINodeReadsTheLanguagesWithoutLoadingTheWeights() throws {
        var configuration = ServerConfiguration()
        configuration.modelDirectory = Fixtures.model
        configuration.vadModel = Fixtures.vadModel
        configuration.role = .api
        let transcriber = try WhisperTranscriber(configuration: configuration)
        #expect(!transcriber.isModelLoaded)
        #expect(transcriber.models.defaultEntry.languages == ["en"])
        let result = try transcriber.transcribe(
            file: Fixtures.recording("0920"), model: transcriber.models.defaultName, options: TranscriptionOptions(), progress: { _ in }, isCancelled: { false })
        #expect(transcriber.isModelLoaded)
        #expect(Fixtures.recall(result.text, reference: try Fixtures.reference("0920")) >= 0.8, "\(result.text)")
        configuration.role = .all
        #expect(try WhisperTranscriber(configuration: configuration).isModelLoaded)
    }

    static func le32(_ value: UInt32) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
}
