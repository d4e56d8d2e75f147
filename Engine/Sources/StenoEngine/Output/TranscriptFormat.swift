import Foundation

/// The ways a transcript can be written out.
public enum TranscriptFormat: String, Sendable, CaseIterable, Codable {
    /// The transcript as plain text, one line.
    case text
    /// The whole `TranscriptionResult`: snake_case keys, pretty-printed, keys sorted.
    case json
    /// SubRip subtitles: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
    case srt
    /// WebVTT subtitles: a `WEBVTT` header and cues timed `HH:MM:SS.mmm --> HH:MM:SS.mmm`.
    case vtt
    /// NIST RTTM, the speaker turns diarization scorers read: one `SPEAKER` line per turn (empty without
    /// speaker labels or channels).
    case rttm

    /// The HTTP media type of a rendering in this format.
    public var contentType: String {
        switch self {
        case .text: "text/plain; charset=utf-8"
        case .json: "application/json"
        case .srt: "application/x-subrip; charset=utf-8"
        case .vtt: "text/vtt; charset=utf-8"
        case .rttm: "text/plain; charset=utf-8"
        }
    }

    /// The usual file extension, without the dot.
    public var fileExtension: String { rawValue == "text" ? "txt" : rawValue }
}

extension TranscriptionResult {
    /// The transcript written in `format`; every format ends with a newline.
    ///
    /// Subtitle cues are the segments with their text trimmed; segments without text are left out and the
    /// rest numbered consecutively. Times are rounded to the millisecond; hours grow past two digits as needed.
    /// With speakers, an SRT cue starts `SPEAKER_1: ` and a VTT cue carries a voice tag `<v SPEAKER_1>`.
    /// `recordingID` names the recording in RTTM lines (no spaces; they are replaced).
    public func rendered(as format: TranscriptFormat, recordingID: String = "audio") -> String {
        switch format {
        case .text: text.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        case .json: renderedJSON()
        case .srt: renderedCues(separator: ",", header: nil, numbered: true) { speaker, text in "\(speaker): \(text)" }
        case .vtt: renderedCues(separator: ".", header: "WEBVTT", numbered: false) { speaker, text in "<v \(speaker)>\(text)" }
        case .rttm: renderedRTTM(recordingID: recordingID)
        }
    }

    /// `SPEAKER <recording> <channel> <start> <duration> <NA> <NA> <speaker> <NA> <NA>`, channels 1-based.
    private func renderedRTTM(recordingID: String) -> String {
        let id = recordingID.isEmpty ? "audio" : String(recordingID.map { $0.isWhitespace ? "_" : $0 })
        return (speakerTurns ?? []).map { turn in
            let start = String(format: "%.3f", turn.start), duration = String(format: "%.3f", max(0, turn.end - turn.start))
            return "SPEAKER \(id) \((turn.channel ?? 0) + 1) \(start) \(duration) <NA> <NA> \(turn.speaker) <NA> <NA>\n"
        }.joined()
    }

    private func renderedJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // A log-probability can be -infinity; JSON has no such number, so it is written as a string.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        guard let data = try? encoder.encode(self) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private func renderedCues(separator: String, header: String?, numbered: Bool, speaking: (String, String) -> String) -> String {
        var blocks: [String] = header.map { [$0] } ?? []
        var number = 0
        for segment in segments {
            // "-->" inside a cue's text would be read as a timing line.
            let text = segment.text.trimmingCharacters(in: .whitespacesAndNewlines)
                .replacingOccurrences(of: "-->", with: "->")
            guard !text.isEmpty else { continue }
            let cue = segment.speaker.map { speaking($0, text) } ?? text
            number += 1
            let start = Self.timestamp(segment.start, separator: separator)
            let end = Self.timestamp(max(segment.start, segment.end), separator: separator)
            let timing = "\(start) --> \(end)"
            blocks.append(numbered ? "\(number)\n\(timing)\n\(cue)" : "\(timing)\n\(cue)")
        }
        return blocks.joined(separator: "\n\n") + "\n"
    }

    /// `HH:MM:SS` + separator + `mmm`, from seconds rounded to the nearest millisecond (negative times are 0).
    static func timestamp(_ seconds: Double, separator: String) -> String {
        let milliseconds = seconds.isFinite ? max(0, Int((seconds * 1000).rounded())) : 0
        let hours = milliseconds / 3_600_000
        let minutes = milliseconds / 60_000 % 60
        let secs = milliseconds / 1000 % 60
        let millis = milliseconds % 1000
        return "\(pad(hours, 2)):\(pad(minutes, 2)):\(pad(secs, 2))\(separator)\(pad(millis, 3))"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
