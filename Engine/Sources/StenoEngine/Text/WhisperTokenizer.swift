public import Foundation

/// Whisper's tokenizer: GPT-2 byte-level BPE over the model's vocabulary, followed by the special tokens.
///
/// Text pieces are split as GPT-2 does, each piece's UTF-8 bytes are spelled in the byte-level alphabet and
/// merged pairwise. Decoding maps tokens back to bytes and decodes them as UTF-8, so a character whose bytes
/// span several tokens comes out whole once all of them are present (and as U+FFFD while it is incomplete).
public struct WhisperTokenizer: Sendable {
    /// The special token ids of this vocabulary, with its non-speech symbols.
    public let specials: SpecialTokens
    /// Number of entries in the vocabulary file.
    public let vocabularyCount: Int

    /// The UTF-8 bytes of every token, concatenated; token `i` is `bytes[offsets[i]..<offsets[i + 1]]`.
    private let bytes: [UInt8]
    private let offsets: [Int32]
    private let tokens: [String]
    private let encoder: BytePairEncoder

    /// Languages written without spaces between words, whose words are split at character boundaries.
    public static let languagesWithoutSpaces: Set<String> = ["zh", "ja", "th", "lo", "my", "yue"]

    /// Loads the vocabulary of a CTranslate2 model directory: `vocabulary.json` (a JSON array) or
    /// `vocabulary.txt` (one token per line), plus the BPE merges of `tokenizer.json` when it is there. Without
    /// `tokenizer.json`, pairs merge by the id of the token they form, which is how Whisper ranks them.
    ///
    /// - Parameter vocabularySize: the model's vocabulary size (rows of its embedding matrix), which decides
    ///   the special token ids.
    /// - Throws: `EngineError.invalidModel` naming the file when a file is missing, unreadable or does not fit
    ///   a Whisper vocabulary of that size.
    public init(modelDirectory: URL, vocabularySize: Int) throws {
        let tokens = try Self.loadVocabulary(in: modelDirectory)
        let merges = try Self.loadMerges(in: modelDirectory)
        try self.init(tokens: tokens, merges: merges, vocabularySize: vocabularySize)
    }

    /// A tokenizer over an in-memory vocabulary (byte-level spelled tokens, index = id) and optional merges
    /// in rank order.
    public init(tokens: [String], merges: [(String, String)]?, vocabularySize: Int) throws {
        let ids = SpecialTokens(vocabularySize: vocabularySize)
        let file = "vocabulary"
        guard tokens.count > ids.eot else {
            throw EngineError.invalidModel(
                file: file, problem: "\(tokens.count) tokens, fewer than the \(ids.eot + 1) text tokens of a Whisper vocabulary")
        }
        guard tokens[ids.eot] == "<|endoftext|>" else {
            throw EngineError.invalidModel(
                file: file,
                problem: "token \(ids.eot) is '\(tokens[ids.eot])', not <|endoftext|> as a vocabulary of size \(vocabularySize) requires")
        }
        var idForToken: [String: Int] = [:]
        idForToken.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() where idForToken[token] == nil {
            idForToken[token] = id
        }
        guard let encoder = BytePairEncoder(tokens: tokens, idForToken: idForToken, merges: merges) else {
            throw EngineError.invalidModel(file: file, problem: "the byte-level base alphabet (256 single-byte tokens) is incomplete")
        }
        var bytes: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for token in tokens {
            ByteLevelAlphabet.appendBytes(of: token, to: &bytes)
            offsets.append(Int32(bytes.count))
        }
        self.tokens = tokens
        self.bytes = bytes
        self.offsets = offsets
        self.encoder = encoder
        self.vocabularyCount = tokens.count
        let nonSpeech = Self.nonSpeechSymbols { GPT2PreTokenizer.split($0).flatMap(encoder.encode) }
        self.specials = SpecialTokens(vocabularySize: vocabularySize, nonSpeechTokens: nonSpeech)
    }

    // MARK: Encoding and decoding

    /// The token ids of plain text (special-token markup such as `<|en|>` is encoded as ordinary text).
    public func encode(_ text: String) -> [Int] {
        GPT2PreTokenizer.split(text).flatMap { encoder.encode($0) }
    }

    /// The text of a token sequence. Special tokens and timestamps (ids ≥ `eot`) are dropped; byte sequences
    /// that are not valid UTF-8 (a character cut off by the end of the sequence) become U+FFFD.
    public func decode(_ tokens: [Int]) -> String {
        var buffer: [UInt8] = []
        for token in tokens where token >= 0 && token < specials.eot {
            appendBytes(of: token, to: &buffer)
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// The text with timestamps written inline as `<|1.08|>`; other special tokens are dropped.
    public func decodeWithTimestamps(_ tokens: [Int]) -> String {
        var result = ""
        var run: [Int] = []
        for token in tokens {
            if specials.isTimestamp(token) {
                result += decode(run)
                run.removeAll(keepingCapacity: true)
                result += "<|\(Self.formatTimestamp(token - specials.timestampBegin))|>"
            } else {
                run.append(token)
            }
        }
        return result + decode(run)
    }

    /// The vocabulary entry of a token as stored (byte-level spelling), or nil if the id is out of range.
    public func tokenString(_ token: Int) -> String? {
        tokens.indices.contains(token) ? tokens[token] : nil
    }

    private func appendBytes(of token: Int, to buffer: inout [UInt8]) {
        guard token + 1 < offsets.count else { return }
        buffer.append(contentsOf: bytes[Int(offsets[token])..<Int(offsets[token + 1])])
    }

    /// `steps` timestamp steps of 0.02 s as seconds with two decimals, e.g. 54 → "1.08".
    private static func formatTimestamp(_ steps: Int) -> String {
        let hundredths = steps * 2
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    // MARK: Non-speech symbols

    /// The symbols Whisper keeps out of transcripts when `suppress_tokens` is `[-1]`: a token is listed when a
    /// symbol (with or without a leading space) is a single token, and musical signs' first token always.
    private static func nonSpeechSymbols(encode: (String) -> [Int]) -> [Int] {
        var symbols = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』".map(String.init)
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split(separator: " ").map(String.init)
        let musical = "♩♪♫♬♭♮♯".map(String.init)
        var result: Set<Int> = []
        for lead in [" -", " '"] {
            if let first = encode(lead).first { result.insert(first) }
        }
        for symbol in symbols + musical {
            for encoded in [encode(symbol), encode(" " + symbol)] {
                if encoded.count == 1 || musical.contains(symbol), let first = encoded.first {
                    result.insert(first)
                }
            }
        }
        return result.sorted()
    }
}
