import Foundation
import StenoEngine
import Testing

@Suite struct TranscriptFormatTests {
    private func segment(_ id: Int, _ start: Double, _ end: Double, _ text: String) -> TranscribedSegment {
        TranscribedSegment(id: id, start: start, end: end, text: text, tokens: [id], temperature: 0,
                           avgLogprob: -0.25, compressionRatio: 1.5, noSpeechProb: 0.01)
    }

    private var result: TranscriptionResult {
        TranscriptionResult(
            text: "Hello there. General Kenobi!", language: "en", languageProbability: 1, duration: 4.25,
            segments: [segment(0, 0, 2.5, " Hello there."), segment(1, 2.5, 4.2, " General Kenobi!")])
    }

    @Test func text() {
        #expect(result.rendered(as: .text) == "Hello there. General Kenobi!\n")
    }

    @Test func srt() {
        #expect(result.rendered(as: .srt) == """
            1
            00:00:00,000 --> 00:00:02,500
            Hello there.

            2
            00:00:02,500 --> 00:00:04,200
            General Kenobi!

            """)
    }

    @Test func vtt() {
        #expect(result.rendered(as: .vtt) == """
            WEBVTT

            00:00:00.000 --> 00:00:02.500
            Hello there.

            00:00:02.500 --> 00:00:04.200
            General Kenobi!

            """)
    }

    /// Long recordings: hours in both formats, past 99 hours too; times rounded to the nearest millisecond.
    @Test func hourLongTimestampsAndRounding() {
        let long = TranscriptionResult(
            text: "", language: "en", languageProbability: 1, duration: 400_000,
            segments: [
                segment(0, 3599.9996, 3661.5, " one"),
                segment(1, 3661.0004, 36_000.0014, " two"),
                segment(2, 7322.1235, 7322.1244, " three"),
                segment(3, 360_000, 360_001.25, " four"),
            ])
        let srt = long.rendered(as: .srt)
        #expect(srt.contains("1\n01:00:00,000 --> 01:01:01,500\none\n"))
        #expect(srt.contains("2\n01:01:01,000 --> 10:00:00,001\ntwo\n"))
        #expect(srt.contains("3\n02:02:02,124 --> 02:02:02,124\nthree\n"))
        #expect(srt.contains("4\n100:00:00,000 --> 100:00:01,250\nfour\n"))
        let vtt = long.rendered(as: .vtt)
        #expect(vtt.contains("\n01:00:00.000 --> 01:01:01.500\none\n"))
        #expect(vtt.contains("\n100:00:00.000 --> 100:00:01.250\nfour\n"))
    }

    /// Empty segments are skipped and numbering stays consecutive; text is trimmed and cannot fake a timing line.
    @Test func cueHygiene() {
        let messy = TranscriptionResult(
            text: "a b", language: "en", languageProbability: 1, duration: 3,
            segments: [segment(0, 0, 1, "  "), segment(1, 1, 2, "  a --> b \n"), segment(2, 2, 1.5, "c")])
        #expect(messy.rendered(as: .srt) == "1\n00:00:01,000 --> 00:00:02,000\na -> b\n\n2\n00:00:02,000 --> 00:00:02,000\nc\n")
        let empty = TranscriptionResult(text: "", language: "en", languageProbability: 1, duration: 0, segments: [])
        #expect(empty.rendered(as: .srt) == "\n")
        #expect(empty.rendered(as: .vtt) == "WEBVTT\n")
        #expect(empty.rendered(as: .text) == "\n")
    }

    @Test func json() throws {
        var withWords = result
        withWords.segments[0].words = [TranscribedWord(start: 0, end: 0.5, word: " Hello", probability: 0.9)]
        let rendered = withWords.rendered(as: .json)
        // snake_case keys, sorted, pretty-printed.
        #expect(rendered.contains("\"avg_logprob\" : -0.25"))
        #expect(rendered.contains("\"language_probability\" : 1"))
        #expect(rendered.contains("\"no_speech_prob\" : 0.01"))
        #expect(rendered.contains("\"compression_ratio\" : 1.5"))
        let keys = ["\"duration\"", "\"language\"", "\"language_probability\"", "\"segments\"", "\"text\""]
        let positions = keys.map { rendered.range(of: $0)!.lowerBound }
        #expect(positions == positions.sorted())
        #expect(rendered.hasPrefix("{\n  \"duration\" : 4.25,"))
        let decoded = try JSONDecoder().decode(TranscriptionResult.self, from: Data(rendered.utf8))
        #expect(decoded == withWords)
    }

    /// A log-probability of -infinity cannot be a JSON number; the rendering still succeeds.
    @Test func jsonWithNonFiniteNumbers() {
        var odd = result
        odd.segments[0].avgLogprob = -.infinity
        #expect(odd.rendered(as: .json).contains("\"avg_logprob\" : \"-Infinity\""))
    }

    @Test func formatNames() {
        #expect(TranscriptFormat.allCases.map(\.rawValue) == ["text", "json", "srt", "vtt", "rttm"])
        #expect(TranscriptFormat(rawValue: "srt") == .srt)
        #expect(TranscriptFormat.text.fileExtension == "txt")
        #expect(TranscriptFormat.vtt.contentType.hasPrefix("text/vtt"))
    }

    private var withSpeakers: TranscriptionResult {
        var labelled = result
        labelled.segments[0].speaker = "SPEAKER_1"
        labelled.segments[1].speaker = "SPEAKER_2"
        labelled.speakerTurns = [SpeakerTurn(start: 0, end: 2.5, speaker: "SPEAKER_1"), SpeakerTurn(start: 2.5, end: 4.2, speaker: "SPEAKER_2")]
        return labelled
    }

    @Test func subtitlesNameTheirSpeakers() {
        #expect(withSpeakers.rendered(as: .srt) == """
            1
            00:00:00,000 --> 00:00:02,500
            SPEAKER_1: Hello there.

            2
            00:00:02,500 --> 00:00:04,200
            SPEAKER_2: General Kenobi!

            """)
        #expect(withSpeakers.rendered(as: .vtt) == """
            WEBVTT

            00:00:00.000 --> 00:00:02.500
            <v SPEAKER_1>Hello there.

            00:00:02.500 --> 00:00:04.200
            <v SPEAKER_2>General Kenobi!

            """)
    }

    @Test func rttmListsTheTurns() {
        #expect(withSpeakers.rendered(as: .rttm, recordingID: "my call") == """
            SPEAKER my_call 1 0.000 2.500 <NA> <NA> SPEAKER_1 <NA> <NA>
            SPEAKER my_call 1 2.500 1.700 <NA> <NA> SPEAKER_2 <NA> <NA>

            """)
        // Without speaker labels there are no turns.
        #expect(result.rendered(as: .rttm) == "")
        let decoded = try? JSONDecoder().decode(TranscriptionResult.self, from: Data(withSpeakers.rendered(as: .json).utf8))
        #expect(decoded == withSpeakers)
    }
}
