import Foundation

/// Reading the vocabulary and merge files of a CTranslate2 model directory.
extension WhisperTokenizer {
    /// The tokens of `vocabulary.json` (preferred, a JSON array of strings) or `vocabulary.txt` (one per line).
    static func loadVocabulary(in directory: URL) throws -> [String] {
        let jsonURL = directory.appendingPathComponent("vocabulary.json")
        let textURL = directory.appendingPathComponent("vocabulary.txt")
        if FileManager.default.fileExists(atPath: jsonURL.path) {
            let data = try read(jsonURL)
            do {
                return try JSONDecoder().decode([String].self, from: data)
            } catch {
                throw EngineError.invalidModel(file: "vocabulary.json", problem: "not a JSON array of strings")
            }
        }
        guard FileManager.default.fileExists(atPath: textURL.path) else {
            throw EngineError.invalidModel(file: "vocabulary.txt", problem: "missing (neither vocabulary.json nor vocabulary.txt exists)")
        }
        return try parseLines(read(textURL))
    }

    /// Splits on LF bytes (a `\r` before it is dropped); a final empty line is no token. Byte-level tokens
    /// never contain a raw line break, so lines and tokens correspond one to one.
    static func parseLines(_ data: Data) throws -> [String] {
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        return try lines.enumerated().map { index, line in
            var line = line
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            let token = String(decoding: line, as: UTF8.self)
            guard token.utf8.elementsEqual(line) else {
                throw EngineError.invalidModel(file: "vocabulary.txt", problem: "line \(index + 1) is not valid UTF-8")
            }
            return token
        }
    }

    /// The merges of `tokenizer.json` (`model.merges`, as "a b" strings or [a, b] pairs) in rank order, or nil
    /// when the file is absent.
    static func loadMerges(in directory: URL) throws -> [(String, String)]? {
        let url = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try read(url)
        let problem = EngineError.invalidModel(file: "tokenizer.json", problem: "no BPE merge list at model.merges")
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any],
              let merges = model["merges"] as? [Any]
        else { throw problem }
        return try merges.map { entry in
            if let text = entry as? String {
                let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2 { return (String(parts[0]), String(parts[1])) }
            } else if let pair = entry as? [String], pair.count == 2 {
                return (pair[0], pair[1])
            }
            throw problem
        }
    }

    private static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw EngineError.invalidModel(file: url.lastPathComponent, problem: "cannot be read")
        }
    }
}
