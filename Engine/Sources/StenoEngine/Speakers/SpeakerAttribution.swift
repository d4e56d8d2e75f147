import Foundation

/// Puts speaker labels on a transcript: every word takes the speaker holding most of its time, a segment is
/// split wherever the speaker changes between its words, and the result gains its speaker turns and a summary.
struct SpeakerAttribution {
    let tokenizer: WhisperTokenizer
    /// The label of each speaker index (`SPEAKER_1`, …).
    let names: [String]
    let channel: Int?

    /// The transcript with `speaker` on every segment and word, split at speaker changes.
    func apply(_ labels: Diarizer.FrameLabels, to result: TranscriptionResult) -> TranscriptionResult {
        var result = result
        var segments: [TranscribedSegment] = []
        for segment in result.segments {
            guard let words = segment.words, !words.isEmpty else {
                var segment = segment
                segment.speaker = labels.speaker(from: segment.start, to: segment.end).map { names[$0] }
                segment.channel = channel
                segments.append(segment)
                continue
            }
            var speakers = words.map { labels.speaker(from: $0.start, to: $0.end) }
            // A lone word between two of another speaker's is a flip of the labels, not a turn.
            for i in speakers.indices.dropFirst().dropLast()
            where speakers[i - 1] == speakers[i + 1] && speakers[i] != speakers[i - 1] && words[i].end - words[i].start < 0.5 {
                speakers[i] = speakers[i - 1]
            }
            var first = 0
            while first < words.count {
                var end = first + 1
                while end < words.count, speakers[end] == speakers[first] { end += 1 }
                var piece = segment
                piece.words = words[first..<end].map { word in
                    var word = word
                    word.speaker = speakers[first].map { names[$0] }
                    return word
                }
                if first > 0 || end < words.count {
                    piece.text = words[first..<end].map(\.word).joined()
                    piece.tokens = tokenizer.encode(piece.text)
                    piece.start = words[first].start
                    piece.end = words[end - 1].end
                }
                piece.speaker = speakers[first].map { names[$0] }
                piece.channel = channel
                segments.append(piece)
                first = end
            }
        }
        for i in segments.indices { segments[i].id = i }
        result.segments = segments
        result.speakerTurns = labels.turns.map { SpeakerTurn(start: $0.start, end: $0.end, speaker: names[$0.speaker], channel: channel) }
        return result
    }

    /// Labels numbered from `first` in the order speakers first speak, for a diarization's speaker indices.
    static func names(for labels: Diarizer.FrameLabels, startingAt first: Int) -> (names: [String], count: Int) {
        var order: [Int: Int] = [:]
        for case let label? in labels.labels where order[label] == nil { order[label] = order.count }
        var names = [String](repeating: "", count: labels.speakers)
        for index in 0..<labels.speakers {
            // A speaker every frame of whom smoothing took away keeps a name (no turn will use it).
            let number = order[index] ?? (order.count + index)
            names[index] = "SPEAKER_\(first + number)"
        }
        return (names, order.count)
    }
}

extension TranscriptionResult {
    /// `speakers` from the turns (each speaker's total time, in order of their labels' numbers) and `text` as
    /// one line per change of speaker, `[SPEAKER_1] …`.
    mutating func summariseSpeakers() {
        guard let turns = speakerTurns else { return }
        var totals: [String: (time: Double, channel: Int?)] = [:]
        for turn in turns { totals[turn.speaker, default: (0, turn.channel)].time += turn.end - turn.start }
        speakers = totals.map { SpeakerSummary(speaker: $0.key, speakingTime: ($0.value.time * 100).rounded() / 100, channel: $0.value.channel) }
            .sorted { Self.labelNumber($0.speaker) < Self.labelNumber($1.speaker) }
        var lines: [String] = []
        var current: String? = nil
        for segment in segments {
            let piece = segment.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !piece.isEmpty else { continue }
            if let speaker = segment.speaker, speaker != current || lines.isEmpty {
                lines.append("[\(speaker)] \(piece)")
                current = speaker
            } else if lines.isEmpty {
                lines.append(piece)
            } else {
                lines[lines.count - 1] += " " + piece
            }
        }
        text = lines.joined(separator: "\n")
    }

    private static func labelNumber(_ label: String) -> Int { Int(label.split(separator: "_").last ?? "") ?? .max }
}
