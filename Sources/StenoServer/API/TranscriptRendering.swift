import Foundation
import StenoEngine

// Interim renderer until the engine's `TranscriptionResult.rendered(as:)` lands on main; then this file goes.
extension TranscriptionResult {
    func renderedForAPI(_ format: Components.Schemas.ResultFormat) -> String {
        switch format {
        case .json, .text:
            return text + "\n"
        case .srt:
            return segments.enumerated().map { index, segment in
                "\(index + 1)\n\(Self.time(segment.start, ",")) --> \(Self.time(segment.end, ","))\n\(segment.text.trimmingCharacters(in: .whitespaces))\n"
            }.joined(separator: "\n")
        case .vtt:
            return "WEBVTT\n\n" + segments.map { segment in
                "\(Self.time(segment.start, ".")) --> \(Self.time(segment.end, "."))\n\(segment.text.trimmingCharacters(in: .whitespaces))\n"
            }.joined(separator: "\n")
        }
    }

    private static func time(_ seconds: Double, _ separator: String) -> String {
        let milliseconds = Int((seconds * 1000).rounded())
        return String(format: "%02d:%02d:%02d%@%03d", milliseconds / 3_600_000, milliseconds / 60_000 % 60,
                      milliseconds / 1000 % 60, separator, milliseconds % 1000)
    }
}
