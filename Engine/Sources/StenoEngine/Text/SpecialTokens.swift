/// The ids of Whisper's special tokens, which follow the text vocabulary in a fixed order. They depend only on
/// the vocabulary size: English-only models (51864 tokens) use GPT-2's 50256 text tokens, multilingual ones
/// (51865) have one text token more, and large-v3 (51866) adds a 100th language, `yue`.
public struct SpecialTokens: Sendable, Hashable {
    /// Whisper's language codes in token order; a model with `n` language tokens uses the first `n`.
    public static let allLanguageCodes: [String] = [
        "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi",
        "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la",
        "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy",
        "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be",
        "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
        "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
    ]

    /// Size of the model's vocabulary (rows of the embedding matrix).
    public let vocabularySize: Int
    /// Multilingual models have at least 51865 tokens; English-only (`.en`) models have 51864.
    public let isMultilingual: Bool
    /// `<|endoftext|>`; every id at or above it is special.
    public let eot: Int
    /// `<|startoftranscript|>`
    public let sot: Int
    /// `<|translate|>`
    public let translate: Int
    /// `<|transcribe|>`
    public let transcribe: Int
    /// `<|startoflm|>`
    public let sotLM: Int
    /// `<|startofprev|>`, which introduces the previous window's text as a prompt.
    public let sotPrev: Int
    /// `<|nospeech|>` (called `<|nocaptions|>` in older vocabularies).
    public let noSpeech: Int
    /// `<|notimestamps|>`
    public let noTimestamps: Int
    /// `<|0.00|>`; timestamp `i` (0…1500) is `timestampBegin + i` and means `i × 0.02` s.
    public let timestampBegin: Int
    /// The language codes this vocabulary has tokens for, in token order (the first is `en`, at `sot + 1`).
    public let languageCodes: [String]
    /// Symbols that are not speech (music notes, brackets, …), for `suppress_tokens = [-1]`; see
    /// `WhisperTokenizer`, which computes them from the vocabulary. Empty when built from a size alone.
    public let nonSpeechTokens: [Int]

    /// Seconds per timestamp step.
    public static let timestampResolution = 0.02

    /// The ids for a vocabulary of `vocabularySize` tokens.
    public init(vocabularySize: Int, nonSpeechTokens: [Int] = []) {
        self.vocabularySize = vocabularySize
        isMultilingual = vocabularySize >= 51865
        eot = isMultilingual ? 50257 : 50256
        sot = eot + 1
        // 99 languages in both the .en and the original multilingual vocabularies, 100 from large-v3 on.
        let languageCount = max(0, min(Self.allLanguageCodes.count, vocabularySize - 51765 - (isMultilingual ? 1 : 0)))
        languageCodes = Array(Self.allLanguageCodes.prefix(languageCount))
        translate = sot + 1 + languageCount
        transcribe = translate + 1
        sotLM = transcribe + 1
        sotPrev = sotLM + 1
        noSpeech = sotPrev + 1
        noTimestamps = noSpeech + 1
        timestampBegin = noTimestamps + 1
        self.nonSpeechTokens = nonSpeechTokens
    }

    /// The ids of the language tokens.
    public var languageTokens: Range<Int> { (sot + 1)..<(sot + 1 + languageCodes.count) }

    /// The token of a language code such as `en`, or nil if the vocabulary has none for it.
    public func languageToken(_ code: String) -> Int? {
        languageCodes.firstIndex(of: code).map { sot + 1 + $0 }
    }

    /// The language code of a language token, or nil if `token` is not one.
    public func languageCode(ofToken token: Int) -> String? {
        languageTokens.contains(token) ? languageCodes[token - sot - 1] : nil
    }

    /// Whether `token` is a timestamp.
    public func isTimestamp(_ token: Int) -> Bool { token >= timestampBegin }

    /// The time in seconds (relative to the window) of a timestamp token.
    public func seconds(ofTimestamp token: Int) -> Double {
        Double(token - timestampBegin) * Self.timestampResolution
    }

    /// What Whisper's `suppress_tokens = [-1]` expands to: the non-speech symbols plus the task and
    /// control tokens that must never be sampled as text. Sorted.
    public var defaultSuppressTokens: [Int] {
        Array(Set(nonSpeechTokens + [transcribe, translate, sot, sotPrev, sotLM, noSpeech])).sorted()
    }
}
