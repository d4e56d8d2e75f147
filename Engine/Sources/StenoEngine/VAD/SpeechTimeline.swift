/// The speech of a recording, cut out and joined end to end for decoding, and the way back from a time in the
/// joined audio to the same moment of the original recording (faster-whisper's `vad_filter` behaves the same
/// way, so the two stay comparable).
///
/// A time maps back by adding the silence removed before the region it falls in. A time exactly on the end of a
/// region (a segment's end) belongs to that region, not to the next one; a word's start and end are both placed
/// by the region of the word's middle, so that a word never straddles a removed silence.
public struct SpeechTimeline: Sendable {
    public let regions: [SpeechRegion]
    /// For each region, where it ends in the joined audio (samples), and the silence removed before it (seconds).
    private let joinedEnds: [Int]
    private let silenceBefore: [Double]

    public init(regions: [SpeechRegion]) {
        self.regions = regions
        var ends: [Int] = [], silences: [Double] = []
        var previousEnd = 0, removed = 0
        for region in regions {
            removed += region.start - previousEnd
            previousEnd = region.end
            ends.append(region.end - removed)
            silences.append(Double(removed) / Double(WhisperAudio.sampleRate))
        }
        joinedEnds = ends
        silenceBefore = silences
    }

    /// Samples in the joined audio.
    public var joinedSampleCount: Int { joinedEnds.last ?? 0 }

    /// The regions' samples, one after the other.
    public func joinedSamples(of samples: UnsafeBufferPointer<Float>) -> [Float] {
        var joined: [Float] = []
        joined.reserveCapacity(joinedSampleCount)
        for region in regions {
            joined.append(contentsOf: samples[max(0, region.start)..<min(samples.count, region.end)])
        }
        return joined
    }

    /// The region a joined-audio time falls in (the last one for times past the end).
    public func regionIndex(of time: Double, isEnd: Bool = false) -> Int {
        let sample = Int(time * Double(WhisperAudio.sampleRate))
        if isEnd, let index = joinedEnds.firstIndex(of: sample) { return index }
        // The first region ending after `sample` (bisect right).
        var low = 0, high = joinedEnds.count
        while low < high {
            let middle = (low + high) / 2
            if joinedEnds[middle] <= sample { low = middle + 1 } else { high = middle }
        }
        return min(low, joinedEnds.count - 1)
    }

    /// The original time of a joined-audio time, to the centisecond as Whisper's timestamps.
    public func originalTime(_ time: Double, region: Int? = nil, isEnd: Bool = false) -> Double {
        guard !joinedEnds.isEmpty else { return time }
        let index = region ?? regionIndex(of: time, isEnd: isEnd)
        return ((silenceBefore[index] + time) * 100).rounded() / 100
    }

    /// Segments (and their words) with every time moved back to the original recording.
    public func restore(_ segments: [TranscribedSegment]) -> [TranscribedSegment] {
        segments.map { segment in
            var segment = segment
            if let words = segment.words, !words.isEmpty {
                let restored = words.map { word in
                    var word = word
                    let region = regionIndex(of: (word.start + word.end) / 2)
                    word.start = originalTime(word.start, region: region)
                    word.end = originalTime(word.end, region: region)
                    return word
                }
                segment.words = restored
                segment.start = restored[0].start
                segment.end = restored[restored.count - 1].end
            } else {
                segment.start = originalTime(segment.start)
                segment.end = originalTime(segment.end, isEnd: true)
            }
            return segment
        }
    }
}
