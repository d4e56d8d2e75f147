import Foundation
import StenoEngine
import Testing

/// The native Silero VAD against the reference implementation's numbers (silero-vad 6.2.3, written once by
/// scripts/silero-reference.py into Fixtures/silero-reference.json): every window's speech probability of a
/// real recording, alone and between two 3 s silences, within 1e-3.
@Suite struct SileroVADTests {
    static let model = IOTestSupport.repositoryRoot.appendingPathComponent("models/silero-vad/silero_vad.safetensors")
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/silero-reference.json")

    struct Reference: Decodable {
        struct Input: Decodable {
            let name: String
            let sample_count: Int
            let probabilities: [Double]
        }
        let inputs: [Input]
    }

    @Test func probabilitiesMatchTheReferenceImplementation() throws {
        let vad = try SileroVAD(file: Self.model)
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixture))
        let recording = try AudioDecoder().decode(file: IOTestSupport.librivoxRecording)
        let silence = [Float](repeating: 0, count: 48000)
        let inputs: [String: [Float]] = [
            "librivox-0870": recording,
            "librivox-0870-silence-3s": silence + recording + silence,
        ]
        for expected in reference.inputs {
            let samples = try #require(inputs[expected.name], "no input made for \(expected.name)")
            #expect(samples.count == expected.sample_count)
            let probabilities = samples.withUnsafeBufferPointer { vad.speechProbabilities($0) }
            #expect(probabilities.count == expected.probabilities.count)
            let worst = zip(probabilities, expected.probabilities).map { abs(Double($0) - $1) }.max() ?? .infinity
            #expect(worst < 1e-3, "\(expected.name): largest difference \(worst)")
            // Speech where the reference says speech, silence where it says silence.
            #expect(zip(probabilities, expected.probabilities).allSatisfy { ($0 >= 0.5) == ($1 >= 0.5) })
        }
    }

    @Test func aFileThatIsNotATensorFileIsRefused() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-model-\(UUID().uuidString).safetensors")
        try Data("not a tensor file".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: EngineError.self) { try SileroVAD(file: file) }
    }
}
