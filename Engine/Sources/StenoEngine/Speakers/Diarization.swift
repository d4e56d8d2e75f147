public import Foundation

/// What a caller knows about the speakers of a recording, for speaker labels.
public struct SpeakerOptions: Sendable, Hashable, Codable {
    /// The number of speakers, when known: clustering stops at exactly this many.
    public var expected: Int?
    /// Bounds on the number found when it is not given.
    public var minimum: Int?
    public var maximum: Int?

    public static let largestCount = 32

    public init(expected: Int? = nil, minimum: Int? = nil, maximum: Int? = nil) {
        self.expected = expected
        self.minimum = minimum
        self.maximum = maximum
    }

    /// Why these options cannot be used, in the words of the API's fields (nil when they can).
    public var problem: String? {
        let range = 1...Self.largestCount
        if let expected, !range.contains(expected) { return "speakers_expected must be from 1 to \(Self.largestCount)" }
        if let minimum, !range.contains(minimum) { return "min_speakers must be from 1 to \(Self.largestCount)" }
        if let maximum, !range.contains(maximum) { return "max_speakers must be from 1 to \(Self.largestCount)" }
        if let minimum, let maximum, minimum > maximum { return "min_speakers must not be above max_speakers" }
        if expected != nil, minimum != nil || maximum != nil { return "give speakers_expected or min_speakers/max_speakers, not both" }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case expected = "speakers_expected"
        case minimum = "min_speakers"
        case maximum = "max_speakers"
    }
}

/// A stretch of the recording one speaker holds, in seconds.
public struct SpeakerTurn: Sendable, Hashable, Codable {
    public var start: Double
    public var end: Double
    public var speaker: String
    /// The audio channel (0-based) of a multichannel transcription.
    public var channel: Int?

    public init(start: Double, end: Double, speaker: String, channel: Int? = nil) {
        self.start = start
        self.end = end
        self.speaker = speaker
        self.channel = channel
    }
}

/// One speaker of the transcript and how long they speak.
public struct SpeakerSummary: Sendable, Hashable, Codable {
    public var speaker: String
    /// Seconds of speech attributed to the speaker (their turns).
    public var speakingTime: Double
    public var channel: Int?

    public init(speaker: String, speakingTime: Double, channel: Int? = nil) {
        self.speaker = speaker
        self.speakingTime = speakingTime
        self.channel = channel
    }

    enum CodingKeys: String, CodingKey {
        case speaker, channel
        case speakingTime = "speaking_time"
    }
}

/// Who speaks when: voice prints of overlapping windows over the speech Silero VAD finds, clustered by speaker,
/// every 10 ms frame of speech given the speaker of the window centred nearest to it, and flips shorter than
/// `minimumTurnSeconds` inside one stretch of speech smoothed away.
struct Diarizer {
    let encoder: SpeakerEncoder
    /// Where diarization looks for speech: tighter than transcription's (short pauses separate turns).
    static let speechDetection: SpeechDetection = {
        var detection = SpeechDetection()
        detection.minSilenceSeconds = 0.15
        detection.speechPadSeconds = 0.05
        detection.minSpeechSeconds = 0.1
        return detection
    }()
    /// A window is one of Resemblyzer's partial utterances (1.6 s); windows overlap by half.
    static let windowFrames = SpeakerEncoder.partialFrames
    static let hopFrames = 80
    /// Speech shorter than this gets no window of its own; it takes the speaker of the nearest one.
    static let shortestWindowFrames = 30
    static let minimumTurnSeconds = 0.5
    static let clustering = SpeakerClustering()

    /// One speaker index per 10 ms frame of the recording (`nil` where no one speaks), and the speaker count.
    struct FrameLabels {
        var labels: [Int?]
        var speakers: Int

        /// The speaker holding most of `start…end` (seconds), or the nearest speech's when no one speaks there.
        func speaker(from start: Double, to end: Double) -> Int? {
            guard !labels.isEmpty else { return nil }
            let first = max(0, min(labels.count - 1, Int((start * 100).rounded(.down))))
            let last = max(first, min(labels.count - 1, Int((end * 100).rounded(.up)) - 1))
            var votes = [Int](repeating: 0, count: speakers)
            for t in first...last { if let label = labels[t] { votes[label] += 1 } }
            if let best = votes.indices.max(by: { votes[$0] < votes[$1] }), votes[best] > 0 { return best }
            let middle = (first + last) / 2
            for distance in 1..<labels.count {
                if middle - distance >= 0, let label = labels[middle - distance] { return label }
                if middle + distance < labels.count, let label = labels[middle + distance] { return label }
            }
            return nil
        }

        /// Runs of one speaker, in seconds.
        var turns: [(start: Double, end: Double, speaker: Int)] {
            var turns: [(start: Double, end: Double, speaker: Int)] = []
            var t = 0
            while t < labels.count {
                guard let label = labels[t] else { t += 1; continue }
                var end = t
                while end < labels.count, labels[end] == label { end += 1 }
                turns.append((Double(t) / 100, Double(end) / 100, label))
                t = end
            }
            return turns
        }
    }

    func diarize(_ samples: UnsafeBufferPointer<Float>, speechProbabilities: [Float], options: SpeakerOptions) -> FrameLabels {
        let frameCount = SpeakerFeatures.frameCount(samples: samples.count)
        let regions = Self.speechDetection.regions(probabilities: speechProbabilities, sampleCount: samples.count)
            .map { region in (region.start / WhisperAudio.hopLength)..<min(frameCount, (region.end + WhisperAudio.hopLength - 1) / WhisperAudio.hopLength) }
            .filter { !$0.isEmpty }
        var labels = FrameLabels(labels: [Int?](repeating: nil, count: frameCount), speakers: 0)
        guard !regions.isEmpty else { return labels }

        // Windows: within each stretch of speech, every hop, the last one flush with its end.
        var windows: [(region: Int, frames: Range<Int>)] = []
        for (index, region) in regions.enumerated() where region.count >= Self.shortestWindowFrames {
            var start = region.lowerBound
            while true {
                let end = min(region.upperBound, start + Self.windowFrames)
                windows.append((index, start..<end))
                if end >= region.upperBound { break }
                start = min(start + Self.hopFrames, max(region.lowerBound, region.upperBound - Self.windowFrames))
            }
        }
        if windows.isEmpty {
            // Only scraps of speech: one speaker.
            for region in regions { for t in region { labels.labels[t] = 0 } }
            labels.speakers = 1
            return labels
        }

        // Each window's mel frames; frames outside its stretch of speech are silence (zero), as Resemblyzer
        // zero-pads a short utterance.
        let features = encoder.features.frames(of: samples, range: 0..<frameCount)
        let bands = SpeakerEncoder.melBands
        let sequences: [[Float]] = windows.map { window in
            var sequence = [Float](repeating: 0, count: Self.windowFrames * bands)
            let count = window.frames.count
            sequence.replaceSubrange(0..<(count * bands), with: features[(window.frames.lowerBound * bands)..<(window.frames.upperBound * bands)])
            return sequence
        }
        let embeddings = encoder.embed(sequences, frames: Self.windowFrames)
        let clusters = Self.clustering.cluster(
            embeddings, count: options.expected, minimum: options.minimum ?? 1, maximum: options.maximum ?? SpeakerOptions.largestCount)
        labels.speakers = (clusters.max() ?? 0) + 1

        // Every frame of speech takes the cluster of the window centred nearest to it (in its own stretch of
        // speech when that has windows, else anywhere).
        let centres = windows.map { Double($0.frames.lowerBound + $0.frames.upperBound) / 2 }
        var windowsOfRegion = [[Int]](repeating: [], count: regions.count)
        for (i, window) in windows.enumerated() { windowsOfRegion[window.region].append(i) }
        for (index, region) in regions.enumerated() {
            let candidates = windowsOfRegion[index].isEmpty ? Array(windows.indices) : windowsOfRegion[index]
            for t in region {
                let nearest = candidates.min { abs(centres[$0] - Double(t)) < abs(centres[$1] - Double(t)) }!
                labels.labels[t] = clusters[nearest]
            }
        }
        smooth(&labels, regions: regions)
        return labels
    }

    /// Inside each stretch of speech, a run shorter than `minimumTurnSeconds` joins the longer of its neighbours.
    private func smooth(_ labels: inout FrameLabels, regions: [Range<Int>]) {
        let shortest = Int(Self.minimumTurnSeconds * 100)
        for region in regions {
            var changed = true
            while changed {
                changed = false
                var runs: [(range: Range<Int>, label: Int)] = []
                var t = region.lowerBound
                while t < region.upperBound {
                    let label = labels.labels[t]!
                    var end = t
                    while end < region.upperBound, labels.labels[end] == label { end += 1 }
                    runs.append((t..<end, label))
                    t = end
                }
                guard runs.count > 1 else { break }
                for (i, run) in runs.enumerated() where run.range.count < shortest {
                    let before = i > 0 ? runs[i - 1] : nil, after = i + 1 < runs.count ? runs[i + 1] : nil
                    let into = (before?.range.count ?? -1) >= (after?.range.count ?? -1) ? before! : after!
                    for f in run.range { labels.labels[f] = into.label }
                    changed = true
                    break
                }
            }
        }
    }
}
