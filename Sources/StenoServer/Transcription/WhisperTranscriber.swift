public import Foundation
public import StenoEngine
import Synchronization

/// The product's engine: probes the upload with ffprobe and refuses it when its stated duration is over the
/// server's limit (before spending anything on decoding), decodes with `AudioDecoder` (ffmpeg, sandboxed,
/// stopped at the limit since containers can lie or state none), then runs `WhisperEngine`. One engine (one loaded model) is shared by every worker; each call runs on the
/// worker's own inference thread.
///
/// A process that never transcribes (an API node) reads only the model's language list and never loads the
/// weights (`loadingModel: false`); the first transcription would load them.
public final class WhisperTranscriber: Transcriber {
    private let modelDirectory: URL
    private let voiceActivityModel: URL?
    private let threads: Int?
    private let loaded: Mutex<WhisperEngine?>
    /// ffmpeg/ffprobe with the server's sandbox limits.
    public let decoder: AudioDecoder
    private let maxAudioSeconds: Double
    public let supportedLanguages: Set<String>

    /// Loads the model (with `loadingModel: false`, only its language list); throws `EngineError.invalidModel`
    /// when it is missing or broken. Jobs asking for voice-activity detection need `voiceActivityModel`.
    public init(
        modelDirectory: URL, voiceActivityModel: URL? = nil, threads: Int?, maxAudioSeconds: Double, ffmpegPath: String = "ffmpeg",
        ffprobePath: String = "ffprobe", decoderTimeout: Double = 300, decoderCPUSeconds: Int? = nil,
        decoderMemoryBytes: Int = AudioDecoder.defaultMemoryBytes, scratchDirectory: URL? = nil, loadingModel: Bool = true
    ) throws {
        self.modelDirectory = modelDirectory
        self.voiceActivityModel = voiceActivityModel
        self.threads = threads
        let engine = loadingModel
            ? try WhisperEngine(modelDirectory: modelDirectory, threads: threads, voiceActivityModel: voiceActivityModel) : nil
        loaded = Mutex(engine)
        decoder = AudioDecoder(
            ffmpegPath: ffmpegPath, ffprobePath: ffprobePath, timeoutSeconds: decoderTimeout,
            cpuSeconds: decoderCPUSeconds, memoryBytes: decoderMemoryBytes, scratchDirectory: scratchDirectory)
        self.maxAudioSeconds = maxAudioSeconds
        supportedLanguages = Set(try engine?.supportedLanguages ?? WhisperEngine.supportedLanguages(modelDirectory: modelDirectory))
    }

    /// Whether the weights are in memory.
    public var isModelLoaded: Bool { loaded.withLock { $0 != nil } }

    /// The engine `steno serve` runs: model, threads, duration limit and decoder sandbox from the configuration.
    /// The weights are loaded only where workers run (an API node needs the language list alone).
    public convenience init(configuration: ServerConfiguration) throws {
        try self.init(
            modelDirectory: configuration.modelDirectory, voiceActivityModel: configuration.vadModel, threads: configuration.threads,
            maxAudioSeconds: configuration.maxAudioSeconds, ffmpegPath: configuration.ffmpegPath,
            decoderTimeout: configuration.decoderTimeout, decoderCPUSeconds: configuration.decoderCPUSeconds,
            decoderMemoryBytes: Int(configuration.decoderMemoryBytes),
            scratchDirectory: configuration.dataDirectory.appendingPathComponent("tmp", isDirectory: true),
            loadingModel: configuration.role.runsWorkers)
    }

    /// The loaded engine, loading it now if this process started without it.
    private func engine() throws -> WhisperEngine {
        try loaded.withLock { engine in
            if let engine { return engine }
            let fresh = try WhisperEngine(modelDirectory: modelDirectory, threads: threads, voiceActivityModel: voiceActivityModel)
            engine = fresh
            return fresh
        }
    }

    public func transcribe(
        file: URL, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck
    ) throws -> TranscriptionResult {
        let probe = try decoder.probe(file: file)
        guard probe.hasAudio else { throw EngineError.undecodableAudio("the file has no audio stream") }
        // A second of slack: stated durations are rounded, and estimated from the bitrate for some formats.
        if let stated = probe.duration, stated > maxAudioSeconds + 1 { throw tooLong(stated) }
        if isCancelled() { throw EngineError.cancelled }
        // Decoding stops at the limit whatever the container states, and the samples are spooled to disk
        // rather than held on the heap: a file that lies about its length costs neither memory nor hours.
        let audio = try decoder.decode(file: file, limitSeconds: maxAudioSeconds)
        if isCancelled() { throw EngineError.cancelled }
        return try engine().transcribe(audio: audio, options: options, progress: progress, isCancelled: isCancelled)
    }

    private func tooLong(_ seconds: Double) -> JobFailure {
        JobFailure(code: "audio_too_long",
                   message: "the recording lasts \(Int(seconds)) s; this server accepts at most \(Int(maxAudioSeconds)) s")
    }
}
