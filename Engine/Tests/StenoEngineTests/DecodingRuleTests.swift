import Foundation
import Testing
import StenoEngine

/// The timestamp grammar and suppression rules, on a toy vocabulary laid out like the English-only one.
@Suite("logit rules")
struct LogitRuleTests {
    let specials = SpecialTokens(vocabularySize: 51864)
    var vocabulary: Int { 51864 }

    func allowed(sampled: [Int], timestamps: Bool = true, suppressed: [Int] = [], atBegin: [Int] = []) -> (Int) -> Bool {
        let rules = LogitRules(specials: specials, suppressed: suppressed, suppressedAtBegin: atBegin, timestamps: timestamps)
        var logits = [Float](repeating: 0, count: vocabulary)
        // Make text far likelier than all timestamps so the "force a timestamp" rule does not fire by itself.
        for t in 0..<specials.timestampBegin { logits[t] = 20 }
        logits.withUnsafeMutableBufferPointer { rules.apply($0.baseAddress!, vocabulary: vocabulary, sampled: sampled) }
        return { logits[$0] > -.infinity }
    }

    var ts0: Int { specials.timestampBegin }

    @Test func firstTokenIsAnEarlyTimestamp() {
        let ok = allowed(sampled: [])
        #expect(!ok(100))  // text
        #expect(ok(ts0))
        #expect(ok(ts0 + 50))  // 1.00 s
        #expect(!ok(ts0 + 51))
        #expect(!ok(specials.noTimestamps))
    }

    @Test func afterTextOnlyLaterTimestamps() {
        let ok = allowed(sampled: [ts0 + 10, 100, 200])
        #expect(ok(300))
        #expect(!ok(ts0 + 10))
        #expect(ok(ts0 + 11))
        #expect(ok(specials.eot))
    }

    @Test func afterClosingTimestampNoText() {
        let ok = allowed(sampled: [ts0, 100, ts0 + 20])
        #expect(!ok(100))
        #expect(ok(specials.eot))
        #expect(ok(ts0 + 20))  // the next segment may open where this one closed
        #expect(!ok(ts0 + 19))
    }

    @Test func afterTimestampPairNoTimestamp() {
        let ok = allowed(sampled: [ts0, 100, ts0 + 20, ts0 + 20])
        #expect(ok(100))
        #expect(!ok(ts0 + 30))
    }

    @Test func timestampForcedWhenLikelierThanAnyText() {
        let rules = LogitRules(specials: specials, suppressed: [], suppressedAtBegin: [], timestamps: true)
        var logits = [Float](repeating: -10, count: vocabulary)
        logits[100] = 0
        for t in ts0..<(ts0 + 100) { logits[t] = -1 }  // together far likelier than token 100
        logits.withUnsafeMutableBufferPointer { rules.apply($0.baseAddress!, vocabulary: vocabulary, sampled: [ts0, 5]) }
        #expect(logits[100] == -.infinity)
        #expect(logits[ts0 + 50] > -.infinity)
    }

    @Test func suppressionAndBlankAtBegin() {
        let ok = allowed(sampled: [], timestamps: false, suppressed: [7, 8], atBegin: [220, specials.eot])
        #expect(!ok(7) && !ok(8) && !ok(220) && !ok(specials.eot))
        #expect(ok(100))
        let later = allowed(sampled: [100], timestamps: false, suppressed: [7], atBegin: [220, specials.eot])
        #expect(ok(100) && later(220) && later(specials.eot) && !later(7))
    }
}

@Suite("alignment helpers")
struct AlignmentHelperTests {
    @Test func dtwFollowsTheCheapDiagonal() {
        // 3 tokens × 6 frames; cheap cells on a staircase: token 0 → frames 0-1, token 1 → 2-3, token 2 → 4-5.
        var cost = [Float](repeating: 1, count: 18)
        for (row, columns) in [(0, [0, 1]), (1, [2, 3]), (2, [4, 5])] {
            for c in columns { cost[row * 6 + c] = 0 }
        }
        let path = dynamicTimeWarping(cost: cost, rows: 3, columns: 6)
        #expect(path.rows == [0, 0, 1, 1, 2, 2])
        #expect(path.columns == [0, 1, 2, 3, 4, 5])
    }

    @Test func medianFilterRemovesSpikes() {
        var x: [Float] = [0, 0, 0, 9, 0, 0, 0, 0]
        medianFilterRows(&x, rows: 1, columns: 8, width: 3)
        #expect(x == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func compressionRatioFlagsRepetition() {
        let normal = "He was not an ill disposed young man, and he meant to be kind to his sisters."
        let loop = String(repeating: "thank you so much. ", count: 20)
        #expect(compressionRatio(normal) < 1.6)
        #expect(compressionRatio(loop) > 2.4)
        #expect(compressionRatio("") == 0)
    }
}

@Suite("numeric kernels")
struct KernelTests {
    @Test func fastExpMatchesTheLibrary() {
        var x: Float = -20
        while x <= 0 {
            let exact = Foundation.exp(x)
            #expect(abs(Kernels.fastExp(x) - exact) <= 1e-5 * exact, "exp(\(x))")
            x += 0.01
        }
    }
}

@Suite("vectorized kernels")
struct VectorKernelTests {
    @Test func geluMatchesTheErfFormula() {
        // Lengths that exercise both the 8-wide loop and the scalar tail.
        var values = (0..<1003).map { Float($0) / 50 - 10 }
        let expected = values.map { 0.5 * $0 * (1 + erff($0 / 2.0.squareRoot().float)) }
        values.withUnsafeMutableBufferPointer { Kernels.gelu($0.baseAddress!, count: $0.count) }
        for (a, b) in zip(values, expected) { #expect(abs(a - b) < 2e-5 * max(1, abs(b)), "\(a) vs \(b)") }
    }

    @Test func softmaxMatchesTheDefinitionAndIgnoresMaskedEntries() {
        var row = (0..<1501).map { Float(sin(Double($0))) * 8 }
        row[7] = -.infinity
        let maximum = row.max()!
        let exps = row.map { Foundation.exp(Double($0 - maximum)) }
        let total = exps.reduce(0, +)
        row.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, count: $0.count) }
        #expect(row[7] == 0)
        #expect(abs(row.reduce(0, +) - 1) < 1e-4)
        for (a, e) in zip(row, exps) { #expect(abs(Double(a) - e / total) < 1e-5) }
    }
}

private extension Double {
    var float: Float { Float(self) }
}
