/// Splits text into the pieces that GPT-2's byte-level BPE encodes independently, exactly as its pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` does, written out by hand
/// over Unicode scalars (the pattern's alternatives are tried in order at each position).
enum GPT2PreTokenizer {
    private enum Kind { case letter, number, space, other }

    private static func kind(_ scalar: Unicode.Scalar) -> Kind {
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// The contraction suffixes that GPT-2 splits off (case-sensitive, as in the original pattern).
    private static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map {
        Array($0.unicodeScalars)
    }

    /// The pieces of `text`, in order; concatenated they give back `text`.
    static func split(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        let kinds = scalars.map(kind)
        var pieces: [String] = []
        var start = 0
        while start < scalars.count {
            let end = pieceEnd(scalars, kinds, from: start)
            var piece = String.UnicodeScalarView()
            piece.append(contentsOf: scalars[start..<end])
            pieces.append(String(piece))
            start = end
        }
        return pieces
    }

    /// The end of the piece that starts at `start` (always > start).
    private static func pieceEnd(_ scalars: [Unicode.Scalar], _ kinds: [Kind], from start: Int) -> Int {
        let count = scalars.count
        // 's 't 're 've 'm 'll 'd
        if scalars[start] == "'" {
            for suffix in contractions {
                let end = start + 1 + suffix.count
                if end <= count, Array(scalars[(start + 1)..<end]) == suffix { return end }
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional single space, then a run of one class.
        let body = scalars[start] == " " && start + 1 < count && kinds[start + 1] != .space ? start + 1 : start
        let bodyKind = kinds[body]
        if bodyKind != .space {
            var end = body + 1
            while end < count, kinds[end] == bodyKind { end += 1 }
            return end
        }
        // `\s+(?!\S)`: a whitespace run, less its last scalar when a non-space follows (that scalar then
        // leads the next piece); `\s+` when the run is a single scalar.
        var end = start + 1
        while end < count, kinds[end] == .space { end += 1 }
        if end < count, end - start > 1 { end -= 1 }
        return end
    }
}
