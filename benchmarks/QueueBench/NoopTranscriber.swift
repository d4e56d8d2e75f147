import Foundation
import StenoEngine
import StenoServer

/// The benchmark's job handler: it reads nothing and returns an empty transcript at once (or after `delay`,
/// to hold a job in flight), so the figures measure the queue — claims, leases, completions — not the engine.
struct NoopTranscriber: Transcriber {
    let models = ModelCatalog.single(languages: ["en"])
    var delay: TimeInterval = 0

    func transcribe(
        file: URL, model: String, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck, text: @escaping TranscriptionText
    ) throws -> TranscriptionResult {
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        return TranscriptionResult(text: "", language: "en", languageProbability: 1, duration: 1, segments: [])
    }
}
