import Foundation

/// One decoded window: the generated tokens (without the prompt and end-of-text) and their scores.
struct GeneratedSequence: Sendable {
    var tokens: [Int]
    /// Sum of the tokens' log-probabilities, end-of-text included.
    var sumLogProb: Float
    /// Probability of the no-speech token at the start-of-transcript position.
    var noSpeechProb: Float
    /// Decoder steps taken (for timings).
    var steps = 0

    /// Whisper's average log-probability: the sum over (tokens + 1).
    var averageLogProb: Float { sumLogProb / Float(tokens.count + 1) }
}

/// Generates one window's token sequence from a prompt: beam search at temperature 0 (greedy when the beam is 1),
/// best-of-N sampling above it. All live sequences advance together through `DecoderSession.step`.
struct SequenceGenerator {
    let decoder: WhisperDecoder
    let specials: SpecialTokens
    let rules: LogitRules

    /// - Parameters:
    ///   - prompt: previous-text prompt + start-of-transcript sequence (+ no-timestamps).
    ///   - sotIndex: position of the start-of-transcript token in `prompt` (for the no-speech probability).
    func generate(
        cross: CrossAttentionCache, prompt: [Int], sotIndex: Int, beamSize: Int, temperature: Float,
        bestOf: Int, maxNewTokens: Int, random: inout SplitMix64
    ) -> GeneratedSequence {
        let session = DecoderSession(decoder: decoder, cross: cross, batch: 1)
        let vocabulary = decoder.architecture.vocabularySize
        let first = session.step([prompt], logitPositions: [sotIndex, prompt.count - 1])
        let noSpeechProb = first.withUnsafeBufferPointer { l -> Float in
            var row = Array(l[0..<vocabulary])
            row.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, count: vocabulary) }
            return row[specials.noSpeech]
        }
        let lastLogits = Array(first[vocabulary..<(2 * vocabulary)])
        let limit = max(1, min(maxNewTokens, session.remainingCapacity))
        if temperature > 0 {
            return sample(session: session, firstLogits: lastLogits, count: max(1, bestOf), temperature: temperature,
                          limit: limit, noSpeechProb: noSpeechProb, random: &random)
        }
        return beamSearch(session: session, firstLogits: lastLogits, beamSize: max(1, beamSize), limit: limit, noSpeechProb: noSpeechProb)
    }

    /// Rules + log-softmax of one sequence's logits.
    private func logProbs(_ logits: ArraySlice<Float>, sampled: [Int]) -> [Float] {
        let vocabulary = logits.count
        var row = Array(logits)
        var out = [Float](repeating: 0, count: vocabulary)
        row.withUnsafeMutableBufferPointer { r in
            rules.apply(r.baseAddress!, vocabulary: vocabulary, sampled: sampled)
            out.withUnsafeMutableBufferPointer { o in Kernels.logSoftmax(r.baseAddress!, count: vocabulary, into: o.baseAddress!) }
        }
        return out
    }

    private func beamSearch(session: DecoderSession, firstLogits: [Float], beamSize: Int, limit: Int, noSpeechProb: Float) -> GeneratedSequence {
        let vocabulary = decoder.architecture.vocabularySize
        let eot = specials.eot
        var beams: [(tokens: [Int], score: Float)] = [([], 0)]
        var logits = firstLogits
        var finished: [(tokens: [Int], score: Float)] = []
        var steps = 1

        for step in 0..<limit {
            // Candidates: the best (beam + 1) continuations of each live beam.
            var candidates: [(score: Float, beam: Int, token: Int)] = []
            for (index, beam) in beams.enumerated() {
                let row = logProbs(logits[(index * vocabulary)..<((index + 1) * vocabulary)], sampled: beam.tokens)
                for (token, logProb) in topK(row, k: beamSize + 1) {
                    candidates.append((beam.score + logProb, index, token))
                }
            }
            candidates.sort { $0.score > $1.score }
            var next: [(tokens: [Int], score: Float)] = []
            var sources: [Int] = []
            for candidate in candidates {
                if candidate.token == eot {
                    if finished.count < beamSize { finished.append((beams[candidate.beam].tokens, candidate.score)) }
                } else {
                    next.append((beams[candidate.beam].tokens + [candidate.token], candidate.score))
                    sources.append(candidate.beam)
                    if next.count == beamSize { break }
                }
            }
            if finished.count >= beamSize || next.isEmpty || step == limit - 1 || session.remainingCapacity < 1 {
                if finished.isEmpty { finished = next }
                break
            }
            session.reorder(sources)
            beams = next
            logits = session.step(beams.map { [$0.tokens.last!] })
            steps += 1
        }
        let best = Self.bestByLengthNormalizedScore(finished)
        return GeneratedSequence(tokens: best.tokens, sumLogProb: best.score, noSpeechProb: noSpeechProb, steps: steps)
    }

    private func sample(
        session: DecoderSession, firstLogits: [Float], count: Int, temperature: Float, limit: Int, noSpeechProb: Float,
        random: inout SplitMix64
    ) -> GeneratedSequence {
        let vocabulary = decoder.architecture.vocabularySize
        let eot = specials.eot
        session.reorder(Array(repeating: 0, count: count))
        var logits = [Float]()
        for _ in 0..<count { logits.append(contentsOf: firstLogits) }
        var sequences = Array(repeating: (tokens: [Int](), score: Float(0), done: false), count: count)
        var steps = 1
        for _ in 0..<limit {
            for s in 0..<count where !sequences[s].done {
                var row = Array(logits[(s * vocabulary)..<((s + 1) * vocabulary)])
                row.withUnsafeMutableBufferPointer { rules.apply($0.baseAddress!, vocabulary: vocabulary, sampled: sequences[s].tokens) }
                var logProb = [Float](repeating: 0, count: vocabulary)
                row.withUnsafeBufferPointer { r in
                    logProb.withUnsafeMutableBufferPointer { Kernels.logSoftmax(r.baseAddress!, count: vocabulary, into: $0.baseAddress!) }
                }
                let token = sampleToken(logProb, temperature: temperature, random: &random)
                sequences[s].score += logProb[token]
                if token == eot { sequences[s].done = true } else { sequences[s].tokens.append(token) }
            }
            if sequences.allSatisfy(\.done) || session.remainingCapacity < 1 { break }
            // Finished sequences take a dummy token so the batch stays rectangular; their output is ignored.
            logits = session.step(sequences.map { [$0.done ? eot : $0.tokens.last!] })
            steps += 1
        }
        let best = Self.bestByLengthNormalizedScore(sequences.map { ($0.tokens, $0.score) })
        return GeneratedSequence(tokens: best.tokens, sumLogProb: best.score, noSpeechProb: noSpeechProb, steps: steps)
    }

    /// The candidate with the best length-normalized log-probability (length penalty 1), as beam search and
    /// best-of-N sampling both rank their finished sequences.
    private static func bestByLengthNormalizedScore(_ candidates: [(tokens: [Int], score: Float)]) -> (tokens: [Int], score: Float) {
        candidates.max { a, b in a.score / Float(max(1, a.tokens.count)) < b.score / Float(max(1, b.tokens.count)) }!
    }

    private func sampleToken(_ logProb: [Float], temperature: Float, random: inout SplitMix64) -> Int {
        var maximum = -Float.infinity
        for v in logProb where v > maximum { maximum = v }
        var weights = [Double](repeating: 0, count: logProb.count)
        var total = 0.0
        for (i, v) in logProb.enumerated() where v > -.infinity {
            let w = Foundation.exp(Double((v - maximum) / temperature))
            weights[i] = w
            total += w
        }
        var target = random.nextUnit() * total
        for (i, w) in weights.enumerated() where w > 0 {
            target -= w
            if target <= 0 { return i }
        }
        return weights.lastIndex { $0 > 0 } ?? specials.eot
    }

    /// The k largest entries of `row` as (index, value), best first.
    private func topK(_ row: [Float], k: Int) -> [(Int, Float)] {
        var best: [(Int, Float)] = []
        best.reserveCapacity(k + 1)
        var floor = -Float.infinity
        for (i, v) in row.enumerated() where v > floor || best.count < k {
            guard v > -.infinity else { continue }
            var position = best.count
            while position > 0 && best[position - 1].1 < v { position -= 1 }
            best.insert((i, v), at: position)
            if best.count > k { best.removeLast() }
            if best.count == k { floor = best[k - 1].1 }
        }
        return best
    }
}
