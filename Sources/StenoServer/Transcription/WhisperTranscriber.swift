public import Foundation
public import StenoEngine

/// The product's engine: decodes with `AudioDecoder` (ffmpeg), checks the duration against the server's limit,
/// then runs `WhisperEngine`. One engine (one loaded model) is shared by every worker; each call runs on the
/// worker's own inference thread.
public final class WhisperTranscriber: Transcriber {
    private let engine: WhisperEngine
    private let decoder: AudioDecoder
    private let maxAudioSeconds: Double
    public let supportedLanguages: Set<String>

    /// Loads the model; throws `EngineError.invalidModel` when it is missing or broken.
    public init(modelDirectory: URL, threads: Int?, maxAudioSeconds: Double, ffmpegPath: String = "ffmpeg", ffprobePath: String = "ffprobe") throws {
        engine = try WhisperEngine(modelDirectory: modelDirectory, threads: threads)
        decoder = AudioDecoder(ffmpegPath: ffmpegPath, ffprobePath: ffprobePath)
        self.maxAudioSeconds = maxAudioSeconds
        supportedLanguages = Set(engine.supportedLanguages)
    }

    public func transcribe(
        file: URL, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck
    ) throws -> TranscriptionResult {
        let samples = try decoder.decode(file: file)
        let seconds = Double(samples.count) / Double(AudioDecoder.sampleRate)
        guard seconds <= maxAudioSeconds else {
            throw JobFailure(
                code: "audio_too_long",
                message: "the recording lasts \(Int(seconds)) s; this server accepts at most \(Int(maxAudioSeconds)) s")
        }
        if isCancelled() { throw EngineError.cancelled }
        return try engine.transcribe(samples: samples, options: options, progress: progress, isCancelled: isCancelled)
    }
}
