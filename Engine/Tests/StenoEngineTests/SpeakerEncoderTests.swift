import Foundation
import StenoEngine
import Testing

/// The native GE2E speaker encoder against the reference implementation's numbers (Resemblyzer 0.1.4 on
/// torch, written once by scripts/speaker-reference.py into Fixtures/ge2e-reference.json): mel frames,
/// partial-utterance slices, partial embeddings and utterance embeddings of two real voices.
@Suite struct SpeakerEncoderTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ge2e-reference.json")

    struct Reference: Decodable {
        struct Frame: Decodable { let index: Int; let values: [Double] }
        struct Partial: Decodable { let mel_frames: [Int]; let embedding: [Double] }
        struct Recording: Decodable {
            let name: String
            let source: String
            let ffmpeg_command: String?
            let sample_count: Int
            let padded_sample_count: Int
            let mel_frame_count: Int
            let mel_frames: [Frame]
            let partials: [Partial]
            let embedding: [Double]
        }
        let recordings: [Recording]
        let cosine_similarity: Double
    }

    /// The recording's samples as the reference read them: 16-bit PCM (resampled to 16 kHz by ffmpeg to
    /// 16-bit when it was not) over 32768.
    static func samples(_ recording: Reference.Recording) throws -> [Float] {
        let data = try AudioFixtures.run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-i", recording.source,
                                                    "-ar", "16000", "-ac", "1", "-f", "s16le", "-"])
        return data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)).map { Float($0) / 32768 } }
    }

    static func cosine(_ a: [Float], _ b: [Double]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * y; na += Double(x * x); nb += y * y }
        return dot / (na * nb).squareRoot()
    }

    @Test func embeddingsMatchTheReferenceImplementation() throws {
        let encoder = try SpeakerEncoder(file: SpeakerTranscriptionTests.speakerModel)
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.fixture))
        #expect(reference.recordings.count == 2)
        var utterances: [[Float]] = []
        for recording in reference.recordings {
            let samples = try Self.samples(recording)
            #expect(samples.count == recording.sample_count)

            // The mel frames of the padded utterance, to 1e-4 of the loudest frame's largest value.
            let padded = samples + [Float](repeating: 0, count: recording.padded_sample_count - samples.count)
            let mel = encoder.features.frames(of: padded)
            #expect(mel.count / SpeakerEncoder.melBands == recording.mel_frame_count)
            let loudest = recording.mel_frames.flatMap(\.values).max() ?? 1
            for frame in recording.mel_frames {
                let ours = mel[(frame.index * 40)..<((frame.index + 1) * 40)]
                let worst = zip(ours, frame.values).map { abs(Double($0) - $1) }.max()!
                #expect(worst <= 1e-4 * loudest, "\(recording.name) frame \(frame.index): \(worst) of \(loudest)")
            }

            let (embedding, partials) = encoder.embedUtterance(samples)
            #expect(partials.count == recording.partials.count, "\(recording.name)")
            // Within 3e-4 of values up to about 0.3: the LSTM's sigmoids and tanhs use a fast exponential (6e-6
            // relative error), whose error 160 recurrent steps carry forward.
            for (ours, theirs) in zip(partials, recording.partials) {
                let worst = zip(ours, theirs.embedding).map { abs(Double($0) - $1) }.max()!
                #expect(worst < 3e-4, "\(recording.name) partial \(theirs.mel_frames): \(worst)")
                #expect(Self.cosine(ours, theirs.embedding) > 0.99999)
            }
            let worst = zip(embedding, recording.embedding).map { abs(Double($0) - $1) }.max()!
            #expect(worst < 3e-4, "\(recording.name): \(worst)")
            #expect(Self.cosine(embedding, recording.embedding) > 0.99999)
            utterances.append(embedding)
        }
        // Two different voices: the same similarity as the reference's.
        let similarity = Self.cosine(utterances[0], utterances[1].map(Double.init))
        #expect(abs(similarity - reference.cosine_similarity) < 1e-4)
    }

    @Test func aMissingOrWrongFileIsAClearError() throws {
        #expect(throws: EngineError.self) { try SpeakerEncoder(file: URL(fileURLWithPath: "/nonexistent/ge2e.safetensors")) }
        // The Silero file is a tensor file, but not this one.
        #expect(throws: EngineError.self) { try SpeakerEncoder(file: SileroVADTests.model) }
    }
}
