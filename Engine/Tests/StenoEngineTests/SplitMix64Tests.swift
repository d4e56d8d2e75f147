import StenoEngine
import Testing

@Suite struct SplitMix64Tests {
    /// The sequence is the published SplitMix64 one (the reference implementation's outputs for seed 1234567),
    /// so sampled transcriptions, the server's model tests and the benchmark's arrivals stay reproducible.
    @Test func matchesTheReferenceSequence() {
        var random = SplitMix64(seed: 1_234_567)
        let expected: [UInt64] = [
            6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
            4_593_380_528_125_082_431, 16_408_922_859_458_223_821,
        ]
        #expect((0..<5).map { _ in random.next() } == expected)
    }

    /// `nextUnit` stays in [0, 1) and spreads over it: 10,000 draws have a mean near one half.
    @Test func unitValuesAreInRangeAndSpread() {
        var random = SplitMix64(seed: 7)
        let draws = (0..<10_000).map { _ in random.nextUnit() }
        #expect(draws.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = draws.reduce(0, +) / Double(draws.count)
        #expect(abs(mean - 0.5) < 0.02)
    }
}
