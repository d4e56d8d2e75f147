public import Foundation

/// What a caller asks of one transcription. Defaults follow faster-whisper's `transcribe`.
public struct TranscriptionOptions: Sendable, Hashable, Codable {
    /// ISO 639-1 code (`en`, `de`, …). `nil` detects the language on multilingual models and means
    /// `en` on English-only ones.
    public var language: String?
    /// Beam width; 1 decodes greedily.
    public var beamSize: Int
    /// Word-level timestamps with probabilities (alignment heads + DTW).
    public var wordTimestamps: Bool
    /// Text that conditions the first window (names, jargon, style).
    public var initialPrompt: String?
    /// Feed the previous window's text as the prompt of the next.
    public var conditionOnPreviousText: Bool
    /// Temperatures tried in turn when a window's decoding looks like a failure.
    public var temperatures: [Float]
    /// Fall back to the next temperature above this gzip compression ratio (repetition loops).
    public var compressionRatioThreshold: Float?
    /// Fall back to the next temperature below this average log-probability.
    public var logProbThreshold: Float?
    /// A window whose no-speech probability is above this (and whose log-probability is low) is silence.
    public var noSpeechThreshold: Float?
    /// Emit segment timestamps (the long-form seek uses them).
    public var timestamps: Bool
    /// Voice-activity detection: decode only the speech Silero VAD finds (the engine needs its model), with
    /// every time mapped back to the recording. `nil` decodes everything, as faster-whisper's default.
    public var vad: SpeechDetection?
    /// Transcribe in the language spoken, or translate to English (multilingual models only).
    public var task: WhisperTask
    /// Detect the language of every window and decode each in its own (code-switching; multilingual models
    /// only). Segments carry their `language`.
    public var multilingual: Bool
    /// Speaker labels: who speaks when, from voice prints over the speech (the engine needs the Silero VAD and
    /// speaker-encoder models). `nil` labels no one.
    public var speakers: SpeakerOptions?
    /// Transcribe every audio channel on its own and merge the segments in time order, each with its
    /// `channel` (0-based). Applies where the engine decodes the file (`transcribe(file:)`, or a server's
    /// decoder); a mono recording is one channel.
    public var multichannel: Bool

    public init(
        language: String? = nil,
        beamSize: Int = 5,
        wordTimestamps: Bool = false,
        initialPrompt: String? = nil,
        conditionOnPreviousText: Bool = true,
        temperatures: [Float] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        compressionRatioThreshold: Float? = 2.4,
        logProbThreshold: Float? = -1.0,
        noSpeechThreshold: Float? = 0.6,
        timestamps: Bool = true,
        vad: SpeechDetection? = nil,
        task: WhisperTask = .transcribe,
        multilingual: Bool = false,
        speakers: SpeakerOptions? = nil,
        multichannel: Bool = false
    ) {
        self.language = language
        self.beamSize = beamSize
        self.wordTimestamps = wordTimestamps
        self.initialPrompt = initialPrompt
        self.conditionOnPreviousText = conditionOnPreviousText
        self.temperatures = temperatures
        self.compressionRatioThreshold = compressionRatioThreshold
        self.logProbThreshold = logProbThreshold
        self.noSpeechThreshold = noSpeechThreshold
        self.timestamps = timestamps
        self.vad = vad
        self.task = task
        self.multilingual = multilingual
        self.speakers = speakers
        self.multichannel = multichannel
    }
}

/// What the decoder is asked to do with the speech.
public enum WhisperTask: String, Sendable, Hashable, Codable, CaseIterable {
    /// Text in the language spoken.
    case transcribe
    /// English text, whatever the language spoken.
    case translate
}

/// One word with its time span (seconds from the start of the audio) and probability.
public struct TranscribedWord: Sendable, Hashable, Codable {
    public var start: Double
    public var end: Double
    /// The word as spoken, with its leading space if it had one.
    public var word: String
    public var probability: Double
    /// Who says it, with speaker labels.
    public var speaker: String?

    public init(start: Double, end: Double, word: String, probability: Double, speaker: String? = nil) {
        self.start = start
        self.end = end
        self.word = word
        self.probability = probability
        self.speaker = speaker
    }
}

/// One segment of the transcript, as delimited by the model's timestamp tokens.
public struct TranscribedSegment: Sendable, Hashable, Codable {
    public var id: Int
    /// Where the window this segment came from starts, in mel frames (10 ms) of the decoded audio (with voice
    /// activity detection, of the speech alone), as Whisper's and OpenAI's `seek`.
    public var seek: Int
    public var start: Double
    public var end: Double
    public var text: String
    public var tokens: [Int]
    public var temperature: Double
    public var avgLogprob: Double
    public var compressionRatio: Double
    public var noSpeechProb: Double
    public var words: [TranscribedWord]?
    /// The language the segment was decoded in (the recording's, or with `multilingual` its window's).
    public var language: String?
    /// Who speaks (`SPEAKER_1`, …): with speaker labels, or per channel with `multichannel`.
    public var speaker: String?
    /// The audio channel (0-based) of a multichannel transcription.
    public var channel: Int?

    public init(
        id: Int, seek: Int = 0, start: Double, end: Double, text: String, tokens: [Int], temperature: Double,
        avgLogprob: Double, compressionRatio: Double, noSpeechProb: Double, words: [TranscribedWord]? = nil,
        language: String? = nil, speaker: String? = nil, channel: Int? = nil
    ) {
        self.id = id
        self.seek = seek
        self.start = start
        self.end = end
        self.text = text
        self.tokens = tokens
        self.temperature = temperature
        self.avgLogprob = avgLogprob
        self.compressionRatio = compressionRatio
        self.noSpeechProb = noSpeechProb
        self.words = words
        self.language = language
        self.speaker = speaker
        self.channel = channel
    }

    enum CodingKeys: String, CodingKey {
        case id, seek, start, end, text, tokens, temperature, words, language, speaker, channel
        case avgLogprob = "avg_logprob"
        case compressionRatio = "compression_ratio"
        case noSpeechProb = "no_speech_prob"
    }

    /// Results stored before `seek` existed read it as 0.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(Int.self, forKey: .id), seek: try container.decodeIfPresent(Int.self, forKey: .seek) ?? 0,
            start: try container.decode(Double.self, forKey: .start), end: try container.decode(Double.self, forKey: .end),
            text: try container.decode(String.self, forKey: .text), tokens: try container.decode([Int].self, forKey: .tokens),
            temperature: try container.decode(Double.self, forKey: .temperature),
            avgLogprob: try container.decode(Double.self, forKey: .avgLogprob),
            compressionRatio: try container.decode(Double.self, forKey: .compressionRatio),
            noSpeechProb: try container.decode(Double.self, forKey: .noSpeechProb),
            words: try container.decodeIfPresent([TranscribedWord].self, forKey: .words),
            language: try container.decodeIfPresent(String.self, forKey: .language),
            speaker: try container.decodeIfPresent(String.self, forKey: .speaker),
            channel: try container.decodeIfPresent(Int.self, forKey: .channel))
    }
}

/// The whole transcript of one recording.
public struct TranscriptionResult: Sendable, Hashable, Codable {
    /// All segments' text joined, trimmed.
    public var text: String
    public var language: String
    /// Probability of the detected language (1 when the language was given or the model is English-only).
    public var languageProbability: Double
    /// Audio duration in seconds.
    public var duration: Double
    public var segments: [TranscribedSegment]
    /// Where voice-activity detection found speech, in seconds of the recording (`nil` when it did not run).
    public var speechRegions: [TimeSpan]?
    /// With speaker labels or `multichannel`: each speaker's total speaking time.
    public var speakers: [SpeakerSummary]?
    /// With speaker labels or `multichannel`: who speaks when (the turns an RTTM file lists).
    public var speakerTurns: [SpeakerTurn]?
    /// With `multichannel`: how many channels the recording has.
    public var channels: Int?
    /// Where the time went (not part of the serialized result).
    public var timings = TranscriptionTimings()

    public init(text: String, language: String, languageProbability: Double, duration: Double, segments: [TranscribedSegment]) {
        self.text = text
        self.language = language
        self.languageProbability = languageProbability
        self.duration = duration
        self.segments = segments
    }

    enum CodingKeys: String, CodingKey {
        case text, language, duration, segments
        case languageProbability = "language_probability"
        case speechRegions = "speech_regions"
        case speakers, channels
        case speakerTurns = "speaker_turns"
    }
}

/// A stretch of the recording, in seconds from its start.
public struct TimeSpan: Sendable, Hashable, Codable {
    public var start: Double
    public var end: Double

    public init(start: Double, end: Double) {
        self.start = start
        self.end = end
    }
}

/// Wall-clock seconds spent in each stage of one transcription, for benchmarks and `--verbose`.
public struct TranscriptionTimings: Sendable, Hashable {
    /// Voice-activity detection (speech probabilities and regions).
    public var vad: Double = 0
    public var features: Double = 0
    public var encoder: Double = 0
    public var decoder: Double = 0
    public var alignment: Double = 0
    /// Speaker labels: voice prints, clustering and attribution.
    public var diarization: Double = 0
    public var windows = 0
    /// Decoder steps (one step advances every beam by one token).
    public var decoderSteps = 0

    public init() {}
}

/// Reports the fraction (0…1) of the audio transcribed so far; called between windows.
public typealias TranscriptionProgress = @Sendable (Double) -> Void
/// Receives the text of each window as it is decoded, for callers that show a transcript as it grows.
public typealias TranscriptionText = @Sendable (String) -> Void
/// Asked between windows; `true` stops the transcription with `EngineError.cancelled`.
public typealias CancellationCheck = @Sendable () -> Bool

/// Every failure of the engine, each with a stable code a service can expose.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A model file is missing, corrupt, truncated or of an unsupported kind.
    case invalidModel(file: String, problem: String)
    /// The input could not be decoded as audio.
    case undecodableAudio(String)
    /// The audio decoder did not finish in time (its wall-clock limit).
    case decoderTimeout(seconds: Double)
    /// The kernel stopped the audio decoder at its CPU-time or memory limit (`limit` says which, for people).
    case decoderLimitExceeded(limit: String)
    /// The audio decoder (ffmpeg) is missing or cannot start: a fault of the machine, not of the input.
    case decoderUnavailable(String)
    /// The audio holds no samples.
    case emptyAudio
    /// The audio lasts longer than the caller's limit (decoding stopped there, whatever the container said).
    case audioTooLong(limitSeconds: Double)
    /// The requested language is unknown, or not supported by this model.
    case unsupportedLanguage(String, reason: String)
    /// A caller-supplied option is out of range.
    case invalidOption(String)
    /// The cancellation check said stop.
    case cancelled
    /// The recording has more audio channels than a multichannel transcription takes.
    case tooManyChannels(count: Int, limit: Int)

    /// A stable machine-readable code.
    public var code: String {
        switch self {
        case .invalidModel: "invalid_model"
        case .undecodableAudio: "undecodable_audio"
        case .decoderTimeout: "decoder_timeout"
        case .decoderLimitExceeded: "decoder_limit_exceeded"
        case .decoderUnavailable: "decoder_unavailable"
        case .emptyAudio: "empty_audio"
        case .audioTooLong: "audio_too_long"
        case .unsupportedLanguage: "unsupported_language"
        case .invalidOption: "invalid_option"
        case .cancelled: "cancelled"
        case .tooManyChannels: "too_many_channels"
        }
    }

    public var description: String {
        switch self {
        case let .invalidModel(file, problem): "invalid model file \(file): \(problem)"
        case let .undecodableAudio(why): "the input could not be decoded as audio: \(why)"
        case let .decoderTimeout(seconds): "audio decoding did not finish within \(seconds) s"
        case let .decoderLimitExceeded(limit): "the audio decoder was stopped at its \(limit)"
        case let .decoderUnavailable(why): "the audio decoder is unavailable: \(why)"
        case .emptyAudio: "the audio holds no samples"
        case let .audioTooLong(limit): "the recording lasts longer than the limit of \(Int(limit)) s"
        case let .unsupportedLanguage(language, reason): "language '\(language)' is not supported: \(reason)"
        case let .invalidOption(why): "invalid option: \(why)"
        case .cancelled: "the transcription was cancelled"
        case let .tooManyChannels(count, limit): "the recording has \(count) audio channels; a multichannel transcription takes at most \(limit)"
        }
    }
}
