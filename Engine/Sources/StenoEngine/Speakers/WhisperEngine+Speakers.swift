public import Foundation

extension WhisperEngine {
    /// Transcribes each channel of a recording on its own and merges the segments in time order. Every
    /// segment carries its `channel`; without speaker labels its `speaker` is the channel's (`SPEAKER_1` for
    /// channel 0), with them each channel is diarized and its speakers numbered after the previous channel's.
    /// `progress` runs over all channels; `text` receives each channel's windows as they are decoded.
    public func transcribe(
        channels: [DecodedAudio], options: TranscriptionOptions = TranscriptionOptions(),
        progress: TranscriptionProgress? = nil, isCancelled: CancellationCheck? = nil, text: TranscriptionText? = nil
    ) throws -> TranscriptionResult {
        guard !channels.isEmpty else { throw EngineError.emptyAudio }
        var results: [TranscriptionResult] = []
        var nextLabel = 1
        for (channel, audio) in channels.enumerated() {
            let share = 1 / Double(channels.count), done = Double(channel) * share
            let channelProgress: TranscriptionProgress = { progress?(done + $0 * share) }
            var result: TranscriptionResult
            if let speakerOptions = options.speakers {
                let diarized = try transcribeWithSpeakers(
                    audio, options: options, speakerOptions: speakerOptions, firstLabel: nextLabel, channel: channel,
                    progress: channelProgress, isCancelled: isCancelled, text: text)
                result = diarized.result
                nextLabel += diarized.speakers
            } else {
                result = try transcribe(audio: audio, options: options, progress: channelProgress, isCancelled: isCancelled, text: text)
                let speaker = "SPEAKER_\(channel + 1)"
                for i in result.segments.indices {
                    result.segments[i].channel = channel
                    result.segments[i].speaker = speaker
                    if let words = result.segments[i].words {
                        result.segments[i].words = words.map { var word = $0; word.speaker = speaker; return word }
                    }
                }
                // The channel's turns are its segments, joined where they touch.
                var turns: [SpeakerTurn] = []
                for segment in result.segments where segment.end > segment.start {
                    if let last = turns.last, segment.start <= last.end + 0.01 {
                        turns[turns.count - 1].end = max(last.end, segment.end)
                    } else {
                        turns.append(SpeakerTurn(start: segment.start, end: segment.end, speaker: speaker, channel: channel))
                    }
                }
                result.speakerTurns = turns
            }
            results.append(result)
        }
        return Self.merged(results, channels: channels.count)
    }

    /// One channel's (or a mono recording's) transcript with speaker labels from `firstLabel` on, and how
    /// many speakers it has. Words are aligned whatever the options say (segments are split between words),
    /// and dropped again if they were not asked for.
    func transcribeWithSpeakers(
        _ audio: DecodedAudio, options: TranscriptionOptions, speakerOptions: SpeakerOptions, firstLabel: Int, channel: Int? = nil,
        progress: TranscriptionProgress?, isCancelled: CancellationCheck?, text: TranscriptionText?
    ) throws -> (result: TranscriptionResult, speakers: Int) {
        if let problem = speakerOptions.problem { throw EngineError.invalidOption(problem) }
        guard let vad = voiceActivity else {
            throw EngineError.invalidOption("speaker labels need the Silero VAD model, which this engine did not load")
        }
        guard let speakerEncoder else {
            throw EngineError.invalidOption("speaker labels need the speaker-encoder model, which this engine did not load")
        }
        var transcriptionOptions = options
        transcriptionOptions.wordTimestamps = true
        return try audio.withSamples { samples in
            guard !samples.isEmpty else { throw EngineError.emptyAudio }
            var started = Clock.now
            let probabilities = vad.speechProbabilities(samples)
            let vadSeconds = Clock.seconds(since: started)
            var transcription = try LongFormTranscription(engine: self, samples: samples, options: transcriptionOptions, speechProbabilities: probabilities)
            var result = try transcription.run(progress: progress, isCancelled: isCancelled, text: text)
            if isCancelled?() == true { throw EngineError.cancelled }
            started = Clock.now
            let labels = Diarizer(encoder: speakerEncoder).diarize(samples, speechProbabilities: probabilities, options: speakerOptions)
            let naming = SpeakerAttribution.names(for: labels, startingAt: firstLabel)
            result = SpeakerAttribution(tokenizer: tokenizer, names: naming.names, channel: channel).apply(labels, to: result)
            if !options.wordTimestamps {
                for i in result.segments.indices { result.segments[i].words = nil }
            }
            result.timings.diarization = Clock.seconds(since: started)
            result.timings.vad += vadSeconds
            return (result, naming.count)
        }
    }

    /// Channel transcripts as one: segments in time order (then by channel), renumbered; the longest duration;
    /// the first channel's language.
    static func merged(_ results: [TranscriptionResult], channels: Int) -> TranscriptionResult {
        var segments = results.flatMap(\.segments)
        segments.sort { ($0.start, $0.channel ?? 0, $0.id) < ($1.start, $1.channel ?? 0, $1.id) }
        for i in segments.indices { segments[i].id = i }
        let first = results[0]
        var merged = TranscriptionResult(
            text: "", language: first.language, languageProbability: first.languageProbability,
            duration: results.map(\.duration).max() ?? 0, segments: segments)
        if results.contains(where: { $0.speechRegions != nil }) {
            merged.speechRegions = results.flatMap { $0.speechRegions ?? [] }.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        }
        merged.speakerTurns = results.flatMap { $0.speakerTurns ?? [] }.sorted { ($0.start, $0.channel ?? 0) < ($1.start, $1.channel ?? 0) }
        merged.channels = channels
        var timings = TranscriptionTimings()
        for result in results {
            let t = result.timings
            timings.vad += t.vad; timings.features += t.features; timings.encoder += t.encoder; timings.decoder += t.decoder
            timings.alignment += t.alignment; timings.diarization += t.diarization; timings.windows += t.windows
            timings.decoderSteps += t.decoderSteps
        }
        merged.timings = timings
        merged.summariseSpeakers()
        return merged
    }
}
