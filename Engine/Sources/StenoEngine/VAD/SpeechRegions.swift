/// Where the speech is, from per-window speech probabilities: the rules of silero-vad's
/// `get_speech_timestamps` (6.2.3), with hysteresis between `threshold` and `negativeThreshold`, a minimum
/// silence that ends a region, a minimum speech length, a maximum length that cuts a region (at its longest
/// silence, when it has one), and padding. docs/notes/silero-vad-v6.md states each rule. (faster-whisper keeps
/// the older cut rule, at the last silence over 98 ms; the two agree whenever `maxSpeechSeconds` is infinite.)
public struct SpeechDetection: Sendable, Hashable {
    /// A window with at least this probability is speech.
    public var threshold: Double = 0.5
    /// Speech ends only below this (default: threshold − 0.15, at least 0.01).
    public var negativeThreshold: Double?
    /// Shorter regions are dropped.
    public var minSpeechSeconds: Double = 0.25
    /// Longer regions are cut.
    public var maxSpeechSeconds: Double = .infinity
    /// A silence this long ends a region.
    public var minSilenceSeconds: Double = 0.1
    /// Added to both sides of each region (halved between regions closer than twice this).
    public var speechPadSeconds: Double = 0.03

    public init() {}

    /// faster-whisper's `VadOptions` defaults: long silences only, generous padding, no minimum speech.
    public static var fasterWhisper: SpeechDetection {
        var detection = SpeechDetection()
        detection.minSpeechSeconds = 0
        detection.minSilenceSeconds = 2
        detection.speechPadSeconds = 0.4
        return detection
    }
}

extension SpeechDetection {
    /// A parameter as clients name it: faster-whisper's `vad_parameters` names and units, with a `vad_` prefix
    /// (the API's form fields; the CLI's options are the same names in kebab case).
    public struct Parameter: Sendable {
        public let name: String
        public let keyPath: any WritableKeyPath<SpeechDetection, Double> & Sendable
        /// Units of the parameter per unit of the field (1000 for milliseconds).
        public let unitsPerValue: Double
    }

    /// Every tunable parameter, in the order the CLI and the docs list them.
    public static let parameters: [Parameter] = [
        Parameter(name: "vad_threshold", keyPath: \.threshold, unitsPerValue: 1),
        Parameter(name: "vad_min_speech_duration_ms", keyPath: \.minSpeechSeconds, unitsPerValue: 1000),
        Parameter(name: "vad_max_speech_duration_s", keyPath: \.maxSpeechSeconds, unitsPerValue: 1),
        Parameter(name: "vad_min_silence_duration_ms", keyPath: \.minSilenceSeconds, unitsPerValue: 1000),
        Parameter(name: "vad_speech_pad_ms", keyPath: \.speechPadSeconds, unitsPerValue: 1000),
    ]

    /// These parameters with the given values (by `Parameter.name`, in the clients' units) set over them.
    public func setting(_ values: [String: Double]) -> SpeechDetection {
        var detection = self
        for parameter in Self.parameters {
            if let value = values[parameter.name] { detection[keyPath: parameter.keyPath] = value / parameter.unitsPerValue }
        }
        return detection
    }
}

extension SpeechDetection: Codable {
    enum CodingKeys: String, CodingKey {
        case threshold
        case negativeThreshold = "negative_threshold"
        case minSpeechSeconds = "min_speech_seconds"
        case maxSpeechSeconds = "max_speech_seconds"
        case minSilenceSeconds = "min_silence_seconds"
        case speechPadSeconds = "speech_pad_seconds"
    }

    /// Absent fields keep their defaults; no maximum length is written as an absent `max_speech_seconds`
    /// (JSON has no infinity).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        threshold = try container.decodeIfPresent(Double.self, forKey: .threshold) ?? threshold
        negativeThreshold = try container.decodeIfPresent(Double.self, forKey: .negativeThreshold)
        minSpeechSeconds = try container.decodeIfPresent(Double.self, forKey: .minSpeechSeconds) ?? minSpeechSeconds
        maxSpeechSeconds = try container.decodeIfPresent(Double.self, forKey: .maxSpeechSeconds) ?? maxSpeechSeconds
        minSilenceSeconds = try container.decodeIfPresent(Double.self, forKey: .minSilenceSeconds) ?? minSilenceSeconds
        speechPadSeconds = try container.decodeIfPresent(Double.self, forKey: .speechPadSeconds) ?? speechPadSeconds
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(threshold, forKey: .threshold)
        try container.encodeIfPresent(negativeThreshold, forKey: .negativeThreshold)
        try container.encode(minSpeechSeconds, forKey: .minSpeechSeconds)
        if maxSpeechSeconds.isFinite { try container.encode(maxSpeechSeconds, forKey: .maxSpeechSeconds) }
        try container.encode(minSilenceSeconds, forKey: .minSilenceSeconds)
        try container.encode(speechPadSeconds, forKey: .speechPadSeconds)
    }

    /// Why these parameters cannot be used, if they cannot (for `EngineError.invalidOption` and API errors).
    public var problem: String? {
        guard threshold > 0, threshold < 1 else { return "the speech threshold must be between 0 and 1 (exclusive), got \(threshold)" }
        if let negativeThreshold, !(negativeThreshold > 0 && negativeThreshold <= threshold) {
            return "the negative threshold must be above 0 and at most the threshold, got \(negativeThreshold)"
        }
        guard minSpeechSeconds >= 0, minSpeechSeconds <= 3600 else { return "the minimum speech length must be between 0 and 3600 s" }
        guard maxSpeechSeconds > 1 else { return "the maximum speech length must be more than 1 s" }
        guard minSilenceSeconds >= 0, minSilenceSeconds <= 3600 else { return "the minimum silence must be between 0 and 3600 s" }
        guard speechPadSeconds >= 0, speechPadSeconds <= 10 else { return "the speech padding must be between 0 and 10 s" }
        return nil
    }
}

/// A region of speech, in samples of the 16 kHz recording.
public struct SpeechRegion: Sendable, Hashable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
}

extension SpeechDetection {
    /// The speech regions of a recording of `sampleCount` samples whose windows have `probabilities`.
    public func regions(probabilities: [Float], sampleCount: Int) -> [SpeechRegion] {
        let rate = Double(WhisperAudio.sampleRate), window = Double(SileroVAD.windowSamples)
        let minSpeech = rate * minSpeechSeconds
        let pad = rate * speechPadSeconds
        let maxSpeech = rate * maxSpeechSeconds - window - 2 * pad
        let minSilence = rate * minSilenceSeconds
        // A silence shorter than this is no place to cut a region that grew too long.
        let minSilenceAtMaxSpeech = rate * 0.098
        let negative = negativeThreshold ?? max(threshold - 0.15, 0.01)

        var found: [(start: Double, end: Double)] = []
        var start: Double?
        // Where the running silence began (0: none), and the silences seen inside the open region.
        var tempEnd = 0.0
        var possibleEnds: [(start: Double, length: Double)] = []
        func resetSilence() {
            tempEnd = 0
            possibleEnds = []
        }

        for (index, probability) in probabilities.enumerated() {
            let p = Double(probability)
            let current = window * Double(index)
            if p >= threshold, tempEnd != 0 {
                // Speech again after a dip: remember the dip as a place to cut, should the region grow too long.
                let length = current - tempEnd
                if length > minSilenceAtMaxSpeech { possibleEnds.append((tempEnd, length)) }
                tempEnd = 0
            }
            if p >= threshold, start == nil {
                start = current
                continue
            }
            if let regionStart = start, current - regionStart > maxSpeech {
                // (`max(by:)` keeps the first of equals, as the reference does.)
                if let longest = possibleEnds.max(by: { $0.length < $1.length }) {
                    // Cut at the longest silence; the next region starts where that silence ends.
                    found.append((regionStart, longest.start))
                    start = longest.start + longest.length
                    resetSilence()
                } else {
                    found.append((regionStart, current))
                    start = nil
                    resetSilence()
                    continue
                }
            }
            if p < negative, let regionStart = start {
                if tempEnd == 0 { tempEnd = current }
                if current - tempEnd < minSilence { continue }
                if tempEnd - regionStart > minSpeech { found.append((regionStart, tempEnd)) }
                start = nil
                resetSilence()
            }
        }
        if let regionStart = start, Double(sampleCount) - regionStart > minSpeech {
            found.append((regionStart, Double(sampleCount)))
        }

        // Padding: each side grows by `pad`, or by half the gap when two regions are closer than twice that.
        let length = Double(sampleCount)
        for index in found.indices {
            if index == 0 { found[index].start = max(0, found[index].start - pad) }
            if index < found.count - 1 {
                let gap = found[index + 1].start - found[index].end
                if gap < 2 * pad {
                    found[index].end += (gap / 2).rounded(.down)
                    found[index + 1].start = max(0, found[index + 1].start - (gap / 2).rounded(.down))
                } else {
                    found[index].end = min(length, found[index].end + pad)
                    found[index + 1].start = max(0, found[index + 1].start - pad)
                }
            } else {
                found[index].end = min(length, found[index].end + pad)
            }
        }
        return found.map { SpeechRegion(start: Int($0.start), end: Int($0.end)) }
    }
}
