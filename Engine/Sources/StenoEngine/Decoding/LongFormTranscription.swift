import Foundation

/// One transcription of a whole recording: 30 s windows decoded in turn, each window's start taken from the
/// previous window's last timestamp (as faster-whisper's `generate_segments`), with temperature fallback,
/// no-speech skipping, conditioning on previous text and optional word timestamps.
struct LongFormTranscription {
    static let framesPerSecond = WhisperAudio.framesPerSecond
    static let windowFrames = WhisperAudio.windowFrames
    static let inputStride = WhisperAudio.framesPerEncoderPosition

    let engine: WhisperEngine
    let options: TranscriptionOptions
    let mel: MelSpectrogram
    /// Mel frames that hold audio (without the trailing padding frame).
    let contentFrames: Int
    let duration: Double
    let specials: SpecialTokens
    /// With voice-activity detection: which parts of the recording the mel spectrogram holds.
    let timeline: SpeechTimeline?
    private var random = SplitMix64(seed: 0x5EED_5EED)
    private var timings = TranscriptionTimings()

    /// - Parameter speechProbabilities: Silero's, when the caller has computed them already (speaker labels
    ///   need them too).
    init(engine: WhisperEngine, samples: UnsafeBufferPointer<Float>, options: TranscriptionOptions, speechProbabilities: [Float]? = nil) throws {
        guard !samples.isEmpty else { throw EngineError.emptyAudio }
        guard options.beamSize >= 1, options.beamSize <= 32 else {
            throw EngineError.invalidOption("beam size must be between 1 and 32, got \(options.beamSize)")
        }
        guard !options.temperatures.isEmpty, options.temperatures.allSatisfy({ $0 >= 0 && $0 <= 2 }) else {
            throw EngineError.invalidOption("temperatures must be between 0 and 2")
        }
        if !engine.isMultilingual, options.task == .translate || options.multilingual {
            throw EngineError.invalidOption(
                "\(options.task == .translate ? "translation" : "multilingual detection") needs a multilingual model; this one is English-only (.en)")
        }
        self.engine = engine
        self.options = options
        specials = engine.tokenizer.specials
        duration = Double(samples.count) / Double(WhisperAudio.sampleRate)
        if let detection = options.vad {
            // Only the speech is decoded: the regions joined end to end, their times mapped back at the end.
            guard let vad = engine.voiceActivity else {
                throw EngineError.invalidOption("voice-activity detection needs the Silero VAD model, which this engine did not load")
            }
            if let problem = detection.problem { throw EngineError.invalidOption(problem) }
            let started = Clock.now
            let probabilities = speechProbabilities ?? vad.speechProbabilities(samples)
            timeline = SpeechTimeline(regions: detection.regions(probabilities: probabilities, sampleCount: samples.count))
            timings.vad = Clock.seconds(since: started)
        } else {
            timeline = nil
        }
        // As faster-whisper: pad one hop of zeros so the last frame is complete, then drop it from the content.
        let started = Clock.now
        if let timeline {
            mel = engine.melSpectrogram.compute(timeline.joinedSamples(of: samples), paddingSamples: WhisperAudio.hopLength)
        } else {
            mel = engine.melSpectrogram.compute(samples, paddingSamples: WhisperAudio.hopLength)
        }
        contentFrames = max(0, mel.frames - 1)
        timings.features = Clock.seconds(since: started)
    }

    /// The speech regions as times of the recording.
    private var speechRegions: [TimeSpan]? {
        timeline.map { timeline in
            timeline.regions.map { TimeSpan(start: Double($0.start) / Double(WhisperAudio.sampleRate), end: Double($0.end) / Double(WhisperAudio.sampleRate)) }
        }
    }

    /// The mel window starting at `start` with `count` frames, zero-padded to the encoder's 3000 frames.
    private func melWindow(start: Int, count: Int) -> [Float] {
        let bands = mel.bands
        var out = [Float](repeating: 0, count: bands * Self.windowFrames)
        mel.values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<bands {
                    (dst.baseAddress! + b * Self.windowFrames).update(from: src.baseAddress! + b * mel.frames + start, count: count)
                }
            }
        }
        return out
    }

    private func resolveLanguage(firstWindow cross: CrossAttentionCache?) throws -> (code: String, probability: Double) {
        if !engine.isMultilingual {
            if let language = options.language, language.lowercased() != "en" {
                throw EngineError.unsupportedLanguage(language, reason: "this model is English-only (.en); it transcribes only 'en'")
            }
            return ("en", 1)
        }
        if let language = options.language {
            guard specials.languageToken(language.lowercased()) != nil else {
                throw EngineError.unsupportedLanguage(language, reason: "not one of Whisper's language codes")
            }
            return (language.lowercased(), 1)
        }
        guard let cross else { return ("en", 1) }
        return detectLanguage(cross)
    }

    /// The most likely language of a window: one decoder step on [sot], softmax over the language tokens.
    private func detectLanguage(_ cross: CrossAttentionCache) -> (code: String, probability: Double) {
        let session = DecoderSession(decoder: engine.decoder, cross: cross, batch: 1)
        let logits = session.step([[specials.sot]])
        let candidates = specials.languageCodes.compactMap { code in specials.languageToken(code).map { (code, $0) } }
        let maximum = candidates.map { logits[$0.1] }.max() ?? 0
        let weights = candidates.map { (code: $0.0, weight: Foundation.exp(Double(logits[$0.1] - maximum))) }
        let total = weights.reduce(0) { $0 + $1.weight }
        let best = weights.max { $0.weight < $1.weight }!
        return (best.code, best.weight / total)
    }

    /// Decodes window after window until the audio is used up: encode, decode with fallback, skip silence,
    /// cut the tokens into segments (and align words), then seek to where the model said the window ended.
    mutating func run(progress: TranscriptionProgress?, isCancelled: CancellationCheck?, text: TranscriptionText? = nil) throws -> TranscriptionResult {
        let tokenizer = engine.tokenizer
        var seek = 0
        var allTokens: [Int] = []
        var promptResetSince = 0
        if let prompt = options.initialPrompt?.trimmingCharacters(in: .whitespacesAndNewlines), !prompt.isEmpty {
            allTokens = tokenizer.encode(" " + prompt)
        }
        var segments: [TranscribedSegment] = []
        var language: (code: String, probability: Double)?
        let rules = LogitRules(
            specials: specials, suppressed: suppressedTokens(), suppressedAtBegin: engine.config.suppressIDsBegin,
            timestamps: options.timestamps)
        let generator = SequenceGenerator(decoder: engine.decoder, specials: specials, rules: rules)

        if contentFrames == 0 {
            let resolved = try resolveLanguage(firstWindow: nil)
            var transcript = TranscriptionResult(text: "", language: resolved.code, languageProbability: resolved.probability, duration: duration, segments: [])
            transcript.speechRegions = speechRegions
            transcript.timings = timings
            return transcript
        }

        while seek < contentFrames {
            if isCancelled?() == true { throw EngineError.cancelled }
            let window = Window(seek: seek, frames: min(Self.windowFrames, contentFrames - seek))
            var started = Clock.now
            let encoded = engine.encoder.encode(melWindow(start: window.seek, count: window.frames))
            timings.encoder += Clock.seconds(since: started)
            timings.windows += 1
            started = Clock.now
            let cross = engine.decoder.crossAttentionCache(encoded: encoded)
            if language == nil { language = try resolveLanguage(firstWindow: cross) }
            // Code-switching: with `multilingual`, each window is decoded in the language detected in it (as
            // faster-whisper's `multilingual=True`); the result's language stays the first window's.
            let windowLanguage = options.multilingual ? detectLanguage(cross).code : language!.code

            let (prompt, sotIndex) = buildPrompt(previous: Array(allTokens[promptResetSince...]), language: windowLanguage)
            let result = decodeWithFallback(generator, cross: cross, prompt: prompt, sotIndex: sotIndex)
            timings.decoder += Clock.seconds(since: started)

            if isSilence(result) {
                seek += window.frames
                progress?(min(1, Double(seek) / Double(contentFrames)))
                continue
            }

            let split = splitSegments(tokens: result.sequence.tokens, timeOffset: window.timeOffset, segmentSize: window.frames,
                                      segmentDuration: window.duration)
            var windowSegments = transcribedSegments(split.segments, of: result, window: window, firstID: segments.count, language: windowLanguage)
            if options.wordTimestamps, !windowSegments.isEmpty {
                started = Clock.now
                let aligner = WordAligner(engine: engine, language: windowLanguage, task: options.task)
                aligner.addWordTimestamps(to: &windowSegments, cross: cross, timeOffset: window.timeOffset, frames: window.frames)
                timings.alignment += Clock.seconds(since: started)
            }
            for segment in windowSegments { allTokens.append(contentsOf: segment.tokens) }
            segments.append(contentsOf: windowSegments)
            if let text, !windowSegments.isEmpty { text(windowSegments.map(\.text).joined()) }
            let nextSeek = split.nextSeek(seek)
            // A window always moves forward, even if the model closed it at its very first timestamp.
            seek = nextSeek > seek ? nextSeek : seek + window.frames

            if !options.conditionOnPreviousText || result.temperature > 0.5 { promptResetSince = allTokens.count }
            progress?(min(1, Double(seek) / Double(contentFrames)))
        }
        let resolved = language ?? ("en", 1)
        if let timeline { segments = timeline.restore(segments) }
        let text = segments.map(\.text).joined().trimmingCharacters(in: .whitespacesAndNewlines)
        var transcript = TranscriptionResult(text: text, language: resolved.code, languageProbability: resolved.probability,
                                             duration: duration, segments: segments)
        transcript.speechRegions = speechRegions
        transcript.timings = timings
        return transcript
    }

    /// Where a window sits in the recording, in mel frames and seconds.
    struct Window {
        let seek: Int
        let frames: Int
        var timeOffset: Double { Double(seek) / LongFormTranscription.framesPerSecond }
        var duration: Double { Double(frames) / LongFormTranscription.framesPerSecond }
    }

    /// One decoding of a window at one temperature, with the compression ratio of its text.
    struct Attempt {
        let sequence: GeneratedSequence
        let temperature: Float
        let ratio: Double
    }

    /// Whisper's temperature fallback: decode at each temperature in turn until a result is neither too
    /// repetitive (compression ratio) nor too unlikely (average log-probability), unless the window looks like
    /// silence; when every temperature fails, the most likely attempt among those not too repetitive.
    private mutating func decodeWithFallback(_ generator: SequenceGenerator, cross: CrossAttentionCache, prompt: [Int], sotIndex: Int) -> Attempt {
        let maxNew = min(engine.architecture.textContext / 2, engine.architecture.textContext - prompt.count)
        var attempts: [Attempt] = []
        defer { timings.decoderSteps += attempts.reduce(0) { $0 + $1.sequence.steps } }
        for temperature in options.temperatures {
            let sequence = generator.generate(
                cross: cross, prompt: prompt, sotIndex: sotIndex, beamSize: options.beamSize, temperature: temperature,
                bestOf: DecodingDefaults.bestOf, maxNewTokens: maxNew, random: &random)
            let text = engine.tokenizer.decode(sequence.tokens).trimmingCharacters(in: .whitespaces)
            let attempt = Attempt(sequence: sequence, temperature: temperature, ratio: compressionRatio(text))
            attempts.append(attempt)
            if !needsFallback(attempt) { return attempt }
        }
        let notRepetitive = attempts.filter { attempt in
            options.compressionRatioThreshold.map { attempt.ratio <= Double($0) } ?? true
        }
        let best = (notRepetitive.isEmpty ? attempts : notRepetitive).max { $0.sequence.averageLogProb < $1.sequence.averageLogProb }!
        // Every temperature failed: as faster-whisper's generate_with_fallback, the result carries the *last*
        // temperature tried, not the one of the attempt kept. What follows reads it: the segments' temperature,
        // and the prompt reset (above 0.5 the next window stops conditioning on this window's text, which
        // fallback just judged repetitive or unlikely).
        return Attempt(sequence: best.sequence, temperature: options.temperatures.last!, ratio: best.ratio)
    }

    /// Too repetitive or too unlikely, and not silence (where another temperature would not help).
    private func needsFallback(_ attempt: Attempt) -> Bool {
        let sequence = attempt.sequence
        if let noSpeech = options.noSpeechThreshold, sequence.noSpeechProb > noSpeech,
           let threshold = options.logProbThreshold, sequence.averageLogProb < threshold {
            return false
        }
        if let threshold = options.compressionRatioThreshold, attempt.ratio > Double(threshold) { return true }
        if let threshold = options.logProbThreshold, sequence.averageLogProb < threshold { return true }
        return false
    }

    /// The window holds no speech: the no-speech probability is high and the text not confidently likely.
    private func isSilence(_ result: Attempt) -> Bool {
        guard let noSpeech = options.noSpeechThreshold, result.sequence.noSpeechProb > noSpeech else { return false }
        let confident = options.logProbThreshold.map { result.sequence.averageLogProb > $0 } ?? false
        return !confident
    }

    /// The split pieces of a window as transcript segments, without empty or zero-length ones.
    private func transcribedSegments(_ pieces: [SplitSegment], of result: Attempt, window: Window, firstID: Int, language: String) -> [TranscribedSegment] {
        var segments: [TranscribedSegment] = []
        for piece in pieces {
            let text = engine.tokenizer.decode(piece.tokens)
            if piece.start == piece.end || text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
            segments.append(TranscribedSegment(
                id: firstID + segments.count, seek: window.seek, start: piece.start, end: piece.end, text: text,
                tokens: piece.tokens, temperature: Double(result.temperature),
                avgLogprob: Double(result.sequence.averageLogProb), compressionRatio: result.ratio,
                noSpeechProb: Double(result.sequence.noSpeechProb), language: language))
        }
        return segments
    }

    /// [startofprev, ≤223 previous tokens] + start-of-transcript sequence (+ no-timestamps).
    private func buildPrompt(previous: [Int], language: String) -> (tokens: [Int], sotIndex: Int) {
        var prompt: [Int] = []
        let maxPrevious = engine.architecture.textContext / 2 - 1
        if !previous.isEmpty {
            prompt.append(specials.sotPrev)
            prompt.append(contentsOf: previous.suffix(maxPrevious))
        }
        let sotIndex = prompt.count
        prompt.append(contentsOf: sotSequence(language: language))
        if !options.timestamps { prompt.append(specials.noTimestamps) }
        return (prompt, sotIndex)
    }

    func sotSequence(language: String) -> [Int] { Self.sotSequence(engine: engine, language: language, task: options.task) }

    /// [sot] for English-only models; [sot, language, transcribe|translate] for multilingual ones.
    static func sotSequence(engine: WhisperEngine, language: String, task: WhisperTask) -> [Int] {
        let specials = engine.tokenizer.specials
        guard engine.isMultilingual, let languageToken = specials.languageToken(language) else { return [specials.sot] }
        return [specials.sot, languageToken, task == .translate ? specials.translate : specials.transcribe]
    }

    /// Whisper's `suppress_tokens=[-1]`: non-speech symbols plus the task and control tokens.
    private func suppressedTokens() -> [Int] {
        var set = Set(engine.config.suppressIDs.isEmpty ? specials.nonSpeechTokens : engine.config.suppressIDs)
        set.formUnion([specials.transcribe, specials.translate, specials.sot, specials.sotPrev, specials.sotLM, specials.noSpeech])
        return set.sorted()
    }

    struct SplitSegment { var start: Double; var end: Double; var tokens: [Int] }

    /// Splits a window's tokens at consecutive timestamp pairs and says where the next window starts.
    func splitSegments(tokens: [Int], timeOffset: Double, segmentSize: Int, segmentDuration: Double)
        -> (segments: [SplitSegment], nextSeek: (Int) -> Int) {
        let begin = specials.timestampBegin
        let precision = SpecialTokens.timestampResolution
        let singleTimestampEnding = tokens.count >= 2 && tokens[tokens.count - 2] < begin && tokens[tokens.count - 1] >= begin
        var consecutive: [Int] = []
        for i in 1..<max(1, tokens.count) where tokens[i] >= begin && tokens[i - 1] >= begin { consecutive.append(i) }
        var pieces: [SplitSegment] = []
        if !consecutive.isEmpty {
            var slices = consecutive
            if singleTimestampEnding { slices.append(tokens.count) }
            var last = 0
            for current in slices {
                let sliced = Array(tokens[last..<current])
                let start = timeOffset + Double(sliced[0] - begin) * precision
                let end = timeOffset + Double(sliced[sliced.count - 1] - begin) * precision
                pieces.append(SplitSegment(start: start, end: end, tokens: sliced))
                last = current
            }
            if singleTimestampEnding {
                return (pieces, { $0 + segmentSize })
            }
            let lastTimestampPosition = tokens[last - 1] - begin
            return (pieces, { $0 + lastTimestampPosition * Self.inputStride })
        }
        var duration = segmentDuration
        if let lastTimestamp = tokens.last(where: { $0 >= begin }), lastTimestamp != begin {
            duration = Double(lastTimestamp - begin) * precision
        }
        pieces.append(SplitSegment(start: timeOffset, end: timeOffset + duration, tokens: tokens))
        return (pieces, { $0 + segmentSize })
    }
}

/// Monotonic time for stage timings.
enum Clock {
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
