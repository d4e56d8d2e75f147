public import Foundation
public import StenoEngine

/// What the client asked for at upload: how its recording is transcribed.
///
/// Stored with the job as one JSON document (`options` column), so that a new option is a field here, its form
/// field (`JobOptionsForm`), its OpenAPI entries and its presentation, and no schema change. Rows from before
/// that column read the three columns they had (`init(language:prompt:wordTimestamps:)`, today's defaults for
/// the rest).
public struct JobOptions: Sendable, Hashable {
    /// The served model that transcribes the job, resolved at upload (nil in rows from before models had
    /// names: the default model).
    public var model: String?
    public var language: String?
    public var prompt: String?
    public var wordTimestamps: Bool
    /// Voice-activity detection and its parameters; `nil` transcribes all of the audio.
    public var vad: SpeechDetection?
    /// Transcribe, or translate to English.
    public var task: WhisperTask
    /// Detect the language of each window (code-switching).
    public var multilingual: Bool
    /// One fixed sampling temperature (above 0, up to 1) instead of the default fallback from 0 upwards.
    public var temperature: Double?
    /// Beam width (1 decodes greedily); nil for the engine's default, 5.
    public var beamSize: Int?
    /// Where the worker fetches the recording, for a job submitted by URL (no uploaded file). Kept with the job,
    /// never shown by the API or logged (its query may carry a signature).
    public var audioURL: String?
    /// Speaker labels and what the client knows of the speaker count; nil labels no one.
    public var speakers: SpeakerOptions?
    /// Each audio channel transcribed on its own, segments carrying their channel.
    public var multichannel = false

    /// Steno's default detection: faster-whisper's `vad_filter` parameters.
    public static let defaultVAD = SpeechDetection.fasterWhisper

    public init(
        language: String? = nil, prompt: String? = nil, wordTimestamps: Bool = false, vad: SpeechDetection? = Self.defaultVAD,
        task: WhisperTask = .transcribe, multilingual: Bool = false, model: String? = nil, temperature: Double? = nil
    ) {
        self.model = model
        self.temperature = temperature
        self.language = language
        self.prompt = prompt
        self.wordTimestamps = wordTimestamps
        self.vad = vad
        self.task = task
        self.multilingual = multilingual
    }

    /// Engine options for a job: the engine's defaults plus what the client chose.
    package var transcriptionOptions: TranscriptionOptions {
        var options = TranscriptionOptions(
            language: language, wordTimestamps: wordTimestamps, initialPrompt: prompt, vad: vad, task: task, multilingual: multilingual)
        if let temperature { options.temperatures = [Float(temperature)] }
        if let beamSize { options.beamSize = beamSize }
        options.speakers = speakers
        options.multichannel = multichannel
        return options
    }
}

extension JobOptions: Codable {
    enum CodingKeys: String, CodingKey {
        case model, language, prompt, vad, task, multilingual, temperature, speakers, multichannel
        case audioURL = "audio_url"
        case beamSize = "beam_size"
        case wordTimestamps = "word_timestamps"
    }

    /// A field absent from a stored document (one written before the option existed) takes today's default;
    /// `vad: null` is detection turned off.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            language: try container.decodeIfPresent(String.self, forKey: .language),
            prompt: try container.decodeIfPresent(String.self, forKey: .prompt),
            wordTimestamps: try container.decodeIfPresent(Bool.self, forKey: .wordTimestamps) ?? false)
        if container.contains(.vad) { vad = try container.decodeIfPresent(SpeechDetection.self, forKey: .vad) }
        task = try container.decodeIfPresent(WhisperTask.self, forKey: .task) ?? .transcribe
        multilingual = try container.decodeIfPresent(Bool.self, forKey: .multilingual) ?? false
        model = try container.decodeIfPresent(String.self, forKey: .model)
        temperature = try container.decodeIfPresent(Double.self, forKey: .temperature)
        audioURL = try container.decodeIfPresent(String.self, forKey: .audioURL)
        beamSize = try container.decodeIfPresent(Int.self, forKey: .beamSize)
        speakers = try container.decodeIfPresent(SpeakerOptions.self, forKey: .speakers)
        multichannel = try container.decodeIfPresent(Bool.self, forKey: .multichannel) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(language, forKey: .language)
        try container.encodeIfPresent(prompt, forKey: .prompt)
        try container.encode(wordTimestamps, forKey: .wordTimestamps)
        try container.encode(vad, forKey: .vad)
        try container.encode(task, forKey: .task)
        try container.encode(multilingual, forKey: .multilingual)
        try container.encodeIfPresent(model, forKey: .model)
        try container.encodeIfPresent(temperature, forKey: .temperature)
        try container.encodeIfPresent(audioURL, forKey: .audioURL)
        try container.encodeIfPresent(beamSize, forKey: .beamSize)
        try container.encodeIfPresent(speakers, forKey: .speakers)
        if multichannel { try container.encode(multichannel, forKey: .multichannel) }
    }

    /// The document stored in a job's `options` column.
    var storedJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding plain strings, numbers and booleans cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// A job row's options: its `options` document, or for rows from before that column, the legacy columns.
    static func stored(json: String?, language: String?, prompt: String?, wordTimestamps: Bool) throws -> JobOptions {
        guard let json else { return JobOptions(language: language, prompt: prompt, wordTimestamps: wordTimestamps) }
        return try JSONDecoder().decode(JobOptions.self, from: Data(json.utf8))
    }
}
