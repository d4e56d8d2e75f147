import Foundation

/// Word-level timestamps: a teacher-forced pass over a window's text, the cross-attention of the alignment heads
/// normalized and median-filtered, and dynamic time warping from tokens to 20 ms audio positions
/// (as OpenAI Whisper's `timing.py` and faster-whisper's `find_alignment` do it).
struct WordAligner {
    let engine: WhisperEngine
    let language: String
    let task: WhisperTask

    static let prependPunctuation = "\"'“¿([{-"
    static let appendPunctuation = "\"'.。,，!！?？:：”)]}、"

    struct TimedWord { var word: String; var tokens: [Int]; var start: Double; var end: Double; var probability: Double }

    /// Fills `words` of each segment of one window, and tightens segment bounds to the first and last word.
    func addWordTimestamps(to segments: inout [TranscribedSegment], cross: CrossAttentionCache, timeOffset: Double, frames: Int) {
        let specials = engine.tokenizer.specials
        let textTokensPerSegment = segments.map { $0.tokens.filter { $0 < specials.eot } }
        let textTokens = textTokensPerSegment.flatMap { $0 }
        guard !textTokens.isEmpty else { return }
        var words = align(textTokens: textTokens, cross: cross, frames: frames)
        mergePunctuations(&words)

        // Hand the words back to their segments by token count.
        var wordIndex = 0
        for s in segments.indices {
            var consumed = 0
            let needed = textTokensPerSegment[s].count
            var segmentWords: [TranscribedWord] = []
            while wordIndex < words.count, consumed < needed {
                let word = words[wordIndex]
                consumed += word.tokens.count
                wordIndex += 1
                guard !word.word.isEmpty else { continue }
                segmentWords.append(TranscribedWord(
                    start: round2(timeOffset + word.start), end: round2(timeOffset + word.end), word: word.word,
                    probability: word.probability))
            }
            segments[s].words = segmentWords
            if let first = segmentWords.first, let last = segmentWords.last {
                segments[s].start = first.start
                segments[s].end = max(last.end, first.start)
            }
        }
    }

    private func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }

    /// Times (seconds within the window) and probabilities of the words of `textTokens`.
    func align(textTokens: [Int], cross: CrossAttentionCache, frames: Int) -> [TimedWord] {
        let specials = engine.tokenizer.specials
        let sot = LongFormTranscription.sotSequence(engine: engine, language: language, task: task)
        let tokens = sot + [specials.noTimestamps] + textTokens + [specials.eot]
        let heads = engine.config.alignmentHeads
        var capture = AlignmentCapture(heads: heads)
        let session = DecoderSession(decoder: engine.decoder, cross: cross, batch: 1)
        // Logits at the position before each text token (and eot) give the token probabilities.
        let firstPrediction = sot.count
        let positions = Array(firstPrediction..<(firstPrediction + textTokens.count + 1))
        let logits = withUnsafeMutablePointer(to: &capture) { session.step([tokens], logitPositions: positions, capture: $0) }
        let vocabulary = engine.architecture.vocabularySize
        var tokenProbabilities: [Double] = []
        for (i, token) in (textTokens + [specials.eot]).enumerated() {
            var row = Array(logits[(i * vocabulary)..<((i + 1) * vocabulary)])
            row.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, count: vocabulary) }
            tokenProbabilities.append(Double(row[token]))
        }

        // Attention of the text rows over the window's audio positions, per head, renormalized to the audio
        // actually present, standardized per position, median-filtered, averaged over heads.
        let audioPositions = max(1, min(capture.positions, frames / 2))
        let rowsAll = capture.tokens
        let textRows = Array(sot.count..<(rowsAll - 1))  // no-timestamps row … last text token row
        var matrix = [Float](repeating: 0, count: textRows.count * audioPositions)
        for headWeights in capture.weights where !headWeights.isEmpty {
            var w = [Float](repeating: 0, count: rowsAll * audioPositions)
            for r in 0..<rowsAll {
                var sum: Float = 0
                for c in 0..<audioPositions { sum += headWeights[r * capture.positions + c] }
                let inv = sum > 0 ? 1 / sum : 0
                for c in 0..<audioPositions { w[r * audioPositions + c] = headWeights[r * capture.positions + c] * inv }
            }
            for c in 0..<audioPositions {
                var mean: Float = 0
                for r in 0..<rowsAll { mean += w[r * audioPositions + c] }
                mean /= Float(rowsAll)
                var variance: Float = 0
                for r in 0..<rowsAll { let d = w[r * audioPositions + c] - mean; variance += d * d }
                let std = max((variance / Float(rowsAll)).squareRoot(), 1e-10)
                for r in 0..<rowsAll { w[r * audioPositions + c] = (w[r * audioPositions + c] - mean) / std }
            }
            medianFilterRows(&w, rows: rowsAll, columns: audioPositions, width: 7)
            for (i, r) in textRows.enumerated() {
                for c in 0..<audioPositions { matrix[i * audioPositions + c] += w[r * audioPositions + c] / Float(heads.count) }
            }
        }
        for i in matrix.indices { matrix[i] = -matrix[i] }
        let path = dynamicTimeWarping(cost: matrix, rows: textRows.count, columns: audioPositions)

        // Times at which the path enters each text index.
        var jumpTimes: [Double] = []
        var previousRow = -1
        for (row, column) in zip(path.rows, path.columns) where row != previousRow {
            jumpTimes.append(Double(column) * SpecialTokens.timestampResolution)
            previousRow = row
        }
        let pieces = engine.tokenizer.splitToWordTokens(textTokens + [specials.eot], language: language)
        var words: [TimedWord] = []
        var boundary = 0
        for piece in pieces {
            let next = boundary + piece.tokens.count
            if piece.tokens.first.map({ $0 >= specials.eot }) == true { break }
            let start = jumpTimes[min(boundary, jumpTimes.count - 1)]
            let end = jumpTimes[min(next, jumpTimes.count - 1)]
            let probabilities = tokenProbabilities[boundary..<min(next, tokenProbabilities.count)]
            let probability = probabilities.isEmpty ? 0 : probabilities.reduce(0, +) / Double(probabilities.count)
            words.append(TimedWord(word: piece.word, tokens: piece.tokens, start: start, end: end, probability: probability))
            boundary = next
        }
        return words
    }

    /// Attaches opening punctuation to the following word and closing punctuation to the preceding one.
    func mergePunctuations(_ words: inout [TimedWord]) {
        guard words.count > 1 else { return }
        var i = words.count - 2
        while i >= 0 {
            let trimmed = words[i].word.trimmingCharacters(in: .whitespaces)
            if words[i].word.hasPrefix(" "), Self.prependPunctuation.contains(trimmed), !trimmed.isEmpty {
                words[i + 1].word = words[i].word + words[i + 1].word
                words[i + 1].tokens = words[i].tokens + words[i + 1].tokens
                words[i].word = ""
                words[i].tokens = []
            }
            i -= 1
        }
        var j = 0
        var k = 1
        while k < words.count {
            if !words[j].word.hasSuffix(" "), Self.appendPunctuation.contains(words[k].word), !words[k].word.isEmpty {
                words[j].word += words[k].word
                words[j].tokens += words[k].tokens
                words[k].word = ""
                words[k].tokens = []
            } else {
                j = k
            }
            k += 1
        }
    }
}
