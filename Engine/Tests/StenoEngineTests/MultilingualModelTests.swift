import Foundation
import Testing
import StenoEngine

/// The multilingual Whisper base model (CTranslate2 float16, `vocabulary.json`, installed from PyPI by
/// `scripts/install-test-models.sh`): language detection and transcription in a language other than English,
/// on recorded English speech and on German and French speech from espeak-ng.
@Suite("multilingual Whisper base", .serialized)
struct MultilingualModelTests {
    static let engine: Result<WhisperEngine, any Error> = Result {
        try WhisperEngine(modelDirectory: try ModelVariantFixtures.multilingualBase.get(), threads: 2)
    }
    var engine: WhisperEngine { get throws { try Self.engine.get() } }

    static let german = "Guten Morgen. Heute ist ein schöner Tag, und wir gehen zusammen in den Park, um ein wenig "
        + "spazieren zu gehen. Die Kinder spielen auf der Wiese, während die Eltern auf einer Bank sitzen und sich unterhalten."
    static let french = "La France est un pays d'Europe de l'Ouest. Sa capitale est Paris. La langue officielle est le "
        + "français, et la monnaie est l'euro."

    @Test func loadsAsMultilingualBase() throws {
        let engine = try engine
        #expect(engine.isMultilingual)
        let architecture = engine.architecture
        #expect(architecture.melBands == 80 && architecture.width == 512 && architecture.heads == 8)
        #expect(architecture.encoderLayers == 6 && architecture.decoderLayers == 6)
        #expect(architecture.vocabularySize == 51865)
        #expect(engine.supportedLanguages.count == 99)
        #expect(engine.supportedLanguages.first == "en")
        #expect(Set(["de", "fr", "es", "zh", "ja"]).isSubset(of: Set(engine.supportedLanguages)))
        // The same list read without loading the weights (what an API node does).
        #expect(try WhisperEngine.supportedLanguages(modelDirectory: try ModelVariantFixtures.multilingualBase.get()) == engine.supportedLanguages)
    }

    @Test func detectsEnglishInARecording() throws {
        let samples = try AudioDecoder().decode(file: ModelFixture.librivox.appendingPathComponent("sense_and_sensibility_01_austen_64kb-0870.wav"))
        let result = try engine.transcribe(samples: samples)
        print("LibriVox: detected \(result.language) p=\(result.languageProbability): \(result.text)")
        #expect(result.language == "en")
        #expect(result.languageProbability > 0.5, "p(en) = \(result.languageProbability)")
        let reference = "john dashwood had then leisure to consider how much there might be prudently in his power to do for them"
        let wer = ModelFixture.wordErrorRate(reference: reference, hypothesis: result.text)
        #expect(wer < 0.15, "WER \(wer): \(result.text)")
    }

    @Test(arguments: [("de", german), ("fr", french)])
    func detectsTheLanguageOfSyntheticSpeech(language: String, text: String) throws {
        let samples = try ModelVariantFixtures.spoken(text, voice: language)
        let result = try engine.transcribe(samples: samples)
        print("espeak-ng \(language): detected \(result.language) p=\(result.languageProbability): \(result.text)")
        #expect(result.language == language, "detected \(result.language) (\(result.languageProbability)): \(result.text)")
        #expect(result.languageProbability > 0.5, "p(\(language)) = \(result.languageProbability)")
        // espeak-ng is hard to follow even for people, so no WER bound: what counts is that the text is in the
        // language spoken, with many of its words (faster-whisper with this model finds 11 of the 19 French ones).
        let spoken = Set(ModelFixture.words(text)), heard = Set(ModelFixture.words(result.text))
        let recall = Double(spoken.intersection(heard).count) / Double(spoken.count)
        #expect(recall >= 0.4, "\(Int(recall * 100)) % of the words: \(result.text)")
    }

    @Test func transcribesInTheLanguageAskedFor() throws {
        let samples = try ModelVariantFixtures.spoken(Self.german, voice: "de")
        let result = try engine.transcribe(samples: samples, options: TranscriptionOptions(language: "de"))
        #expect(result.language == "de" && result.languageProbability == 1)
        let words = Set(ModelFixture.words(result.text))
        let expected: Set = ["guten", "heute", "ist", "ein", "tag", "und", "wir", "park", "auf", "der", "wiese", "bank"]
        #expect(expected.intersection(words).count >= 9, "\(result.text)")
        #expect(result.segments.allSatisfy { $0.end <= result.duration + 0.5 })
    }

    @Test func rejectsAnUnknownLanguageCode() throws {
        do {
            _ = try engine.transcribe(samples: [Float](repeating: 0, count: 16000), options: TranscriptionOptions(language: "xx"))
            Issue.record("language 'xx' accepted")
        } catch let error as EngineError {
            #expect(error.code == "unsupported_language")
        }
    }
}
