public import Foundation
public import StenoEngine

/// What the workers need of a speech-to-text engine. The product wires `WhisperTranscriber`; tests may use a
/// double. Implementations are blocking: the worker pool calls them on threads of its own.
public protocol Transcriber: Sendable {
    /// Languages the model accepts (`["en"]` for English-only models); uploads asking for another get `422`.
    var supportedLanguages: Set<String> { get }
    /// Decodes and transcribes one file. Throws `EngineError` (whose `code` becomes the job's error code) or
    /// `JobFailure` for permanent failures; any other error is treated as transient and retried.
    func transcribe(
        file: URL, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck
    ) throws -> TranscriptionResult
}
