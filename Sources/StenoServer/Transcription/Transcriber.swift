public import Foundation
public import StenoEngine

/// What the workers need of a speech-to-text engine. The product wires `WhisperTranscriber`; tests may use a
/// double. Implementations are blocking: the worker pool calls them on threads of its own.
public protocol Transcriber: Sendable {
    /// The models served, by name, with the languages each accepts; uploads asking for another model or
    /// language get `422`.
    var models: ModelCatalog { get }
    /// Names of the models whose weights are in memory now.
    var loadedModels: [String] { get }
    /// Decodes and transcribes one file with the named model; `text` gets each window's text as it is decoded.
    /// Throws `EngineError` (whose `code` becomes the job's error code) or `JobFailure` for permanent failures;
    /// any other error is treated as transient and retried.
    func transcribe(
        file: URL, model: String, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck, text: @escaping TranscriptionText
    ) throws -> TranscriptionResult
}

extension Transcriber {
    /// A transcription whose growing text nobody follows.
    public func transcribe(
        file: URL, model: String, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck
    ) throws -> TranscriptionResult {
        try transcribe(file: file, model: model, options: options, progress: progress, isCancelled: isCancelled, text: { _ in })
    }

    /// Doubles hold no weights: the default model counts as loaded.
    public var loadedModels: [String] { [models.defaultName] }
}
