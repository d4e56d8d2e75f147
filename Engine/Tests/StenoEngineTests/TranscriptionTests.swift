import Foundation
import Testing
import StenoEngine

/// End-to-end transcription with the real tiny.en model on real recorded speech (Debian's pocketsphinx-testdata).
/// Loaded once for the whole suite: loading converts ~40 M weights.
@Suite("transcription with the real model", .serialized)
struct TranscriptionTests {
    static let engine: Result<WhisperEngine, any Error> = Result { try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2) }
    var engine: WhisperEngine { get throws { try Self.engine.get() } }

    func samples(_ name: String) throws -> [Float] {
        try AudioDecoder().decode(file: ModelFixture.librivox.appendingPathComponent(name + ".wav"))
    }

    @Test func transcribesARealRecording() throws {
        let result = try engine.transcribe(samples: try samples("sense_and_sensibility_01_austen_64kb-0870"))
        #expect(result.text.hasSuffix("John Dashwood had then leisure to consider how much there might be prudently in his power to do for them."),
                "\(result.text)")
        #expect(result.language == "en")
        #expect(abs(result.duration - 7.10) < 0.01)
        #expect(!result.segments.isEmpty)
        for segment in result.segments {
            #expect(segment.start >= 0 && segment.end <= result.duration + 0.5 && segment.start <= segment.end)
            #expect(segment.avgLogprob < 0 && segment.avgLogprob > -1.5)
            #expect(segment.noSpeechProb >= 0 && segment.noSpeechProb < 0.5)
        }
    }

    @Test func allLibrivoxClipsAreAccurate() throws {
        let references = try ModelFixture.librivoxTranscripts()
        var errors = 0.0, words = 0.0
        for (id, reference) in references.sorted(by: { $0.key < $1.key }) {
            let result = try engine.transcribe(samples: try samples(id))
            let count = Double(ModelFixture.words(reference).count)
            errors += ModelFixture.wordErrorRate(reference: reference, hypothesis: result.text) * count
            words += count
        }
        // tiny.en scores ~5–6 % on LibriSpeech; these five clips are read clearly.
        #expect(errors / words < 0.10, "WER \(errors / words)")
    }

    @Test func greedyDecodingWorksToo() throws {
        let options = TranscriptionOptions(beamSize: 1)
        let result = try engine.transcribe(samples: try samples("sense_and_sensibility_01_austen_64kb-0890"), options: options)
        let reference = "unless to be rather cold hearted and rather selfish is to be ill disposed"
        #expect(ModelFixture.wordErrorRate(reference: reference, hypothesis: result.text) < 0.15, "\(result.text)")
    }

    @Test func longFormSeeksAcrossWindowsWithWordTimestamps() throws {
        // The five clips, twice over, with a second of silence after each: about 60 s, so at least two windows.
        let once = try ModelFixture.librivoxTranscripts().sorted { $0.key < $1.key }
        let references = once + once
        var audio: [Float] = []
        for (id, _) in references {
            audio += try samples(id)
            audio += [Float](repeating: 0, count: 16000)
        }
        #expect(audio.count > 16000 * 55)
        let progress = ProgressLog()
        let result = try engine.transcribe(
            samples: audio, options: TranscriptionOptions(wordTimestamps: true), progress: { progress.append($0) })
        let reference = references.map(\.value).joined(separator: " ")
        let wer = ModelFixture.wordErrorRate(reference: reference, hypothesis: result.text)
        #expect(wer < 0.12, "WER \(wer): \(result.text)")
        // Segments cover the whole recording, in order, including after the first 30 s window.
        #expect(result.segments.count >= 8)
        #expect(result.segments.last!.end > 50)
        for (a, b) in zip(result.segments, result.segments.dropFirst()) { #expect(a.start <= b.start) }
        // Word timestamps: inside their segment (with rounding), ordered, probabilities in range.
        let words = result.segments.flatMap { $0.words ?? [] }
        #expect(words.count >= ModelFixture.words(reference).count - 6)
        for segment in result.segments {
            for word in segment.words ?? [] {
                #expect(word.start >= segment.start - 0.01 && word.end <= segment.end + 0.01)
                #expect(word.probability >= 0 && word.probability <= 1)
            }
        }
        for (a, b) in zip(words, words.dropFirst()) { #expect(a.start <= b.start + 0.01) }
        // The last clip's words come at the end of the audio, not at 0.
        let last = words.last!
        #expect(last.end > result.duration - 6, "last word ends at \(last.end) of \(result.duration)")
        // Progress rises to 1.
        let values = progress.values
        #expect(values.count >= 2)
        #expect(values == values.sorted())
        #expect(values.last == 1)
    }

    @Test func englishOnlyModelRejectsOtherLanguages() throws {
        do {
            _ = try engine.transcribe(samples: [Float](repeating: 0, count: 16000), options: TranscriptionOptions(language: "de"))
            Issue.record("German accepted by an English-only model")
        } catch let error as EngineError {
            #expect(error.code == "unsupported_language")
            #expect("\(error)".contains("English-only"))
        }
        #expect(try engine.supportedLanguages == ["en"])
        #expect(try WhisperEngine.supportedLanguages(modelDirectory: ModelFixture.tinyEnglish) == ["en"])
        #expect(throws: EngineError.self) {
            try WhisperEngine.supportedLanguages(modelDirectory: URL(fileURLWithPath: "/nonexistent/model"))
        }
    }

    @Test func cancellationStopsBetweenWindows() throws {
        let audio = [Float](repeating: 0, count: 16000 * 65)
        #expect(throws: EngineError.cancelled) {
            try engine.transcribe(samples: audio, isCancelled: { true })
        }
    }

    @Test func silenceIsFlaggedAsNoSpeech() throws {
        // Whisper (and faster-whisper, checked on the same model) may still emit a filler word on pure silence;
        // what must hold is that the segment is marked as probably not speech.
        let result = try engine.transcribe(samples: [Float](repeating: 0, count: 16000 * 5))
        for segment in result.segments { #expect(segment.noSpeechProb > 0.6) }
        #expect(throws: EngineError.emptyAudio) { try engine.transcribe(samples: []) }
    }
}

/// Collects progress reports from the engine's thread.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Double] = []
    func append(_ value: Double) { lock.lock(); storage.append(value); lock.unlock() }
    var values: [Double] { lock.lock(); defer { lock.unlock() }; return storage }
}
