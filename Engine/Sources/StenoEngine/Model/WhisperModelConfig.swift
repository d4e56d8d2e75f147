import Foundation

/// The parts of `config.json` the decoder uses. Every field is optional in the file; defaults follow Whisper.
struct WhisperModelConfig: Sendable {
    /// Cross-attention heads that track the alignment of text to audio: (decoder layer, head).
    var alignmentHeads: [(layer: Int, head: Int)]
    /// Language token ids, in Whisper's language order.
    var languageIDs: [Int]
    /// Non-speech symbols suppressed at every step (Whisper's `suppress_tokens=[-1]`).
    var suppressIDs: [Int]
    /// Tokens suppressed at the first sampled position (space and end-of-text).
    var suppressIDsBegin: [Int]

    static func load(directory: URL, architecture: WhisperArchitecture) throws -> WhisperModelConfig {
        let url = directory.appendingPathComponent("config.json")
        var json: [String: Any] = [:]
        if FileManager.default.fileExists(atPath: url.path) {
            do {
                let data = try Data(contentsOf: url)
                guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    throw EngineError.invalidModel(file: "config.json", problem: "the top level is not a JSON object")
                }
                json = object
            } catch let error as EngineError {
                throw error
            } catch {
                throw EngineError.invalidModel(file: "config.json", problem: "not valid JSON")
            }
        }
        func ints(_ key: String) -> [Int]? { (json[key] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } }

        var heads: [(Int, Int)] = []
        if let pairs = json["alignment_heads"] as? [[Any]] {
            heads = pairs.compactMap { pair in
                guard pair.count == 2, let l = (pair[0] as? NSNumber)?.intValue, let h = (pair[1] as? NSNumber)?.intValue,
                      l < architecture.decoderLayers, h < architecture.heads else { return nil }
                return (l, h)
            }
        }
        if heads.isEmpty {
            // Whisper's fallback: every head of the second half of the decoder layers.
            for layer in (architecture.decoderLayers / 2)..<architecture.decoderLayers {
                for head in 0..<architecture.heads { heads.append((layer, head)) }
            }
        }
        let endOfText = architecture.isMultilingual ? 50257 : 50256
        return WhisperModelConfig(
            alignmentHeads: heads,
            languageIDs: ints("lang_ids") ?? [],
            suppressIDs: ints("suppress_ids") ?? [],
            suppressIDsBegin: ints("suppress_ids_begin") ?? [220, endOfText]
        )
    }
}
