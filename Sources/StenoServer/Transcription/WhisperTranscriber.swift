public import Foundation
public import StenoEngine

/// The product's engine: probes the upload with ffprobe and refuses it when its stated duration is over the
/// server's limit (before spending anything on decoding), decodes with `AudioDecoder` (ffmpeg, sandboxed,
/// stopped at the limit since containers can lie or state none), then runs the `WhisperEngine` of the job's
/// model. Each call runs on the worker's own inference thread.
///
/// Models are served by name (`ModelCatalog`). At start only their language lists are read; the default model
/// is loaded where workers run, the others when a job first asks for one (`LoadedModels` keeps them within the
/// memory budget). A process that never transcribes (an API node) loads no weights (`loadingModel: false`).
public final class WhisperTranscriber: Transcriber {
    public let models: ModelCatalog
    private let loaded: LoadedModels<WhisperEngine>
    /// ffmpeg/ffprobe with the server's sandbox limits.
    public let decoder: AudioDecoder
    private let maxAudioSeconds: Double

    /// Reads every model's language list (throws `EngineError.invalidModel` when one is missing or broken) and,
    /// with `loadingModel`, loads the default model. Jobs asking for voice-activity detection need
    /// `voiceActivityModel`. `memoryBudget` bounds the bytes of models kept loaded at once (nil: no bound).
    public init(
        models sources: [ModelSource], defaultModel: String? = nil, memoryBudget: Int64? = nil,
        voiceActivityModel: URL? = nil, speakerModel: URL? = nil, threads: Int?, maxAudioSeconds: Double, ffmpegPath: String = "ffmpeg",
        ffprobePath: String = "ffprobe", decoderTimeout: Double = 300, decoderCPUSeconds: Int? = nil,
        decoderMemoryBytes: Int = AudioDecoder.defaultMemoryBytes, scratchDirectory: URL? = nil, loadingModel: Bool = true
    ) throws {
        var entries: [ModelCatalog.Entry] = []
        var sizes: [String: Int64] = [:]
        for source in sources {
            entries.append(.init(name: source.name, languages: Set(try WhisperEngine.supportedLanguages(modelDirectory: source.directory))))
            sizes[source.name] = Self.memoryEstimate(source.directory)
        }
        do {
            models = try ModelCatalog(entries: entries, defaultName: defaultModel)
        } catch let unknown as ModelNotServed {
            throw ConfigurationError(description: "--default-model/STENO_DEFAULT_MODEL=\(unknown.requested) is none of the served models (\(unknown.served.joined(separator: ", ")))")
        }
        let directories = Dictionary(uniqueKeysWithValues: sources.map { ($0.name, $0.directory) })
        loaded = try LoadedModels(bytes: sizes, budget: memoryBudget) { name in
            try WhisperEngine(modelDirectory: directories[name]!, threads: threads, voiceActivityModel: voiceActivityModel, speakerModel: speakerModel)
        }
        decoder = AudioDecoder(
            ffmpegPath: ffmpegPath, ffprobePath: ffprobePath, timeoutSeconds: decoderTimeout,
            cpuSeconds: decoderCPUSeconds, memoryBytes: decoderMemoryBytes, scratchDirectory: scratchDirectory)
        self.maxAudioSeconds = maxAudioSeconds
        // A broken default model (or VAD file) stops the start, not the first job.
        if loadingModel { try loaded.withModel(models.defaultName) { _ in } }
    }

    /// One model, served under its folder's name.
    public convenience init(
        modelDirectory: URL, voiceActivityModel: URL? = nil, speakerModel: URL? = nil, threads: Int?, maxAudioSeconds: Double, ffmpegPath: String = "ffmpeg",
        ffprobePath: String = "ffprobe", decoderTimeout: Double = 300, decoderCPUSeconds: Int? = nil,
        decoderMemoryBytes: Int = AudioDecoder.defaultMemoryBytes, scratchDirectory: URL? = nil, loadingModel: Bool = true
    ) throws {
        try self.init(
            models: [ModelSource(directory: modelDirectory)], voiceActivityModel: voiceActivityModel, speakerModel: speakerModel, threads: threads,
            maxAudioSeconds: maxAudioSeconds, ffmpegPath: ffmpegPath, ffprobePath: ffprobePath, decoderTimeout: decoderTimeout,
            decoderCPUSeconds: decoderCPUSeconds, decoderMemoryBytes: decoderMemoryBytes, scratchDirectory: scratchDirectory,
            loadingModel: loadingModel)
    }

    /// The engine `steno serve` runs: models, threads, duration limit and decoder sandbox from the configuration.
    /// Weights are loaded only where workers run (an API node needs the language lists alone).
    public convenience init(configuration: ServerConfiguration) throws {
        try self.init(
            models: configuration.models, defaultModel: configuration.defaultModel, memoryBudget: configuration.modelMemoryBytes,
            voiceActivityModel: configuration.vadModel, speakerModel: configuration.speakerModel, threads: configuration.threads,
            maxAudioSeconds: configuration.maxAudioSeconds, ffmpegPath: configuration.ffmpegPath,
            decoderTimeout: configuration.decoderTimeout, decoderCPUSeconds: configuration.decoderCPUSeconds,
            decoderMemoryBytes: Int(configuration.decoderMemoryBytes),
            scratchDirectory: configuration.dataDirectory.appendingPathComponent("tmp", isDirectory: true),
            loadingModel: configuration.role.runsWorkers)
    }

    /// Whether the default model's weights are in memory.
    public var isModelLoaded: Bool { loadedModels.contains(models.defaultName) }

    public var loadedModels: [String] { loaded.loadedNames }

    /// Memory a loaded model takes, for the budget: twice its weight file, since float16 weights the engine
    /// computes with in float32 are widened (an upper bound; measured resident growth is about 1.3x the file).
    static func memoryEstimate(_ directory: URL) -> Int64 {
        let size = (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("model.bin").path)[.size]) as? NSNumber
        return 2 * (size?.int64Value ?? 0)
    }

    public func transcribe(
        file: URL, model: String, options: TranscriptionOptions,
        progress: @escaping TranscriptionProgress, isCancelled: @escaping CancellationCheck, text: @escaping TranscriptionText
    ) throws -> TranscriptionResult {
        let probe = try decoder.probe(file: file)
        guard probe.hasAudio else { throw EngineError.undecodableAudio("the file has no audio stream") }
        // A second of slack: stated durations are rounded, and estimated from the bitrate for some formats.
        if let stated = probe.duration, stated > maxAudioSeconds + 1 { throw tooLong(stated) }
        if isCancelled() { throw EngineError.cancelled }
        // Decoding stops at the limit whatever the container states, and the samples are spooled to disk
        // rather than held on the heap: a file that lies about its length costs neither memory nor hours.
        if options.multichannel {
            let channels = try decoder.decodeChannels(file: file, limitSeconds: maxAudioSeconds)
            if isCancelled() { throw EngineError.cancelled }
            return try withModel(model, isCancelled: isCancelled) { engine in
                try engine.transcribe(channels: channels, options: options, progress: progress, isCancelled: isCancelled, text: text)
            }
        }
        let audio = try decoder.decode(file: file, limitSeconds: maxAudioSeconds)
        if isCancelled() { throw EngineError.cancelled }
        return try withModel(model, isCancelled: isCancelled) { engine in
            try engine.transcribe(audio: audio, options: options, progress: progress, isCancelled: isCancelled, text: text)
        }
    }

    private func withModel(
        _ model: String, isCancelled: @escaping CancellationCheck, _ body: (WhisperEngine) throws -> TranscriptionResult
    ) throws -> TranscriptionResult {
        do {
            return try loaded.withModel(model, isCancelled: isCancelled, body)
        } catch let unknown as ModelNotServed {
            throw JobFailure(code: "model_not_found", message: unknown.description)
        }
    }

    private func tooLong(_ seconds: Double) -> JobFailure {
        JobFailure(code: "audio_too_long",
                   message: "the recording lasts \(Int(seconds)) s; this server accepts at most \(Int(maxAudioSeconds)) s")
    }
}
