/// Byte-pair encoding of one pre-tokenized piece: start from one token per byte, then repeatedly merge the
/// adjacent pair of lowest rank until no pair can merge.
struct BytePairEncoder: Sendable {
    /// A permitted merge: its priority (lower merges first) and the token it produces.
    struct Merge: Sendable {
        var rank: Int
        var merged: Int
    }

    /// Where ranks come from: a `tokenizer.json` merge list, or the vocabulary itself (a pair may merge if the
    /// vocabulary holds its concatenation, ranked by that token's id — tiktoken's rule, which Whisper uses).
    private let mergeTable: [UInt64: Merge]?
    private let tokens: [String]
    private let idForToken: [String: Int]
    /// The token of each byte's stand-in character.
    private let byteTokens: [Int]

    /// Fails (returns nil) when the vocabulary lacks one of the 256 single-byte tokens.
    init?(tokens: [String], idForToken: [String: Int], merges: [(String, String)]?) {
        var byteTokens: [Int] = []
        for scalar in ByteLevelAlphabet.scalarForByte {
            guard let id = idForToken[String(scalar)] else { return nil }
            byteTokens.append(id)
        }
        self.byteTokens = byteTokens
        self.tokens = tokens
        self.idForToken = idForToken
        if let merges {
            var table: [UInt64: Merge] = [:]
            table.reserveCapacity(merges.count)
            for (rank, (left, right)) in merges.enumerated() {
                guard let l = idForToken[left], let r = idForToken[right], let m = idForToken[left + right] else {
                    continue
                }
                let key = Self.key(l, r)
                if table[key] == nil { table[key] = Merge(rank: rank, merged: m) }
            }
            mergeTable = table
        } else {
            mergeTable = nil
        }
    }

    private static func key(_ left: Int, _ right: Int) -> UInt64 {
        UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
    }

    private func merge(_ left: Int, _ right: Int) -> Merge? {
        if let mergeTable { return mergeTable[Self.key(left, right)] }
        guard let merged = idForToken[tokens[left] + tokens[right]] else { return nil }
        return Merge(rank: merged, merged: merged)
    }

    /// The token ids of one piece of text.
    func encode(_ piece: String) -> [Int] {
        var symbols = piece.utf8.map { byteTokens[Int($0)] }
        while symbols.count > 1 {
            // The lowest-ranked mergeable pair; all its occurrences merge together, left to right.
            var best: (pair: (Int, Int), merge: Merge)?
            for i in 0..<(symbols.count - 1) {
                if let m = merge(symbols[i], symbols[i + 1]), m.rank < best?.merge.rank ?? Int.max {
                    best = ((symbols[i], symbols[i + 1]), m)
                }
            }
            guard let best else { break }
            var merged: [Int] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, symbols[i] == best.pair.0, symbols[i + 1] == best.pair.1 {
                    merged.append(best.merge.merged)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}
