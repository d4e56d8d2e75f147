import Foundation
import StenoEngine
import Testing

/// The clustering behind speaker labels, on synthetic voice prints: unit vectors scattered around a few
/// centres, as GE2E embeddings of several speakers are.
@Suite struct SpeakerClusteringTests {
    /// `perSpeaker` prints around each of `speakers` random centres, interleaved as turns of a conversation
    /// (speaker of print i is i % speakers), with noise of about `spread` cosine distance.
    /// `alike` mixes a direction common to every centre in, so that different voices are as similar as real
    /// GE2E prints of different people are (2/3: centre similarity about 0.8).
    static func prints(speakers: Int, perSpeaker: Int, spread: Float, seed: UInt64, alike: Float = 0) -> (prints: [[Float]], truth: [Int]) {
        prints(sizes: [Int](repeating: perSpeaker, count: speakers), spread: spread, seed: seed, alike: alike)
    }

    /// As above with `sizes[s]` prints of speaker s, the turns interleaved while each speaker has prints left.
    static func prints(sizes: [Int], spread: Float, seed: UInt64, alike: Float = 0) -> (prints: [[Float]], truth: [Int]) {
        let speakers = sizes.count
        var random = Generator(seed: seed)
        func unit(_ v: [Float]) -> [Float] {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
        func gaussian() -> Float {
            let u = max(1e-9, Float.random(in: 0..<1, using: &random)), v = Float.random(in: 0..<1, using: &random)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let common = unit((0..<256).map { _ in gaussian() })
        let centres = (0..<speakers).map { _ in
            unit(zip(common, unit((0..<256).map { _ in gaussian() })).map { alike * $0 + (1 - alike) * $1 })
        }
        var prints: [[Float]] = [], truth: [Int] = []
        var left = sizes
        var turn = 0
        while left.contains(where: { $0 > 0 }) {
            let speaker = turn % speakers
            turn += 1
            guard left[speaker] > 0 else { continue }
            left[speaker] -= 1
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
        let labels = SpeakerClustering().cluster(prints)
        #expect(Set(labels).count == speakers)
        #expect(Self.samePartition(labels, truth))
        // Numbered in order of first appearance.
        #expect(labels.prefix(speakers).elementsEqual(0..<speakers))
    }

    @Test func aGivenCountOrBoundIsKept() {
        let (prints, _) = Self.prints(speakers: 3, perSpeaker: 10, spread: 0.6, seed: 7)
        #expect(Set(SpeakerClustering().cluster(prints, count: 2)).count == 2)
        #expect(Set(SpeakerClustering().cluster(prints, count: 5)).count == 5)
        #expect(Set(SpeakerClustering().cluster(prints, minimum: 4)).count >= 4)
        #expect(Set(SpeakerClustering().cluster(prints, maximum: 2)).count == 2)
        // The few-prints fallback keeps them too, whatever its threshold says.
        var fallback = SpeakerClustering()
        fallback.fewestForGraph = 100
        fallback.threshold = 2
        #expect(Set(fallback.cluster(prints, minimum: 3)).count == 3)
        fallback.threshold = 0
        #expect(Set(fallback.cluster(prints, maximum: 3)).count == 3)
    }

    @Test(arguments: [2, 3, 4])
    func voicesAsAlikeAsRealOnesAreCounted(speakers: Int) {
        // Centres about 0.8 alike and prints about 0.85 to their centre, as GE2E gives on the benchmark's voices:
        // no single similarity cut separates these, the graph does.
        let (prints, truth) = Self.prints(speakers: speakers, perSpeaker: 30, spread: 0.62, seed: 100 + UInt64(speakers), alike: 0.67)
        let labels = SpeakerClustering().cluster(prints)
        #expect(Set(labels).count == speakers)
        #expect(Self.samePartition(labels, truth))
    }

    @Test func aSpeakerWithFewTurnsIsStillFound() {
        let (prints, truth) = Self.prints(sizes: [40, 40, 10], spread: 0.6, seed: 21)
        let labels = SpeakerClustering().cluster(prints)
        #expect(Set(labels).count == 3)
        #expect(Self.samePartition(labels, truth))
    }

    @Test func aLongRecordingIsClusteredFromASample() {
        // More prints than the graph takes: an even sample is clustered, the rest join the nearest centre.
        var clustering = SpeakerClustering()
        clustering.largestGraph = 200
        let (interleaved, speakerOf) = Self.prints(speakers: 3, perSpeaker: 150, spread: 0.6, seed: 5)
        // As windows come: turns of 7 consecutive prints of one speaker (not a period the sample could alias).
        let order = (0..<3).flatMap { s in interleaved.indices.filter { speakerOf[$0] == s } }
        let turns = stride(from: 0, to: 150, by: 7).flatMap { t in (0..<3).flatMap { s in (t..<min(150, t + 7)).map { order[s * 150 + $0] } } }
        let prints = turns.map { interleaved[$0] }, truth = turns.map { speakerOf[$0] }
        let labels = clustering.cluster(prints)
        #expect(Set(labels).count == 3)
        #expect(Self.samePartition(labels, truth))
    }

    @Test func closeSpeakersAreToldApartWhenTheCountIsGiven() {
        // Centres only moderately apart relative to the noise: the threshold alone may merge them, the count not.
        let (prints, truth) = Self.prints(speakers: 2, perSpeaker: 20, spread: 1.2, seed: 11)
        let labels = SpeakerClustering().cluster(prints, count: 2)
        let right = zip(labels, truth).filter { $0 == $1 }.count
        #expect(max(right, labels.count - right) >= labels.count * 9 / 10)
    }

    @Test func fewPrints() {
        #expect(SpeakerClustering().cluster([]) == [])
        #expect(SpeakerClustering().cluster([[1, 0]]) == [0])
        #expect(SpeakerClustering().cluster([[1, 0], [0, 1]]) == [0, 1])
        #expect(SpeakerClustering().cluster([[1, 0], [0.99, 0.141]]) == [0, 0])
    }
}
