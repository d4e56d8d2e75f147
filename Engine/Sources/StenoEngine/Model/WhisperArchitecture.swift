/// The shape of a Whisper model, derived from its tensors rather than trusted from a name.
public struct WhisperArchitecture: Sendable, Hashable {
    public let melBands: Int
    public let width: Int
    public let heads: Int
    public let encoderLayers: Int
    public let decoderLayers: Int
    public let vocabularySize: Int
    /// Encoder positions per 30 s window (1500, 20 ms each).
    public let audioContext: Int
    /// Maximum decoder positions (448).
    public let textContext: Int

    public var headWidth: Int { width / heads }
    /// Multilingual models have the language tokens; English-only (`.en`) models have 51864 entries.
    public var isMultilingual: Bool { vocabularySize >= 51865 }

    /// Reads the architecture off the variables of `file`.
    package init(file: ModelFile) throws {
        let conv1 = try file.require("encoder/conv1/weight")
        guard conv1.shape.count == 3, conv1.shape[2] == 3 else {
            throw EngineError.invalidModel(file: file.path, problem: "encoder/conv1/weight has shape \(conv1.shape), expected [width, mels, 3]")
        }
        width = conv1.shape[0]
        melBands = conv1.shape[1]
        let embeddings = try file.require("decoder/embeddings/weight")
        guard embeddings.shape.count == 2, embeddings.shape[1] == width else {
            throw EngineError.invalidModel(file: file.path, problem: "decoder/embeddings/weight has shape \(embeddings.shape), expected [vocabulary, \(width)]")
        }
        vocabularySize = embeddings.shape[0]
        audioContext = try file.require("encoder/position_encodings/encodings").shape.first ?? 0
        textContext = try file.require("decoder/position_encodings/encodings").shape.first ?? 0
        encoderLayers = Self.countLayers(file, prefix: "encoder")
        decoderLayers = Self.countLayers(file, prefix: "decoder")
        let headCount = try file.integerScalar("encoder/num_heads") ?? width / 64
        heads = headCount
        guard encoderLayers > 0, decoderLayers > 0, heads > 0, width % heads == 0, audioContext > 0, textContext > 0,
              melBands == 80 || melBands == 128
        else {
            throw EngineError.invalidModel(
                file: file.path,
                problem: "not a Whisper model (width \(width), heads \(heads), mels \(melBands), layers \(encoderLayers)/\(decoderLayers))")
        }
    }

    private static func countLayers(_ file: ModelFile, prefix: String) -> Int {
        var count = 0
        while file.variable("\(prefix)/layer_\(count)/ffn/linear_0/weight") != nil { count += 1 }
        return count
    }
}
