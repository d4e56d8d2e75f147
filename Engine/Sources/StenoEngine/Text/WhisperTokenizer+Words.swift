/// Grouping tokens into words, for word-level timestamps.
extension WhisperTokenizer {
    /// The words of a token sequence, each with the tokens that spell it, the way Whisper groups them.
    ///
    /// Tokens first gather into the shortest runs that decode to whole characters (a run ends once it decodes
    /// without a U+FFFD that the full text does not also have). For languages written without spaces
    /// (`languagesWithoutSpaces`) those runs are the words. Otherwise a run starts a new word when it begins
    /// with a space, is punctuation, or is a special token; any other run joins the word before it.
    /// Timestamps appear as `<|t|>` words; other special tokens as empty words.
    public func splitToWordTokens(_ tokens: [Int], language: String) -> [(word: String, tokens: [Int])] {
        let runs = splitOnCharacterBoundaries(tokens)
        if Self.languagesWithoutSpaces.contains(language) { return runs }
        var words: [(word: String, tokens: [Int])] = []
        for run in runs {
            let special = run.tokens[0] >= specials.eot
            let startsWithSpace = run.word.unicodeScalars.first == " "
            if special || startsWithSpace || Self.isPunctuation(run.word) || words.isEmpty {
                words.append(run)
            } else {
                words[words.count - 1].word += run.word
                words[words.count - 1].tokens += run.tokens
            }
        }
        return words
    }

    private static let replacement: Unicode.Scalar = "\u{FFFD}"

    /// The shortest runs of tokens that each decode to complete characters.
    private func splitOnCharacterBoundaries(_ tokens: [Int]) -> [(word: String, tokens: [Int])] {
        let full = Array(decodeWithTimestamps(tokens).unicodeScalars)
        var runs: [(word: String, tokens: [Int])] = []
        var current: [Int] = []
        var offset = 0
        for token in tokens {
            current.append(token)
            let decoded = decodeWithTimestamps(current)
            let scalars = Array(decoded.unicodeScalars)
            // A U+FFFD is either an unfinished character (keep gathering) or one the text really contains.
            if let index = scalars.firstIndex(of: Self.replacement) {
                let position = offset + index
                guard position < full.count, full[position] == Self.replacement else { continue }
            }
            runs.append((decoded, current))
            current = []
            offset += scalars.count
        }
        return runs
    }

    /// Python's `string.punctuation`.
    private static let asciiPunctuation = Array("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)

    /// Whether the text, without surrounding whitespace, occurs within ASCII punctuation (as Whisper tests it:
    /// so an empty or all-space run counts, and so does a run such as "()").
    private static func isPunctuation(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return true }
        let core = Array(scalars[first...last])
        guard core.count <= asciiPunctuation.count else { return false }
        for start in 0...(asciiPunctuation.count - core.count)
        where Array(asciiPunctuation[start..<(start + core.count)]) == core {
            return true
        }
        return false
    }
}
