import Foundation
import StenoEngine
import Testing

/// Who said what, end to end in the engine, with the real tiny.en, Silero VAD and GE2E models on real speech
/// of two different people: the LibriVox reader of pocketsphinx-testdata and the voice of Asterisk's English
/// prompts.
@Suite("speaker labels and channels", .serialized)
struct SpeakerTranscriptionTests {
    static let speakerModel = IOTestSupport.repositoryRoot.appendingPathComponent("models/speaker-encoder/ge2e.safetensors")
    static let engine: Result<WhisperEngine, any Error> = Result {
        try WhisperEngine(modelDirectory: ModelFixture.tinyEnglish, threads: 2, voiceActivityModel: SileroVADTests.model,
                          speakerModel: speakerModel)
    }
    var engine: WhisperEngine { get throws { try Self.engine.get() } }
    static let rate = 16_000

    static func librivox(_ id: String) throws -> [Float] {
        try AudioDecoder().decode(file: ModelFixture.librivox.appendingPathComponent("sense_and_sensibility_01_austen_64kb-\(id).wav"))
    }

    static func prompt(_ name: String) throws -> [Float] {
        try AudioDecoder().decode(file: URL(fileURLWithPath: "/usr/share/asterisk/sounds/en/\(name).wav"))
    }

    /// Turns of the two voices, half a second apart, and each turn's span and speaker (0 the reader, 1 the prompts).
    static func conversation() throws -> (samples: [Float], turns: [(start: Double, end: Double, speaker: Int)]) {
        let turns: [(samples: [Float], speaker: Int)] = [
            (try librivox("0870"), 0), (try prompt("vm-intro"), 1), (try librivox("0880"), 0),
            (try prompt("agent-newlocation"), 1), (try librivox("0890"), 0), (try prompt("queue-periodic-announce"), 1),
            (try librivox("0920"), 0),
        ]
        let pause = [Float](repeating: 0, count: rate / 2)
        var samples: [Float] = [], spans: [(start: Double, end: Double, speaker: Int)] = []
        for turn in turns {
            let start = Double(samples.count) / Double(rate)
            samples += turn.samples
            spans.append((start, Double(samples.count) / Double(rate), turn.speaker))
            samples += pause
        }
        return (samples, spans)
    }

    @Test func twoVoicesInTurnsGetTwoLabelsAndTheirWords() throws {
        let (samples, truth) = try Self.conversation()
        let options = TranscriptionOptions(wordTimestamps: true, vad: .fasterWhisper, speakers: SpeakerOptions())
        let result = try engine.transcribe(samples: samples, options: options)

        let summary = try #require(result.speakers)
        #expect(summary.map(\.speaker) == ["SPEAKER_1", "SPEAKER_2"], "\(summary)")
        // The reader speaks first, so is SPEAKER_1; speaking times are those of the turns, within a second each.
        let readerTime = truth.filter { $0.speaker == 0 }.reduce(0) { $0 + $1.end - $1.start }
        let promptTime = truth.filter { $0.speaker == 1 }.reduce(0) { $0 + $1.end - $1.start }
        #expect(abs(summary[0].speakingTime - readerTime) < 2, "\(summary) vs \(readerTime), \(promptTime)")
        #expect(abs(summary[1].speakingTime - promptTime) < 2, "\(summary) vs \(readerTime), \(promptTime)")

        // Every word in a turn carries that turn's speaker (95 % at least), and its segment the same.
        var right = 0, counted = 0
        for segment in result.segments {
            for word in segment.words ?? [] {
                #expect(word.speaker == segment.speaker)
                let middle = (word.start + word.end) / 2
                guard let turn = truth.first(where: { middle >= $0.start && middle <= $0.end }) else { continue }
                counted += 1
                if word.speaker == "SPEAKER_\(turn.speaker + 1)" { right += 1 }
            }
        }
        #expect(counted > 80)
        #expect(Double(right) >= 0.95 * Double(counted), "\(right) of \(counted) words right")
        // One text line per change of speaker: the seven turns.
        let lines = result.text.split(separator: "\n")
        #expect(lines.count == 7, "\(result.text)")
        #expect(lines.first?.hasPrefix("[SPEAKER_1] ") == true && lines[1].hasPrefix("[SPEAKER_2] "))
        // Turns alternate and lie within the speech.
        let turns = try #require(result.speakerTurns)
        #expect(turns.count >= 7)
        #expect(result.rendered(as: .rttm, recordingID: "talk").split(separator: "\n").count == turns.count)
    }

    @Test func aGivenSpeakerCountIsFound() throws {
        let (samples, _) = try Self.conversation()
        // Words were not asked for: they are aligned for the labels, then left out.
        let result = try engine.transcribe(samples: samples, options: TranscriptionOptions(vad: .fasterWhisper, speakers: SpeakerOptions(expected: 3)))
        #expect(result.speakers?.count == 3)
        #expect(result.segments.allSatisfy { $0.words == nil && $0.speaker != nil })
    }

    @Test func oneVoiceIsOneSpeaker() throws {
        let samples = try Self.librivox("0870") + [Float](repeating: 0, count: Self.rate) + Self.librivox("0890")
        let result = try engine.transcribe(samples: samples, options: TranscriptionOptions(speakers: SpeakerOptions()))
        #expect(result.speakers?.map(\.speaker) == ["SPEAKER_1"])
        #expect(result.text.hasPrefix("[SPEAKER_1] "))
        #expect(!result.text.contains("SPEAKER_2"))
    }

    @Test func silenceHasNoSpeakers() throws {
        let options = TranscriptionOptions(vad: .fasterWhisper, speakers: SpeakerOptions())
        let result = try engine.transcribe(samples: [Float](repeating: 0, count: 10 * Self.rate), options: options)
        #expect(result.segments.isEmpty)
        #expect(result.speakers == [])
        #expect(result.speakerTurns == [])
    }

    @Test func badSpeakerCountsAreRefused() throws {
        for options in [SpeakerOptions(expected: 0), SpeakerOptions(minimum: 3, maximum: 2), SpeakerOptions(expected: 2, maximum: 3)] {
            #expect(throws: EngineError.self) {
                try engine.transcribe(samples: [Float](repeating: 0, count: Self.rate), options: TranscriptionOptions(speakers: options))
            }
        }
    }

    // MARK: Channels

    /// A stereo WAV (float32) with `left` and `right` as its channels, the shorter padded with silence.
    static func stereo(_ left: [Float], _ right: [Float], name: String) throws -> URL {
        let frames = max(left.count, right.count)
        var interleaved = [Float](repeating: 0, count: 2 * frames)
        for i in 0..<left.count { interleaved[2 * i] = left[i] }
        for i in 0..<right.count { interleaved[2 * i + 1] = right[i] }
        let raw = AudioFixtures.url(name + ".raw")
        try interleaved.withUnsafeBytes { try Data($0).write(to: raw) }
        let target = AudioFixtures.url(name)
        try AudioFixtures.run("ffmpeg", ["-nostdin", "-loglevel", "error", "-y", "-f", "f32le", "-ar", "16000", "-ac", "2",
                                         "-i", raw.path, "-c:a", "pcm_f32le", target.path])
        return target
    }

    @Test func eachChannelIsTranscribedAsItsRecordingAlone() throws {
        // The prompt starts two seconds into the reading: the two overlap, as on a call.
        let reader = try Self.librivox("0870")
        let prompt = [Float](repeating: 0, count: 2 * Self.rate) + (try Self.prompt("dir-intro"))
        let file = try Self.stereo(reader, prompt, name: "call.wav")
        let options = TranscriptionOptions(vad: .fasterWhisper, multichannel: true)
        let result = try engine.transcribe(file: file, options: options)
        let readerAlone = try engine.transcribe(samples: reader, options: TranscriptionOptions(vad: .fasterWhisper))
        let promptAlone = try engine.transcribe(samples: try Self.prompt("dir-intro"), options: TranscriptionOptions(vad: .fasterWhisper))

        #expect(result.channels == 2)
        let left = result.segments.filter { $0.channel == 0 }, right = result.segments.filter { $0.channel == 1 }
        #expect(left.count + right.count == result.segments.count)
        #expect(left.map(\.text).joined().trimmingCharacters(in: .whitespaces) == readerAlone.text)
        #expect(right.map(\.text).joined().trimmingCharacters(in: .whitespaces) == promptAlone.text)
        #expect(left.allSatisfy { $0.speaker == "SPEAKER_1" } && right.allSatisfy { $0.speaker == "SPEAKER_2" })
        // Merged in time order; the prompt's times are the stereo file's (two seconds later than alone).
        #expect(result.segments.map(\.start) == result.segments.map(\.start).sorted())
        #expect(abs((right.first?.start ?? 0) - ((promptAlone.segments.first?.start ?? 0) + 2)) < 0.5)
        // Mixed down to mono, the same call loses words of both.
        let mixed = try engine.transcribe(file: file, options: TranscriptionOptions(vad: .fasterWhisper))
        let separateWER = ModelFixture.wordErrorRate(reference: readerAlone.text + " " + promptAlone.text,
                                                     hypothesis: left.map(\.text).joined() + " " + right.map(\.text).joined())
        #expect(separateWER == 0)
        #expect(mixed.text != result.text)
        // The speakers are the channels, each with its speaking time.
        #expect(result.speakers?.map(\.speaker) == ["SPEAKER_1", "SPEAKER_2"])
        #expect(result.speakers?.map(\.channel) == [0, 1])
        #expect(result.rendered(as: .rttm).contains("SPEAKER audio 2 "))
    }

    @Test func channelsWithSpeakerLabelsNumberSpeakersAcrossChannels() throws {
        let (conversation, _) = try Self.conversation()
        let file = try Self.stereo(conversation, try Self.librivox("0870"), name: "panel.wav")
        let result = try engine.transcribe(file: file, options: TranscriptionOptions(vad: .fasterWhisper, speakers: SpeakerOptions(), multichannel: true))
        // Two voices on the left, one on the right: SPEAKER_3 is the right channel's.
        #expect(result.speakers?.map(\.speaker) == ["SPEAKER_1", "SPEAKER_2", "SPEAKER_3"], "\(result.speakers ?? [])")
        #expect(result.segments.filter { $0.channel == 1 }.allSatisfy { $0.speaker == "SPEAKER_3" })
    }

    @Test func aMonoFileIsOneChannel() throws {
        let file = try AudioFixtures.encoded("mono.ogg", ["-c:a", "libvorbis"])
        let result = try engine.transcribe(file: file, options: TranscriptionOptions(multichannel: true))
        #expect(result.channels == 1)
        #expect(!result.segments.isEmpty && result.segments.allSatisfy { $0.channel == 0 && $0.speaker == "SPEAKER_1" })
    }

    @Test func tooManyChannelsAreRefusedBeforeDecoding() throws {
        let raw = AudioFixtures.url("nine.raw")
        try Data(count: 16000 * 4 * 9).write(to: raw)
        let file = AudioFixtures.url("nine.wav")
        try AudioFixtures.run("ffmpeg", ["-nostdin", "-loglevel", "error", "-y", "-f", "f32le", "-ar", "16000", "-ac", "9",
                                         "-i", raw.path, "-c:a", "pcm_f32le", file.path])
        #expect(throws: EngineError.tooManyChannels(count: 9, limit: 8)) {
            try AudioDecoder().decodeChannels(file: file, limitSeconds: nil)
        }
    }
}
