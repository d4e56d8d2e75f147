import Foundation
import StenoEngine
import Testing

/// Token ids below were obtained once from the model's own tokenizer.json with Hugging Face `tokenizers`
/// (`Tokenizer.from_file(...).encode(text, add_special_tokens=False).ids`) and from faster-whisper's
/// `Tokenizer` for word splitting and decoding.
@Suite struct WhisperTokenizerTests {
    static let tokenizer = try! WhisperTokenizer(modelDirectory: IOTestSupport.tinyEnModel, vocabularySize: 51864)

    static let references: [(text: String, ids: [Int])] = [
        (" Hello world! It's 2024, isn't it?", [18435, 995, 0, 632, 338, 48609, 11, 2125, 470, 340, 30]),
        ("they'll we've I'd you're THEY'LL", [9930, 1183, 356, 1053, 314, 1549, 345, 821, 33302, 6, 3069]),
        ("  multiple   spaces\nnew line\ttab \n\n end  ",
         [220, 3294, 220, 220, 9029, 198, 3605, 1627, 197, 8658, 220, 628, 886, 220, 220]),
        (" Café naïve résumé — Zürich", [42151, 41492, 40560, 16345, 2634, 851, 1168, 9116, 7527]),
        (" I ❤️ 🦀 pizza 🍕", [314, 43074, 97, 37929, 12520, 99, 222, 14256, 12520, 235, 243]),
        ("日本語のテキスト", [33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302]),
        (" 3.14159 and 1,000,000!!! ...", [513, 13, 1415, 19707, 290, 352, 11, 830, 11, 830, 10185, 2644]),
        (" Mr. O'Neil's \"quoted\" (text) [x] {y} <z> -- ♪",
         [1770, 13, 440, 6, 29354, 338, 366, 421, 5191, 1, 357, 5239, 8, 685, 87, 60, 1391, 88, 92, 1279, 89, 29,
          1377, 20724, 103]),
    ]

    @Test func encodesLikeTheReferenceTokenizer() {
        for (text, ids) in Self.references {
            #expect(Self.tokenizer.encode(text) == ids, "\(text)")
        }
    }

    @Test func decodeRoundTrips() {
        for (text, ids) in Self.references {
            #expect(Self.tokenizer.decode(ids) == text)
        }
    }

    /// Without tokenizer.json, pairs merge by the id of the token they form; that gives the same ids.
    @Test func vocabularyRankedMergesMatchTheMergeList() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steno-vocab-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(
            at: IOTestSupport.tinyEnModel.appendingPathComponent("vocabulary.txt"),
            to: directory.appendingPathComponent("vocabulary.txt"))
        let tokenizer = try WhisperTokenizer(modelDirectory: directory, vocabularySize: 51864)
        for (text, ids) in Self.references {
            #expect(tokenizer.encode(text) == ids, "\(text)")
        }
    }

    /// vocabulary.json (a JSON array) loads like vocabulary.txt.
    @Test func loadsVocabularyJSON() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steno-vocab-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = try String(contentsOf: IOTestSupport.tinyEnModel.appendingPathComponent("vocabulary.txt"), encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        try JSONEncoder().encode(lines).write(to: directory.appendingPathComponent("vocabulary.json"))
        let tokenizer = try WhisperTokenizer(modelDirectory: directory, vocabularySize: 51864)
        #expect(tokenizer.vocabularyCount == 51864)
        #expect(tokenizer.encode(Self.references[0].text) == Self.references[0].ids)
    }

    @Test func partialCharactersDecodeLossily() {
        let tokenizer = Self.tokenizer
        // " 🦀" is [12520, 99, 222]: the crab's four UTF-8 bytes span three tokens.
        #expect(tokenizer.decode([12520]) == " \u{FFFD}")
        #expect(tokenizer.decode([12520, 99, 222]) == " 🦀")
        // " ❤️" is U+2764 U+FE0F over three tokens; after two, the heart is whole and the selector is cut off.
        #expect(tokenizer.decode([314, 43074]) == " I \u{FFFD}")
        #expect(tokenizer.decode([314, 43074, 97]) == " I ❤")
        #expect(tokenizer.decode([314, 43074, 97, 37929]) == " I ❤️")
    }

    @Test func decodeDropsSpecialTokens() {
        let s = Self.tokenizer.specials
        #expect(Self.tokenizer.decode([s.sot, s.noTimestamps, 18435, s.timestampBegin + 10, 995, s.eot]) == " Hello world")
        #expect(Self.tokenizer.decodeWithTimestamps([50363, 18435, 995, 50413, 50256]) == "<|0.00|> Hello world<|1.00|>")
        #expect(Self.tokenizer.decodeWithTimestamps([s.timestampBegin + 1500, s.timestampBegin + 3]) == "<|30.00|><|0.06|>")
    }

    @Test func splitsWordsOnSpacesAndPunctuation() {
        let ids = [18435, 995, 0, 632, 338, 366, 421, 5191, 1, 43074, 97, 37929, 40304, 986, 880, 12, 4002, 357, 8505, 737]
        #expect(Self.tokenizer.decode(ids) == " Hello world! It's \"quoted\" ❤️ café... well-known (yes).")
        let words = Self.tokenizer.splitToWordTokens(ids + [50256], language: "en")
        let expected: [(String, [Int])] = [
            (" Hello", [18435]), (" world", [995]), ("!", [0]), (" It's", [632, 338]),
            (" \"quoted", [366, 421, 5191]), ("\"", [1]), (" ❤️", [43074, 97, 37929]), (" café...", [40304, 986]),
            (" well", [880]), ("-known", [12, 4002]), (" (yes).", [357, 8505, 737]), ("", [50256]),
        ]
        #expect(words.map(\.word) == expected.map(\.0))
        #expect(words.map(\.tokens) == expected.map(\.1))
    }

    @Test func splitsWordsOnCharactersWithoutSpaces() {
        let ids = [33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302, 23513, 30640, 33623, 16764]
        let words = Self.tokenizer.splitToWordTokens(ids + [50256], language: "ja")
        #expect(words.map(\.word) == ["日", "本", "語", "の", "テ", "キ", "スト", "、", "で", "す", "。", ""])
        #expect(words.map(\.tokens) == [
            [33768, 98], [17312, 105], [45739, 252], [5641], [24336], [25084], [43302], [23513], [30640], [33623],
            [16764], [50256],
        ])
    }

    /// The non-speech set equals the model's own config.json `suppress_ids` less the control tokens.
    @Test func nonSpeechTokensMatchTheModelConfig() throws {
        let data = try Data(contentsOf: IOTestSupport.tinyEnModel.appendingPathComponent("config.json"))
        let config = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let suppress = try #require(config["suppress_ids"] as? [Int])
        let specials = Self.tokenizer.specials
        #expect(specials.nonSpeechTokens == suppress.filter { $0 < specials.eot })
        #expect(specials.defaultSuppressTokens == suppress)
        #expect(specials.nonSpeechTokens.count == 84)
    }

    /// The special tokens computed from the vocabulary size are where the vocabulary spells them.
    @Test func specialTokensMatchTheVocabulary() {
        let t = Self.tokenizer
        let s = t.specials
        #expect(!s.isMultilingual)
        #expect(t.tokenString(s.eot) == "<|endoftext|>")
        #expect(t.tokenString(s.sot) == "<|startoftranscript|>")
        #expect(t.tokenString(s.translate) == "<|translate|>")
        #expect(t.tokenString(s.transcribe) == "<|transcribe|>")
        #expect(t.tokenString(s.sotLM) == "<|startoflm|>")
        #expect(t.tokenString(s.sotPrev) == "<|startofprev|>")
        #expect(t.tokenString(s.noSpeech) == "<|nocaptions|>" || t.tokenString(s.noSpeech) == "<|nospeech|>")
        #expect(t.tokenString(s.noTimestamps) == "<|notimestamps|>")
        #expect(t.tokenString(s.timestampBegin) == "<|0.00|>")
        #expect(t.tokenString(s.timestampBegin + 1500) == "<|30.00|>")
        #expect(s.languageCodes.count == 99)
        for code in s.languageCodes {
            // Hugging Face vocabularies spell Hebrew with its old code, `iw`.
            let spelled = code == "he" ? "iw" : code
            #expect(t.tokenString(s.languageToken(code)!) == "<|\(spelled)|>")
        }
    }

    /// eot, sot, translate, transcribe, startoflm, startofprev, nospeech, notimestamps, timestamp 0.
    private func controlIds(_ s: SpecialTokens) -> [Int] {
        [s.eot, s.sot, s.translate, s.transcribe, s.sotLM, s.sotPrev, s.noSpeech, s.noTimestamps, s.timestampBegin]
    }

    @Test func specialTokenIdsByVocabularySize() {
        let english = SpecialTokens(vocabularySize: 51864)
        #expect(!english.isMultilingual)
        #expect(controlIds(english) == [50256, 50257, 50357, 50358, 50359, 50360, 50361, 50362, 50363] as [Int])
        #expect(english.languageToken("en") == 50258)
        #expect(english.languageTokens == 50258..<50357)

        let multilingual = SpecialTokens(vocabularySize: 51865)
        #expect(multilingual.isMultilingual)
        #expect(controlIds(multilingual) == [50257, 50258, 50358, 50359, 50360, 50361, 50362, 50363, 50364] as [Int])
        #expect(multilingual.languageCodes.count == 99)
        #expect(multilingual.languageToken("en") == 50259)
        #expect(multilingual.languageToken("de") == 50261)
        #expect(multilingual.languageToken("su") == 50357)
        #expect(multilingual.languageToken("yue") == nil)
        #expect(multilingual.timestampBegin + 1500 == 51864)

        let v3 = SpecialTokens(vocabularySize: 51866)
        #expect(controlIds(v3) == [50257, 50258, 50359, 50360, 50361, 50362, 50363, 50364, 50365] as [Int])
        #expect(v3.languageCodes.count == 100)
        #expect(v3.languageToken("yue") == 50358)
        #expect(v3.languageCode(ofToken: 50259) == "en")
        #expect(v3.timestampBegin + 1500 == 51865)
        #expect(v3.seconds(ofTimestamp: v3.timestampBegin + 54) == 1.08)
    }

    @Test func rejectsAVocabularyOfTheWrongSize() {
        #expect(throws: EngineError.self) {
            try WhisperTokenizer(modelDirectory: IOTestSupport.tinyEnModel, vocabularySize: 51865)
        }
        let missing = URL(fileURLWithPath: "/nonexistent-steno-model")
        #expect(throws: EngineError.invalidModel(file: "vocabulary.txt", problem: "missing (neither vocabulary.json nor vocabulary.txt exists)")) {
            try WhisperTokenizer(modelDirectory: missing, vocabularySize: 51864)
        }
    }
}
