import Foundation
import Testing
import StenoEngine

/// Transcription with voice-activity detection, with the real tiny.en model, the real Silero VAD and real speech:
/// silence and noise give no words, and speech after a long silence keeps its true times.
@Suite("transcription with voice-activity detection", .serialized)
struct VoiceActivityTranscriptionTests {
    static let engine: Result<WhisperEngine, any Error> = Result {
        try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2, voiceActivityModel: SileroVADTests.model)
    }
    var engine: WhisperEngine { get throws { try Self.engine.get() } }
    static let rate = 16_000
    static let withVAD = TranscriptionOptions(vad: .fasterWhisper)

    func recording() throws -> [Float] {
        try AudioDecoder().decode(file: ModelFixture.librivox.appendingPathComponent("sense_and_sensibility_01_austen_64kb-0870.wav"))
    }

    @Test func thirtySecondsOfSilenceGiveNoWords() throws {
        let silence = [Float](repeating: 0, count: 30 * Self.rate)
        let result = try engine.transcribe(samples: silence, options: Self.withVAD)
        #expect(result.segments.isEmpty, "\(result.text)")
        #expect(result.text.isEmpty)
        #expect(result.speechRegions == [])
        #expect(abs(result.duration - 30) < 0.001)
    }

    @Test func thirtySecondsOfNoiseGiveNoWords() throws {
        // White noise at about −20 dBFS, and the hum of a mains-powered room under it.
        var random = SystemRandomNumberGenerator()
        let noise = (0..<30 * Self.rate).map { i in
            Float.random(in: -0.17...0.17, using: &random) + 0.05 * Float(sin(2 * Double.pi * 50 * Double(i) / Double(Self.rate)))
        }
        let result = try engine.transcribe(samples: noise, options: Self.withVAD)
        #expect(result.segments.isEmpty, "\(result.text)")
    }

    @Test func speechBetweenTwoLongSilencesKeepsItsTimes() throws {
        let speech = try recording()
        let silence = [Float](repeating: 0, count: 30 * Self.rate)
        let speechStart = 30.0, speechEnd = 30.0 + Double(speech.count) / Double(Self.rate)
        var options = Self.withVAD
        options.wordTimestamps = true
        let result = try engine.transcribe(samples: silence + speech + silence, options: options)
        let alone = try engine.transcribe(samples: speech, options: TranscriptionOptions(wordTimestamps: true))

        #expect(result.text == alone.text, "with silences: \(result.text)\nalone: \(alone.text)")
        #expect(abs(result.duration - (speechEnd + 30)) < 0.001)
        // One region around the speech, its padding (0.4 s) at most outside it.
        let regions = try #require(result.speechRegions)
        #expect(regions.count == 1)
        #expect(regions.allSatisfy { $0.start >= speechStart - 0.45 && $0.end <= speechEnd + 0.45 }, "\(regions)")
        let words = result.segments.flatMap { $0.words ?? [] }
        #expect(!words.isEmpty)
        for word in words {
            #expect(word.start >= speechStart - 0.45 && word.end <= speechEnd + 0.45, "\(word)")
        }
        // The same words at the same moments of the speech as without the silences (to Whisper's 20 ms steps,
        // with a little slack for the different windowing).
        let aloneWords = alone.segments.flatMap { $0.words ?? [] }
        #expect(words.count == aloneWords.count)
        for (word, reference) in zip(words, aloneWords) {
            #expect(word.word == reference.word)
            #expect(abs(word.start - speechStart - reference.start) < 0.25, "\(word) against \(reference)")
        }
        for segment in result.segments {
            #expect(segment.start >= speechStart - 0.45 && segment.end <= speechEnd + 0.45, "\(segment.start)–\(segment.end)")
        }
    }

    @Test func timesAcrossSeveralRegionsMapBackToEachRegion() throws {
        // Two utterances 10 s apart, the whole recording 40 s: two regions, each word inside its own.
        let speech = try recording()
        let seconds = Double(speech.count) / Double(Self.rate)
        let audio = [Float](repeating: 0, count: 5 * Self.rate) + speech + [Float](repeating: 0, count: 10 * Self.rate) + speech
            + [Float](repeating: 0, count: 5 * Self.rate)
        var options = Self.withVAD
        options.wordTimestamps = true
        let result = try engine.transcribe(samples: audio, options: options)
        let regions = try #require(result.speechRegions)
        #expect(regions.count == 2, "\(regions)")
        let first = 5.0...(5 + seconds), second = (15 + seconds)...(15 + 2 * seconds)
        let words = result.segments.flatMap { $0.words ?? [] }
        #expect(words.contains { first.contains($0.start) } && words.contains { second.contains($0.start) })
        for word in words {
            let padded = { (range: ClosedRange<Double>) in (range.lowerBound - 0.45)...(range.upperBound + 0.45) }
            #expect(padded(first).contains(word.start) && padded(first).contains(word.end)
                    || padded(second).contains(word.start) && padded(second).contains(word.end), "\(word)")
        }
    }

    @Test func detectionIsAnOptionThatNeedsTheModel() throws {
        let plain = try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2)
        #expect(throws: EngineError.self) { try plain.transcribe(samples: try recording(), options: Self.withVAD) }
        var bad = SpeechDetection.fasterWhisper
        bad.threshold = 1.5
        #expect(throws: EngineError.invalidOption(bad.problem!)) {
            try engine.transcribe(samples: try recording(), options: TranscriptionOptions(vad: bad))
        }
    }

    @Test func aMissingVADFileIsNamedAtLoad() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/silero_vad.safetensors")
        do {
            _ = try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2, voiceActivityModel: missing)
            Issue.record("an engine loaded without its VAD file")
        } catch let EngineError.invalidModel(file, problem) {
            #expect(file == missing.path)
            #expect(problem.contains("Silero VAD") && problem.contains("--vad-model"), "\(problem)")
        }
    }

    @Test func detectionParametersSurviveJSON() throws {
        var detection = SpeechDetection.fasterWhisper
        detection.negativeThreshold = 0.2
        let decoded = try JSONDecoder().decode(SpeechDetection.self, from: JSONEncoder().encode(detection))
        #expect(decoded == detection)
        detection.maxSpeechSeconds = 12
        #expect(try JSONDecoder().decode(SpeechDetection.self, from: JSONEncoder().encode(detection)) == detection)
        #expect(try JSONDecoder().decode(SpeechDetection.self, from: Data("{}".utf8)) == SpeechDetection())
    }
}

/// The way back from the joined speech to the recording, on made-up regions (16 000 samples a second).
@Suite struct SpeechTimelineTests {
    // Speech 1–3 s and 10–12 s of the recording: joined, 0–2 s and 2–4 s.
    let timeline = SpeechTimeline(regions: [SpeechRegion(start: 16_000, end: 48_000), SpeechRegion(start: 160_000, end: 192_000)])

    @Test func joinedSamplesAreTheRegionsInOrder() {
        let samples = (0..<200_000).map(Float.init)
        let joined = samples.withUnsafeBufferPointer { timeline.joinedSamples(of: $0) }
        #expect(timeline.joinedSampleCount == 64_000 && joined.count == 64_000)
        #expect(joined[0] == 16_000 && joined[31_999] == 47_999 && joined[32_000] == 160_000 && joined[63_999] == 191_999)
    }

    @Test func timesGetTheSilenceBeforeTheirRegion() {
        #expect(timeline.originalTime(0) == 1)
        #expect(timeline.originalTime(1.5) == 2.5)
        #expect(timeline.originalTime(2.5) == 10.5)
        // Exactly on the first region's end: the end of the first region, or the start of the second.
        #expect(timeline.originalTime(2, isEnd: true) == 3)
        #expect(timeline.originalTime(2) == 10)
        // Past the end: the last region's shift.
        #expect(timeline.originalTime(5) == 13)
    }

    @Test func aWordIsPlacedByItsMiddle() {
        // A word from 1.9 s to 2.3 s of the joined audio has its middle in the second region: both ends move by 8 s.
        let word = TranscribedWord(start: 1.9, end: 2.3, word: " word", probability: 0.9)
        let segment = TranscribedSegment(id: 0, start: 1.5, end: 2.3, text: " word", tokens: [], temperature: 0,
                                         avgLogprob: -0.2, compressionRatio: 1, noSpeechProb: 0, words: [word])
        let restored = timeline.restore([segment])[0]
        #expect(restored.words?[0].start == 9.9 && restored.words?[0].end == 10.3)
        #expect(restored.start == 9.9 && restored.end == 10.3)
        var plain = segment
        plain.words = nil
        let restoredPlain = timeline.restore([plain])[0]
        #expect(restoredPlain.start == 2.5 && restoredPlain.end == 10.3)
    }
}
