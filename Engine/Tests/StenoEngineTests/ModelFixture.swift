import Foundation

/// Paths to the real model and recordings the engine tests use. The model is installed by `scripts/setup.sh`
/// (run by `make test`); its absence is a test failure, not a skip.
enum ModelFixture {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var tinyEnglish: URL {
        if let path = ProcessInfo.processInfo.environment["STENO_TEST_MODEL"] { return URL(fileURLWithPath: path) }
        return repositoryRoot.appendingPathComponent("models/tiny.en")
    }

    static let librivox = URL(fileURLWithPath: "/usr/share/pocketsphinx/test/data/librivox")
    static let cards = URL(fileURLWithPath: "/usr/share/pocketsphinx/test/data/cards")

    /// Reference transcripts of the LibriVox clips, keyed by file name without extension.
    static func librivoxTranscripts() throws -> [String: String] {
        let text = try String(contentsOf: librivox.appendingPathComponent("transcription"), encoding: .utf8)
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            // "<s> words … </s> (file-id)"
            guard let open = line.lastIndex(of: "("), let close = line.lastIndex(of: ")") else { continue }
            let id = String(line[line.index(after: open)..<close])
            let words = line[..<open].replacingOccurrences(of: "<s>", with: "").replacingOccurrences(of: "</s>", with: "")
            result[id] = words.trimmingCharacters(in: .whitespaces).lowercased()
        }
        return result
    }

    /// Lower-cased words without punctuation, for comparing transcripts.
    static func words(_ text: String) -> [String] {
        text.lowercased().split { !$0.isLetter && !$0.isNumber && $0 != "'" }.map(String.init)
    }

    /// Word error rate of `hypothesis` against `reference` (Levenshtein distance over words).
    static func wordErrorRate(reference: String, hypothesis: String) -> Double {
        let r = words(reference), h = words(hypothesis)
        guard !r.isEmpty else { return h.isEmpty ? 0 : 1 }
        var previous = Array(0...h.count)
        for i in 1...r.count {
            var current = [i] + Array(repeating: 0, count: h.count)
            for j in 1...max(1, h.count) where h.count > 0 {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return Double(previous[h.count]) / Double(r.count)
    }
}
