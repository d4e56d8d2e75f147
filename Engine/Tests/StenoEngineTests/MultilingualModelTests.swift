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

    // MARK: Code-switching and translation, on real speech

    /// Three Spanish phone-system prompts of Debian's asterisk-core-sounds-es-wav (one speaker, 45 s), with the
    /// package's transcripts (core-sounds-es.txt.gz).
    static let spanishPrompts: [(name: String, text: String)] = [
        ("conf-adminmenu-18", "Por favor presione uno para activar o desactivar el modo mudo personal, dos para bloquear o "
            + "desbloquear la conferencia, tres para expulsar al último usuario, cuatro o seis para decrementar o incrementar "
            + "el volumen de la conferencia, cinco para extender la conferencia, siete o nueve para decrementar o incrementar "
            + "su volumen, u ocho para mas opciones."),
        ("agent-alreadyon", "Ese agente ya ha sido autenticado. Por favor ingrese su numero de agente seguido por la tecla de numero."),
        ("conf-kicked", "Ha sido expulsado por el sistema de esta conferencia."),
    ]
    /// The same, in English: our translation, the reference the engine's is checked against word by word.
    static let spanishInEnglish = "Please press one to turn personal mute mode on or off, two to lock or unlock the conference, "
        + "three to kick out the last user, four or six to decrease or increase the conference volume, five to extend the "
        + "conference, seven or nine to decrease or increase your volume, or eight for more options. That agent has already "
        + "been authenticated. Please enter your agent number followed by the pound key. You have been kicked out of this "
        + "conference by the system."

    func spanishSpeech() throws -> [Float] {
        let directory = URL(fileURLWithPath: "/usr/share/asterisk/sounds/es_MX_f_Allison")
        return try Self.spanishPrompts.flatMap { try AudioDecoder().decode(file: directory.appendingPathComponent($0.name + ".wav")) }
    }

    /// The five LibriVox clips (25 s of English), a second of silence, then the Spanish prompts.
    func englishThenSpanish() throws -> (samples: [Float], switchAt: Double) {
        let english = try ["0870", "0880", "0890", "0920", "0930"].flatMap {
            try AudioDecoder().decode(file: ModelFixture.librivox.appendingPathComponent("sense_and_sensibility_01_austen_64kb-\($0).wav"))
        }
        return (english + [Float](repeating: 0, count: 16_000) + (try spanishSpeech()), Double(english.count) / 16_000)
    }

    /// Words without accents, so that "numero" and "número" (the package writes no accents) are the same word.
    static func plainWords(_ text: String) -> [String] {
        ModelFixture.words(text.folding(options: .diacriticInsensitive, locale: nil))
    }

    /// The share of `reference`'s words found in `hypothesis`, each used once, in any order.
    static func recall(of reference: String, in hypothesis: String) -> Double {
        var remaining = plainWords(hypothesis)
        let expected = plainWords(reference)
        var found = 0
        for word in expected {
            if let index = remaining.firstIndex(of: word) { remaining.remove(at: index); found += 1 }
        }
        return Double(found) / Double(max(1, expected.count))
    }

    /// With `multilingual`, an English-then-Spanish recording gets both halves, each segment in its language.
    /// Without it, the Spanish half comes out as English (the model keeps the first window's language): the
    /// failure the option exists for. (faster-whisper with `multilingual=True` gives the same text, word for word.)
    @Test func codeSwitchingGetsBothLanguagesWithMultilingual() throws {
        let (samples, switchAt) = try englishThenSpanish()
        let spanishReference = Self.spanishPrompts.map(\.text).joined(separator: " ")
        let englishReference = try ModelFixture.librivoxTranscripts().sorted { $0.key < $1.key }.map(\.value).joined(separator: " ")

        let result = try engine.transcribe(samples: samples, options: TranscriptionOptions(multilingual: true))
        #expect(result.language == "en")
        let english = result.segments.filter { $0.start < switchAt }, spanish = result.segments.filter { $0.start >= switchAt }
        #expect(!english.isEmpty && english.allSatisfy { $0.language == "en" }, "\(english.map { ($0.language, $0.text) })")
        #expect(!spanish.isEmpty && spanish.allSatisfy { $0.language == "es" }, "\(spanish.map { ($0.language, $0.text) })")
        let englishRecall = Self.recall(of: englishReference, in: english.map(\.text).joined())
        let spanishRecall = Self.recall(of: spanishReference, in: spanish.map(\.text).joined())
        print("code-switching: English recall \(englishRecall), Spanish recall \(spanishRecall)")
        #expect(englishRecall >= 0.85, "\(english.map(\.text).joined())")
        // 0.81 measured: Whisper writes the numbers as digits ("1" for "uno"), which counts as missing here.
        #expect(spanishRecall >= 0.7, "\(spanish.map(\.text).joined())")

        let plain = try engine.transcribe(samples: samples)
        let lost = Self.recall(of: spanishReference, in: plain.segments.filter { $0.start >= switchAt }.map(\.text).joined())
        #expect(lost < 0.2, "without multilingual the Spanish half should be lost, as the issue reports; recall \(lost)")
        #expect(plain.segments.allSatisfy { $0.language == "en" })
    }

    /// `task: .translate` gives English from Spanish speech: checked against our own translation, and free of the
    /// Spanish words. (faster-whisper with `task="translate"` gives the same text, word for word.)
    @Test func translatesSpanishSpeechToEnglish() throws {
        let result = try engine.transcribe(samples: try spanishSpeech(), options: TranscriptionOptions(task: .translate))
        #expect(result.language == "es", "the language spoken")
        let recall = Self.recall(of: Self.spanishInEnglish, in: result.text)
        print("translation: recall \(recall) of the reference translation: \(result.text)")
        #expect(recall >= 0.6, "\(result.text)")
        let spanishOnly: Set<String> = ["para", "conferencia", "volumen", "presione", "agente", "por", "favor", "sido", "sistema"]
        #expect(Set(Self.plainWords(result.text)).isDisjoint(with: spanishOnly), "\(result.text)")
        // The same speech transcribed stays Spanish.
        let transcribed = try engine.transcribe(samples: try spanishSpeech(), options: TranscriptionOptions(language: "es"))
        #expect(Self.recall(of: Self.spanishPrompts.map(\.text).joined(separator: " "), in: transcribed.text) >= 0.7)
    }

    @Test func englishOnlyModelsRefuseTranslationAndDetection() throws {
        let english = try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2)
        let samples = try spanishSpeech()
        #expect(throws: EngineError.invalidOption("translation needs a multilingual model; this one is English-only (.en)")) {
            try english.transcribe(samples: samples, options: TranscriptionOptions(task: .translate))
        }
        #expect(throws: EngineError.invalidOption("multilingual detection needs a multilingual model; this one is English-only (.en)")) {
            try english.transcribe(samples: samples, options: TranscriptionOptions(multilingual: true))
        }
    }
}
