import Foundation
import Testing
import StenoEngine

/// tiny.en in the two other precisions CTranslate2 publishes models in, made from the default float16 model by
/// `scripts/make-int8-model.py`: int8 weights with float32 per-row scales (int8_float32, as the converter's
/// `--quantization int8`) and all-float32. Both are real files, checked to load in CTranslate2 itself.
@Suite("int8 and float32 variants of tiny.en", .serialized)
struct ModelVariantTests {
    static let float16Engine: Result<WhisperEngine, any Error> = Result {
        try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2)
    }
    static let int8Engine: Result<WhisperEngine, any Error> = Result {
        try WhisperEngine(modelDirectory: try ModelVariantFixtures.int8.get(), threads: 2)
    }
    static let float32Engine: Result<WhisperEngine, any Error> = Result {
        try WhisperEngine(modelDirectory: try ModelVariantFixtures.float32.get(), threads: 2)
    }

    static func modelFile(_ directory: URL) throws -> ModelFile {
        try ModelFile(url: directory.appendingPathComponent("model.bin"))
    }

    static func modelSize(_ directory: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("model.bin").path)
        return (attributes[.size] as? NSNumber)?.intValue ?? 0
    }

    @Test func int8FileHoldsQuantizedWeightsThatDequantizeToTheOriginal() throws {
        let int8Directory = try ModelVariantFixtures.int8.get()
        let original = try Self.modelFile(ModelFixture.tinyEnglish)
        let quantized = try Self.modelFile(int8Directory)
        // One byte per weight instead of two: the file is about half the size of the float16 one.
        let ratio = Double(try Self.modelSize(int8Directory)) / Double(try Self.modelSize(ModelFixture.tinyEnglish))
        #expect(ratio > 0.45 && ratio < 0.6, "int8/float16 size ratio \(ratio)")

        let weights = original.variableNames.filter { $0.hasSuffix("/weight") }.sorted()
        // 2 convolutions + the embeddings + 4 encoder layers × 4 linears + 4 decoder layers × 7 linears.
        #expect(weights.count == 47)
        #expect(Set(quantized.variableNames) == Set(original.variableNames + weights.map { $0 + "_scale" }))
        for name in weights {
            let reference = try original.floats(name)
            let values = try quantized.floats(name)
            let scales = try quantized.floats(name + "_scale")
            #expect(values.count == reference.count)
            let rowSize = reference.count / scales.count
            var worst = 0.0
            for row in 0..<scales.count {
                // Rounding to the nearest step of 1/scale: off by at most half a step.
                let step = 1 / Double(scales[row])
                for i in row * rowSize..<(row + 1) * rowSize {
                    worst = max(worst, abs(Double(values[i]) - Double(reference[i])) / step)
                }
            }
            #expect(worst <= 0.5 + 1e-3, "\(name): off by \(worst) quantization steps")
        }
        // The tied output projection is an alias; its scale is found through the alias too.
        #expect(try quantized.floats("decoder/projection/weight") == quantized.floats("decoder/embeddings/weight"))
        // Biases, norms and position encodings stay float (float32 here): exactly the float16 values.
        for name in ["encoder/conv1/bias", "decoder/layer_norm/gamma", "decoder/position_encodings/encodings"] {
            #expect(try quantized.floats(name) == original.floats(name), "\(name)")
        }
    }

    @Test func float32FileHoldsExactlyTheFloat16Values() throws {
        let directory = try ModelVariantFixtures.float32.get()
        let original = try Self.modelFile(ModelFixture.tinyEnglish)
        let widened = try Self.modelFile(directory)
        let ratio = Double(try Self.modelSize(directory)) / Double(try Self.modelSize(ModelFixture.tinyEnglish))
        #expect(ratio > 1.9 && ratio < 2.1, "float32/float16 size ratio \(ratio)")
        #expect(Set(widened.variableNames) == Set(original.variableNames))
        for name in original.variableNames {
            #expect(try widened.floats(name) == original.floats(name), "\(name)")
        }
    }

    @Test func variantsLoadWithTheSameArchitecture() throws {
        let reference = try Self.float16Engine.get()
        for engine in [try Self.int8Engine.get(), try Self.float32Engine.get()] {
            #expect(engine.architecture == reference.architecture)
            #expect(engine.architecture.melBands == 80 && engine.architecture.width == 384)
            #expect(engine.architecture.encoderLayers == 4 && engine.architecture.decoderLayers == 4)
            #expect(!engine.isMultilingual)
            #expect(engine.supportedLanguages == ["en"])
        }
    }

    /// Word error rate over the five LibriVox clips, and the transcripts.
    static func librivoxErrorRate(_ engine: WhisperEngine) throws -> (wer: Double, texts: [String]) {
        var errors = 0.0, words = 0.0, texts: [String] = []
        for (id, reference) in try ModelFixture.librivoxTranscripts().sorted(by: { $0.key < $1.key }) {
            let samples = try AudioDecoder().decode(file: ModelFixture.librivox.appendingPathComponent(id + ".wav"))
            let result = try engine.transcribe(samples: samples)
            let count = Double(ModelFixture.words(reference).count)
            errors += ModelFixture.wordErrorRate(reference: reference, hypothesis: result.text) * count
            words += count
            texts.append(result.text)
        }
        return (errors / words, texts)
    }

    @Test func variantsTranscribeAsAccuratelyAsFloat16() throws {
        let float16 = try Self.librivoxErrorRate(try Self.float16Engine.get())
        let int8 = try Self.librivoxErrorRate(try Self.int8Engine.get())
        let float32 = try Self.librivoxErrorRate(try Self.float32Engine.get())
        print("LibriVox WER (beam 5): float16 \(float16.wer), int8 \(int8.wer), float32 \(float32.wer)")
        // float16 values widen to float32 exactly and the engine computes in float32: the same transcripts.
        #expect(float32.texts == float16.texts)
        // int8 rounding moves the weights by up to half a step: a few points at most.
        #expect(int8.wer <= float16.wer + 0.03, "int8 WER \(int8.wer) vs float16 \(float16.wer)")
        #expect(int8.wer < 0.10)
        #expect(int8.texts.allSatisfy { !$0.isEmpty })
    }
}
