public import ArgumentParser
import Foundation
public import StenoEngine

/// `steno transcribe FILE…`: offline transcription with the in-process Whisper engine, no server needed.
/// Several files share one loaded model; each transcript is printed in turn.
public struct TranscribeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Transcribe audio files offline with the built-in Whisper engine.",
        discussion: "Any format ffmpeg reads is accepted. With several files, each transcript is printed after a header line.")

    @Argument(help: "Audio or video files to transcribe.")
    var files: [String]

    @Option(name: .long, help: "CTranslate2 Whisper model directory (env STENO_MODEL).")
    var model: String = ProcessInfo.processInfo.environment["STENO_MODEL"] ?? "models/tiny.en"

    @Option(name: .long, help: "Output format: text, json, srt, vtt or rttm (speaker turns; with --speakers or --multichannel).")
    var format: TranscriptFormat = .text

    @Option(name: .long, help: "Beam width (1 = greedy).")
    var beam: Int = 5

    @Option(name: .long, help: "Language code (e.g. en, de); detected on multilingual models when omitted.")
    var language: String?

    @Option(name: .long, help: "transcribe, or translate (to English; multilingual models only).")
    var task: WhisperTask = .transcribe

    @Flag(name: .long, help: "Detect the language of every 30 s window (code-switching; multilingual models only).")
    var multilingual = false

    @Flag(name: .long, help: "Word-level timestamps (JSON output carries them).")
    var wordTimestamps = false

    @Option(name: .long, help: "Text that conditions the first window (names, spelling, style).")
    var prompt: String?

    @Option(name: .long, help: "One sampling temperature (0-1); 0, the default, falls back to higher ones when a window fails.")
    var temperature: Double?

    @Flag(name: .long, inversion: .prefixedNo, help: "Voice-activity detection: decode only speech (Silero VAD), times kept.")
    var vad = true

    @Option(name: .long, help: "Silero VAD tensor file (env STENO_VAD_MODEL).")
    var vadModel: String = ProcessInfo.processInfo.environment["STENO_VAD_MODEL"] ?? "models/silero-vad/silero_vad.safetensors"

    @OptionGroup var speech: SpeechDetectionOptions

    @OptionGroup var speakerLabels: SpeakerLabelOptions

    @Option(name: .long, help: "GE2E speaker-encoder tensor file, for --speakers (env STENO_SPEAKER_MODEL).")
    var speakerModel: String = ProcessInfo.processInfo.environment["STENO_SPEAKER_MODEL"] ?? "models/speaker-encoder/ge2e.safetensors"

    @Flag(name: .long, help: "Transcribe every audio channel on its own (a stereo call: one speaker per channel); segments carry their channel.")
    var multichannel = false

    @Option(name: .long, help: "Threads for matrix products (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Print timing, real-time factor and encoder GFLOP/s on stderr.")
    var verbose = false

    public init() {}

    public func validate() throws {
        guard (1...32).contains(beam) else { throw ValidationError("--beam must be between 1 and 32") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let problem = speech.detection.problem { throw ValidationError(problem) }
        if let temperature, !(0...1).contains(temperature) { throw ValidationError("--temperature must be from 0 to 1") }
        if let problem = speakerLabels.problem { throw ValidationError(problem) }
    }

    public func run() throws {
        let loadStart = Date()
        let engine: WhisperEngine
        do {
            engine = try WhisperEngine(
                modelDirectory: URL(fileURLWithPath: model), threads: threads,
                voiceActivityModel: vad || speakerLabels.speakers ? URL(fileURLWithPath: vadModel) : nil,
                speakerModel: speakerLabels.speakers ? URL(fileURLWithPath: speakerModel) : nil)
        } catch let error as EngineError {
            throw CleanExit.message("error: \(error)")
        }
        let loadSeconds = Date().timeIntervalSince(loadStart)
        if verbose {
            let window = engine.timeEncoderWindow()
            stderrLine(String(format: "model: loaded in %.2f s", loadSeconds))
            stderrLine(String(format: "encoder: %.1f GFLOP/s (%.3f s per 30 s window)", engine.encoderFlopsPerWindow / window / 1e9, window))
        }
        var options = TranscriptionOptions(
            language: language, beamSize: beam, wordTimestamps: wordTimestamps, initialPrompt: prompt,
            vad: vad ? speech.detection : nil, task: task, multilingual: multilingual,
            speakers: speakerLabels.options, multichannel: multichannel)
        if let temperature, temperature > 0 { options.temperatures = [Float(temperature)] }
        let decoder = AudioDecoder()
        var failures = 0
        var totalAudio = 0.0
        var totalWall = 0.0
        for file in files {
            let start = Date()
            do {
                let result = try engine.transcribe(file: URL(fileURLWithPath: file), options: options, decoder: decoder)
                let wall = Date().timeIntervalSince(start)
                totalAudio += result.duration
                totalWall += wall
                if files.count > 1 { print("==> \(file) <==") }
                let recordingID = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                let rendered = result.rendered(as: format, recordingID: recordingID)
                print(rendered, terminator: rendered.hasSuffix("\n") ? "" : "\n")
                if verbose {
                    let t = result.timings
                    stderrLine(String(format: "%@: %.2f s of audio in %.2f s (real-time factor %.1fx)", file, result.duration, wall, result.duration / max(wall, 1e-9)))
                    stderrLine(String(
                        format: "  vad %.3f s, features %.3f s, encoder %.3f s (%d windows, %.1f GFLOP/s), decoder %.3f s (%d steps, %.1f ms/step), alignment %.3f s",
                        t.vad, t.features, t.encoder, t.windows, engine.encoderFlopsPerWindow * Double(t.windows) / max(t.encoder, 1e-9) / 1e9,
                        t.decoder, t.decoderSteps, t.decoder / Double(max(1, t.decoderSteps)) * 1000, t.alignment))
                    if speakerLabels.speakers {
                        stderrLine(String(format: "  diarization %.3f s (%d speakers)", t.diarization, result.speakers?.count ?? 0))
                    }
                }
            } catch let error as EngineError {
                failures += 1
                stderrLine("error: \(file): \(error) [\(error.code)]")
            }
        }
        if verbose, files.count > 1 {
            stderrLine(String(format: "total: %.2f s of audio in %.2f s (real-time factor %.1fx)", totalAudio, totalWall, totalAudio / max(totalWall, 1e-9)))
        }
        if failures > 0 { throw ExitCode(1) }
    }

    private func stderrLine(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

extension TranscriptFormat: ExpressibleByArgument {}

/// Speaker labels on the command line: shared by `steno transcribe` and `steno submit`.
public struct SpeakerLabelOptions: ParsableArguments {
    @Flag(name: .long, help: "Speaker labels: who said what (SPEAKER_1, …) on segments and words.")
    public var speakers = false
    @Option(name: .long, help: "With --speakers: the number of speakers, when known.")
    public var speakersExpected: Int?
    @Option(name: .long, help: "With --speakers: at least this many speakers.")
    public var minSpeakers: Int?
    @Option(name: .long, help: "With --speakers: at most this many speakers.")
    public var maxSpeakers: Int?

    public init() {}

    /// The engine's options, or nil without --speakers.
    public var options: SpeakerOptions? {
        speakers ? SpeakerOptions(expected: speakersExpected, minimum: minSpeakers, maximum: maxSpeakers) : nil
    }

    /// Why the options cannot be used, in the command line's words.
    public var problem: String? {
        if !speakers, speakersExpected != nil || minSpeakers != nil || maxSpeakers != nil {
            return "--speakers-expected, --min-speakers and --max-speakers need --speakers"
        }
        return options?.problem.map { $0.replacingOccurrences(of: "speakers_expected", with: "--speakers-expected")
            .replacingOccurrences(of: "min_speakers", with: "--min-speakers").replacingOccurrences(of: "max_speakers", with: "--max-speakers") }
    }

    /// The options given, as the form fields of `POST /transcribe`.
    public var formFields: [String: String] {
        guard speakers else { return [:] }
        var fields = ["speaker_labels": "true"]
        if let speakersExpected { fields["speakers_expected"] = String(speakersExpected) }
        if let minSpeakers { fields["min_speakers"] = String(minSpeakers) }
        if let maxSpeakers { fields["max_speakers"] = String(maxSpeakers) }
        return fields
    }
}
extension WhisperTask: ExpressibleByArgument {}

/// The voice-activity detection parameters of the command line, faster-whisper's `vad_parameters` names and
/// defaults (`SpeechDetection.fasterWhisper`): shared by `steno transcribe` and `steno submit`.
public struct SpeechDetectionOptions: ParsableArguments {
    @Option(name: .long, help: "VAD: speech probability that starts speech (0–1, default 0.5).")
    public var vadThreshold: Double?
    @Option(name: .long, help: "VAD: shorter speech is dropped, in ms (default 0).")
    public var vadMinSpeechDurationMs: Double?
    @Option(name: .long, help: "VAD: longer speech is cut, in seconds (default: no limit).")
    public var vadMaxSpeechDurationS: Double?
    @Option(name: .long, help: "VAD: a silence this long ends speech, in ms (default 2000).")
    public var vadMinSilenceDurationMs: Double?
    @Option(name: .long, help: "VAD: padding on each side of speech, in ms (default 400).")
    public var vadSpeechPadMs: Double?

    public init() {}

    /// The options given, by `SpeechDetection.Parameter` name, in the order of `SpeechDetection.parameters`.
    private var values: [String: Double] {
        let given = [vadThreshold, vadMinSpeechDurationMs, vadMaxSpeechDurationS, vadMinSilenceDurationMs, vadSpeechPadMs]
        var values: [String: Double] = [:]
        for (parameter, value) in zip(SpeechDetection.parameters, given) { values[parameter.name] = value }
        return values
    }

    /// faster-whisper's defaults with the options given.
    public var detection: SpeechDetection { SpeechDetection.fasterWhisper.setting(values) }

    /// The options given, as the form fields of `POST /transcribe`.
    public var formFields: [String: String] { values.mapValues { String($0) } }
}
