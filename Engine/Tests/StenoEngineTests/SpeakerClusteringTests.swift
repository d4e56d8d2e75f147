import Foundation
import StenoEngine
import Testing

/// The clustering behind speaker labels, on synthetic voice prints: unit vectors scattered around a few
/// centres, as GE2E embeddings of several speakers are.
@Suite struct SpeakerClusteringTests {
    /// `perSpeaker` prints around each of `speakers` random centres, interleaved as turns of a conversation
    /// (speaker of print i is i % speakers), with noise of about `spread` cosine distance.
    static func prints(speakers: Int, perSpeaker: Int, spread: Float, seed: UInt64) -> (prints: [[Float]], truth: [Int]) {
        var random = Generator(seed: seed)
        func unit(_ v: [Float]) -> [Float] {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
        func gaussian() -> Float {
            let u = max(1e-9, Float.random(in: 0..<1, using: &random)), v = Float.random(in: 0..<1, using: &random)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let centres = (0..<speakers).map { _ in unit((0..<256).map { _ in gaussian() }) }
        var prints: [[Float]] = [], truth: [Int] = []
        for i in 0..<(speakers * perSpeaker) {
            let speaker = i % speakers
            let noise = unit((0..<256).map { _ in gaussian() })
            prints.append(unit(zip(centres[speaker], noise).map { $0 + spread * $1 }))
            truth.append(speaker)
        }
        return (prints, truth)
    }

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Whether `labels` partition the prints exactly as `truth` does (whatever the numbering).
    static func samePartition(_ labels: [Int], _ truth: [Int]) -> Bool {
        var mapping: [Int: Int] = [:], reverse: [Int: Int] = [:]
        for (label, true_) in zip(labels, truth) {
            if mapping[label, default: true_] != true_ || reverse[true_, default: label] != label { return false }
            mapping[label] = true_
            reverse[true_] = label
        }
        return true
    }

    @Test(arguments: [1, 2, 3, 4, 6])
    func findsTheNumberOfSpeakers(speakers: Int) {
        // Spread 0.6: same-speaker similarity about 0.85, different speakers about 0 (random centres).
        let (prints, truth) = Self.prints(speakers: speakers, perSpeaker: 12, spread: 0.6, seed: UInt64(speakers))
        let labels = SpeakerClustering(threshold: 0.35).cluster(prints)
        #expect(Set(labels).count == speakers)
        #expect(Self.samePartition(labels, truth))
        // Numbered in order of first appearance.
        #expect(labels.prefix(speakers).elementsEqual(0..<speakers))
    }

    @Test func aGivenCountIsKeptEvenAgainstTheThreshold() {
        let (prints, _) = Self.prints(speakers: 3, perSpeaker: 10, spread: 0.6, seed: 7)
        #expect(Set(SpeakerClustering(threshold: 0.35).cluster(prints, count: 2)).count == 2)
        #expect(Set(SpeakerClustering(threshold: 0.35).cluster(prints, count: 5)).count == 5)
        // A threshold that would merge everything still leaves the minimum, one that would split everything
        // still merges down to the maximum.
        #expect(Set(SpeakerClustering(threshold: 2).cluster(prints, minimum: 3)).count == 3)
        #expect(Set(SpeakerClustering(threshold: 0).cluster(prints, maximum: 3)).count == 3)
    }

    @Test func closeSpeakersAreToldApartWhenTheCountIsGiven() {
        // Centres only moderately apart relative to the noise: the threshold alone may merge them, the count not.
        let (prints, truth) = Self.prints(speakers: 2, perSpeaker: 20, spread: 1.2, seed: 11)
        let labels = SpeakerClustering(threshold: 0.35).cluster(prints, count: 2)
        let right = zip(labels, truth).filter { $0 == $1 }.count
        #expect(max(right, labels.count - right) >= labels.count * 9 / 10)
    }

    @Test func fewPrints() {
        #expect(SpeakerClustering(threshold: 0.35).cluster([]) == [])
        #expect(SpeakerClustering(threshold: 0.35).cluster([[1, 0]]) == [0])
        #expect(SpeakerClustering(threshold: 0.35).cluster([[1, 0], [0, 1]]) == [0, 1])
        #expect(SpeakerClustering(threshold: 0.35).cluster([[1, 0], [0.99, 0.141]]) == [0, 0])
    }
}
