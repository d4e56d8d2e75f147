public import Foundation

extension WhisperEngine {
    /// The languages a model directory accepts (`["en"]` for English-only models), read from the model's header
    /// and vocabulary without loading its weights: for a process that checks uploads but never transcribes.
    /// Throws `EngineError.invalidModel` like `init(modelDirectory:)` for a missing or broken model.
    public static func supportedLanguages(modelDirectory: URL) throws -> [String] {
        // The file is memory-mapped and only its tensor index is read.
        let file = try ModelFile(url: modelDirectory.appendingPathComponent("model.bin"))
        let architecture = try WhisperArchitecture(file: file)
        guard architecture.isMultilingual else { return ["en"] }
        let tokenizer = try WhisperTokenizer(modelDirectory: modelDirectory, vocabularySize: architecture.vocabularySize)
        return tokenizer.specials.languageCodes
    }
}
