import Foundation
import Testing
import StenoEngine

/// Builds CTranslate2 `model.bin` bytes by hand, so parsing can be tested on files the converter never makes.
private struct ModelBinWriter {
    var bytes = Data()

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u16(UInt16(s.utf8.count + 1))
        bytes.append(contentsOf: s.utf8)
        u8(0)
    }
    mutating func variable(_ name: String, shape: [UInt32], dtype: UInt8, payload: Data) {
        string(name)
        u8(UInt8(shape.count))
        for d in shape { u32(d) }
        u8(dtype)
        u32(UInt32(payload.count))
        bytes.append(payload)
    }
    static func floats(_ values: [Float]) -> Data {
        var d = Data()
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }
    static func halves(_ values: [Float]) -> Data {
        var d = Data()
        for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    /// A version-6 file with an int8 weight (+ scale), a float16 bias, a float32 vector and an alias.
    static func sample() -> Data {
        var w = ModelBinWriter()
        w.u32(6)
        w.string("WhisperSpec")
        w.u32(3)
        w.u32(4)
        // int8 [2 × 3]: row 0 scale 127/3 (max |row| = 3), row 1 scale 127/1.
        let q: [Int8] = [127, -42, 0, 127, 64, -127]
        w.variable("layer/weight", shape: [2, 3], dtype: 1, payload: Data(q.map { UInt8(bitPattern: $0) }))
        w.variable("layer/weight_scale", shape: [2], dtype: 0, payload: floats([127.0 / 3.0, 127.0]))
        w.variable("layer/bias", shape: [2], dtype: 4, payload: halves([0.5, -1.25]))
        w.variable("plain", shape: [3], dtype: 0, payload: floats([1, 2, 3]))
        w.u32(1)
        w.string("tied/weight")
        w.string("layer/weight")
        return w.bytes
    }
}

@Suite("model.bin parsing")
struct ModelFileTests {
    @Test func readsInt8WithPerRowScalesFloat16AndAliases() throws {
        let file = try ModelFile(data: ModelBinWriter.sample(), fileName: "model.bin")
        #expect(file.binaryVersion == 6)
        let weight = try file.floats("layer/weight", shape: [2, 3])
        let expected: [Float] = [3, -42 * 3 / 127, 0, 1, 64 / 127, -1]
        for (a, b) in zip(weight, expected) { #expect(abs(a - b) < 1e-5) }
        #expect(try file.floats("layer/bias") == [0.5, -1.25])
        #expect(try file.floats("plain") == [1, 2, 3])
        // The alias resolves to the same data and the same scale.
        #expect(try file.floats("tied/weight") == weight)
    }

    @Test func wrongShapeIsAClearError() throws {
        let file = try ModelFile(data: ModelBinWriter.sample(), fileName: "model.bin")
        #expect(throws: EngineError.invalidModel(file: "model.bin", problem: "variable plain has shape [3], expected [4]")) {
            try file.floats("plain", shape: [4])
        }
    }

    @Test func everyTruncationIsAnErrorNamingTheFile() {
        let full = ModelBinWriter.sample()
        // Cut the file at every length short of complete: each must throw, none may crash.
        for length in 0..<full.count {
            do {
                _ = try ModelFile(data: full.prefix(length), fileName: "model.bin")
                Issue.record("a file truncated to \(length) of \(full.count) bytes parsed")
            } catch let error as EngineError {
                guard case let .invalidModel(file, problem) = error else {
                    Issue.record("unexpected error \(error)"); continue
                }
                #expect(file == "model.bin")
                #expect(problem.contains("truncated") || problem.contains("string"), "\(problem)")
            } catch {
                Issue.record("unexpected error type \(error)")
            }
        }
    }

    @Test func newerBinaryVersionIsRefused() {
        var data = ModelBinWriter.sample()
        data[0] = 7
        #expect(throws: EngineError.self) { try ModelFile(data: data, fileName: "model.bin") }
        do {
            _ = try ModelFile(data: data, fileName: "model.bin")
        } catch {
            #expect("\(error)".contains("unsupported binary version 7"))
        }
    }

    @Test func declaredSizeMustMatchShape() {
        var w = ModelBinWriter()
        w.u32(6); w.string("WhisperSpec"); w.u32(3); w.u32(1)
        w.variable("x", shape: [1_000_000, 1_000_000], dtype: 0, payload: ModelBinWriter.floats([1]))
        w.u32(0)
        #expect(throws: EngineError.self) { try ModelFile(data: w.bytes, fileName: "model.bin") }
    }

    @Test func realTinyEnglishModelLoads() throws {
        let file = try ModelFile(url: ModelFixture.tinyEnglish.appendingPathComponent("model.bin"))
        #expect(file.binaryVersion == 6)
        #expect(file.variableNames.count == 148)
        let architecture = try WhisperArchitecture(file: file)
        #expect(architecture.width == 384)
        #expect(architecture.heads == 6)
        #expect(architecture.encoderLayers == 4)
        #expect(architecture.decoderLayers == 4)
        #expect(architecture.melBands == 80)
        #expect(architecture.vocabularySize == 51864)
        #expect(!architecture.isMultilingual)
    }

    @Test func missingOrTruncatedModelDirectoryIsAClearError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steno-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let real = try Data(contentsOf: ModelFixture.tinyEnglish.appendingPathComponent("model.bin"))
        try real.prefix(real.count / 2).write(to: directory.appendingPathComponent("model.bin"))
        for name in ["config.json", "vocabulary.txt"] {
            try FileManager.default.copyItem(at: ModelFixture.tinyEnglish.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        do {
            _ = try WhisperEngine(modelDirectory: directory)
            Issue.record("a half model loaded")
        } catch let error as EngineError {
            #expect(error.code == "invalid_model")
            #expect("\(error)".contains("model.bin"))
            #expect("\(error)".contains("truncated"))
        }
        #expect(throws: EngineError.self) { try WhisperEngine(modelDirectory: directory.appendingPathComponent("nope")) }
    }
}
