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

/// The speech regions of the reference's probabilities, by the reference's rules, for each of its parameter
/// sets: silero-vad's defaults, faster-whisper's, and a 2 s maximum that forces cuts.
@Suite struct SpeechRegionTests {
    struct Reference: Decodable {
        struct Parameters: Decodable {
            let threshold: Double
            let neg_threshold: Double
            let min_speech_duration_ms: Double
            let max_speech_duration_s: Double
            let min_silence_duration_ms: Double
            let speech_pad_ms: Double
        }
        struct Input: Decodable {
            let name: String
            let sample_count: Int
            let probabilities: [Float]
            let timestamps: [String: [Region]]
        }
        struct Region: Decodable { let start: Int; let end: Int }
        let parameter_sets: [String: Parameters]
        let inputs: [Input]
    }

    @Test func regionsMatchTheReferenceImplementation() throws {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let reference = try decoder.decode(Reference.self, from: Data(contentsOf: SileroVADTests.fixture))
        #expect(reference.parameter_sets.count == 3)
        for (name, parameters) in reference.parameter_sets {
            var detection = SpeechDetection()
            detection.threshold = parameters.threshold
            detection.negativeThreshold = parameters.neg_threshold
            detection.minSpeechSeconds = parameters.min_speech_duration_ms / 1000
            detection.maxSpeechSeconds = parameters.max_speech_duration_s
            detection.minSilenceSeconds = parameters.min_silence_duration_ms / 1000
            detection.speechPadSeconds = parameters.speech_pad_ms / 1000
            for input in reference.inputs {
                let expected = try #require(input.timestamps[name]).map { SpeechRegion(start: $0.start, end: $0.end) }
                let found = detection.regions(probabilities: input.probabilities, sampleCount: input.sample_count)
                #expect(found == expected, "\(name) on \(input.name)")
            }
        }
        // The preset says what faster-whisper's VadOptions say.
        let fasterWhisper = try #require(reference.parameter_sets["faster-whisper-defaults"])
        #expect(SpeechDetection.fasterWhisper.minSilenceSeconds * 1000 == fasterWhisper.min_silence_duration_ms)
        #expect(SpeechDetection.fasterWhisper.speechPadSeconds * 1000 == fasterWhisper.speech_pad_ms)
    }

    @Test func silenceAloneHasNoSpeech() {
        let regions = SpeechDetection().regions(probabilities: [Float](repeating: 0.01, count: 900), sampleCount: 900 * 512)
        #expect(regions.isEmpty)
    }
}
