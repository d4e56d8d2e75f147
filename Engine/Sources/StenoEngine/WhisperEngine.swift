public import Foundation

/// A loaded Whisper model, ready to transcribe. Thread-safe: the weights are immutable and each call keeps its
/// state on its own stack, so several threads may transcribe at once with one engine.
///
/// Transcription is blocking and CPU-heavy: call it from a thread of your own, never from Swift's cooperative
/// thread pool or an event loop.
public final class WhisperEngine: Sendable {
    public let architecture: WhisperArchitecture
    public let tokenizer: WhisperTokenizer
    let config: WhisperModelConfig
    let encoder: WhisperEncoder
    let decoder: WhisperDecoder
    let melSpectrogram: LogMelSpectrogram
    /// Silero VAD, for transcriptions with `TranscriptionOptions.vad` (`nil` when not loaded).
    public let voiceActivity: SileroVAD?
    /// The GE2E speaker encoder, for transcriptions with speaker labels (`nil` when not loaded).
    public let speakerEncoder: SpeakerEncoder?

    /// Loads a CTranslate2 Whisper model directory (`model.bin`, `config.json`, `vocabulary.txt|json`).
    /// - Parameters:
    ///   - threads: OpenBLAS threads for matrix products (default: all cores; process-wide).
    ///   - voiceActivityModel: the Silero VAD tensor file (`models/silero-vad/silero_vad.safetensors`), needed
    ///     by transcriptions that ask for voice-activity detection or speaker labels.
    ///   - speakerModel: the GE2E speaker-encoder tensor file (`models/speaker-encoder/ge2e.safetensors`),
    ///     needed by transcriptions that ask for speaker labels.
    public init(modelDirectory: URL, threads: Int? = nil, voiceActivityModel: URL? = nil, speakerModel: URL? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelDirectory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EngineError.invalidModel(file: modelDirectory.lastPathComponent, problem: "no such model directory")
        }
        BLAS.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let file = try ModelFile(url: modelDirectory.appendingPathComponent("model.bin"))
        let architecture = try WhisperArchitecture(file: file)
        self.architecture = architecture
        config = try WhisperModelConfig.load(directory: modelDirectory, architecture: architecture)
        tokenizer = try WhisperTokenizer(modelDirectory: modelDirectory, vocabularySize: architecture.vocabularySize)
        encoder = WhisperEncoder(weights: try EncoderWeights(file: file, architecture: architecture), architecture: architecture)
        decoder = WhisperDecoder(weights: try DecoderWeights(file: file, architecture: architecture), architecture: architecture)
        melSpectrogram = LogMelSpectrogram(melBands: architecture.melBands)
        do {
            voiceActivity = try voiceActivityModel.map { try SileroVAD(file: $0) }
        } catch let EngineError.invalidModel(_, problem) {
            // Say which file and what it is for: the error is usually met as a server that does not start.
            throw EngineError.invalidModel(
                file: voiceActivityModel!.path,
                problem: "\(problem); it is the Silero VAD file (scripts/install-vad-model.sh installs it; --vad-model points to it)")
        }
        speakerEncoder = try speakerModel.map { try SpeakerEncoder(file: $0) }
    }

    public var isMultilingual: Bool { architecture.isMultilingual }

    /// Language codes this model accepts: `["en"]` for English-only models.
    public var supportedLanguages: [String] { isMultilingual ? tokenizer.specials.languageCodes : ["en"] }

    /// Floating-point operations the encoder performs per 30 s window (for GFLOP/s reports).
    public var encoderFlopsPerWindow: Double { encoder.flopsPerWindow }

    /// Transcribes 16 kHz mono samples. Calls `progress` after each 30 s window and stops with
    /// `EngineError.cancelled` when `isCancelled` answers true between windows.
    public func transcribe(
        samples: [Float], options: TranscriptionOptions = TranscriptionOptions(),
        progress: TranscriptionProgress? = nil, isCancelled: CancellationCheck? = nil
    ) throws -> TranscriptionResult {
        try transcribe(audio: DecodedAudio(samples: samples), options: options, progress: progress, isCancelled: isCancelled)
    }

    /// Transcribes decoded audio in place (a mapped spool file is read, not copied). `text` receives each
    /// window's text as soon as the window is decoded (in order; joined, they are the result's text untrimmed).
    public func transcribe(
        audio: DecodedAudio, options: TranscriptionOptions = TranscriptionOptions(),
        progress: TranscriptionProgress? = nil, isCancelled: CancellationCheck? = nil, text: TranscriptionText? = nil
    ) throws -> TranscriptionResult {
        guard let speakerOptions = options.speakers else {
            // The features are computed from the samples at once; the samples are not needed after that.
            var transcription = try audio.withSamples { try LongFormTranscription(engine: self, samples: $0, options: options) }
            return try transcription.run(progress: progress, isCancelled: isCancelled, text: text)
        }
        let diarized = try transcribeWithSpeakers(audio, options: options, speakerOptions: speakerOptions, firstLabel: 1,
                                                  progress: progress, isCancelled: isCancelled, text: text)
        var result = diarized.result
        result.summariseSpeakers()
        return result
    }

    /// Decodes `file` with ffmpeg (or the WAV fast path) and transcribes it.
    public func transcribe(
        file: URL, options: TranscriptionOptions = TranscriptionOptions(), decoder audioDecoder: AudioDecoder = AudioDecoder(),
        progress: TranscriptionProgress? = nil, isCancelled: CancellationCheck? = nil
    ) throws -> TranscriptionResult {
        if options.multichannel {
            let channels = try audioDecoder.decodeChannels(file: file, limitSeconds: nil)
            return try transcribe(channels: channels, options: options, progress: progress, isCancelled: isCancelled)
        }
        let samples = try audioDecoder.decode(file: file)
        return try transcribe(samples: samples, options: options, progress: progress, isCancelled: isCancelled)
    }

    /// Encoder timing for benchmarks: encodes one window of silence-level features and returns the seconds taken.
    public func timeEncoderWindow() -> Double {
        let window = [Float](repeating: -0.5, count: architecture.melBands * encoder.inputFrames)
        let start = DispatchTime.now().uptimeNanoseconds
        _ = encoder.encode(window)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
