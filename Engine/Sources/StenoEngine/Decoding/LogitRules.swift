/// The per-step logit rules of Whisper decoding, applied in place before choosing tokens: suppressed tokens,
/// suppress-blank at the first step, and the timestamp grammar (as OpenAI Whisper's `ApplyTimestampRules` and CTranslate2's `whisper.cc` apply them).
package struct LogitRules: Sendable {
    let specials: SpecialTokens
    /// Suppressed at every step.
    let suppressed: [Int]
    /// Suppressed at the first sampled step only (space and end-of-text: no empty transcripts).
    let suppressedAtBegin: [Int]
    /// Whether the window is decoded with timestamp tokens.
    let timestamps: Bool
    /// Latest timestamp allowed as the first token, in timestamp steps (1.0 s / 0.02 s).
    let maxInitialTimestampIndex: Int

    package init(specials: SpecialTokens, suppressed: [Int], suppressedAtBegin: [Int], timestamps: Bool, maxInitialTimestampIndex: Int = 50) {
        self.specials = specials
        self.suppressed = suppressed
        self.suppressedAtBegin = suppressedAtBegin
        self.timestamps = timestamps
        self.maxInitialTimestampIndex = maxInitialTimestampIndex
    }

    /// Applies every rule to one sequence's logits, given the tokens it has sampled so far in this window.
    package func apply(_ logits: UnsafeMutablePointer<Float>, vocabulary: Int, sampled: [Int]) {
        for token in suppressed where token < vocabulary { logits[token] = -.infinity }
        if sampled.isEmpty {
            for token in suppressedAtBegin where token < vocabulary { logits[token] = -.infinity }
        }
        guard timestamps else { return }
        applyTimestampRules(logits, vocabulary: vocabulary, sampled: sampled)
    }

    private func applyTimestampRules(_ logits: UnsafeMutablePointer<Float>, vocabulary: Int, sampled: [Int]) {
        let begin = specials.timestampBegin
        let eot = specials.eot
        logits[specials.noTimestamps] = -.infinity

        let lastWasTimestamp = sampled.count >= 1 && sampled[sampled.count - 1] >= begin
        let penultimateWasTimestamp = sampled.count < 2 || sampled[sampled.count - 2] >= begin
        if lastWasTimestamp {
            if penultimateWasTimestamp {
                // A pair of timestamps closed a segment: the next token is text (or the end).
                for t in begin..<vocabulary { logits[t] = -.infinity }
            } else {
                // A segment's text just ended with its timestamp: the next token is a timestamp or the end.
                for t in 0..<eot { logits[t] = -.infinity }
            }
        }
        // Timestamps never go backwards (and a closing timestamp is not repeated as an opening one).
        if let lastTimestamp = sampled.last(where: { $0 >= begin }) {
            let floor = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1
            for t in begin..<min(floor, vocabulary) { logits[t] = -.infinity }
        }
        if sampled.isEmpty {
            // The window starts with a timestamp, no later than maxInitialTimestampIndex.
            for t in 0..<begin { logits[t] = -.infinity }
            let lastAllowed = begin + maxInitialTimestampIndex
            if lastAllowed + 1 < vocabulary {
                for t in (lastAllowed + 1)..<vocabulary { logits[t] = -.infinity }
            }
        }
        // If all timestamps together are likelier than any single text token, force a timestamp.
        var maximum = -Float.infinity
        for t in 0..<vocabulary where logits[t] > maximum { maximum = logits[t] }
        guard maximum > -.infinity else { return }
        var total: Float = 0
        for t in 0..<vocabulary where logits[t] > -.infinity { total += Kernels.fastExp(logits[t] - maximum) }
        let logTotal = maximum + log(total)
        var timestampSum: Float = 0
        var timestampMax = -Float.infinity
        for t in begin..<vocabulary where logits[t] > timestampMax { timestampMax = logits[t] }
        if timestampMax > -.infinity {
            for t in begin..<vocabulary where logits[t] > -.infinity { timestampSum += Kernels.fastExp(logits[t] - timestampMax) }
        }
        let timestampLogProb = timestampMax > -.infinity ? timestampMax + log(timestampSum) - logTotal : -.infinity
        var textMax = -Float.infinity
        for t in 0..<begin where logits[t] > textMax { textMax = logits[t] }
        let textLogProb = textMax - logTotal
        if timestampLogProb > textLogProb {
            for t in 0..<begin { logits[t] = -.infinity }
        }
    }
}

import Foundation
