/// Weights of the Whisper transformer, converted to float32 once at load time.
/// Names follow CTranslate2's Whisper spec (`python/ctranslate2/specs/whisper_spec.py` in CTranslate2).

struct SelfAttentionWeights: Sendable {
    let norm: LayerNorm
    /// Fused Q, K, V projection: [3·width × width].
    let qkv: Linear
    let output: Linear

    init(file: ModelFile, prefix: String, width: Int) throws {
        norm = try LayerNorm(file: file, prefix: prefix + "/layer_norm", width: width)
        qkv = try Linear(file: file, prefix: prefix + "/linear_0", inputs: width, outputs: 3 * width)
        output = try Linear(file: file, prefix: prefix + "/linear_1", inputs: width, outputs: width)
    }
}

struct FeedForwardWeights: Sendable {
    let norm: LayerNorm
    let up: Linear
    let down: Linear

    init(file: ModelFile, prefix: String, width: Int) throws {
        norm = try LayerNorm(file: file, prefix: prefix + "/layer_norm", width: width)
        let hidden = try file.require(prefix + "/linear_0/weight").shape.first ?? 4 * width
        up = try Linear(file: file, prefix: prefix + "/linear_0", inputs: width, outputs: hidden)
        down = try Linear(file: file, prefix: prefix + "/linear_1", inputs: hidden, outputs: width)
    }
}

struct EncoderWeights: Sendable {
    let conv1: Linear  // [width × mels·3], columns ordered (channel, tap)
    let conv2: Linear  // [width × width·3]
    let positions: [Float]  // [audioContext × width]
    let layers: [(attention: SelfAttentionWeights, ffn: FeedForwardWeights)]
    let finalNorm: LayerNorm

    init(file: ModelFile, architecture a: WhisperArchitecture) throws {
        conv1 = Linear(
            weight: try file.floats("encoder/conv1/weight", shape: [a.width, a.melBands, 3]),
            bias: try file.floats("encoder/conv1/bias", shape: [a.width]), inputs: a.melBands * 3, outputs: a.width)
        conv2 = Linear(
            weight: try file.floats("encoder/conv2/weight", shape: [a.width, a.width, 3]),
            bias: try file.floats("encoder/conv2/bias", shape: [a.width]), inputs: a.width * 3, outputs: a.width)
        positions = try file.floats("encoder/position_encodings/encodings", shape: [a.audioContext, a.width])
        layers = try (0..<a.encoderLayers).map { i in
            (try SelfAttentionWeights(file: file, prefix: "encoder/layer_\(i)/self_attention", width: a.width),
             try FeedForwardWeights(file: file, prefix: "encoder/layer_\(i)/ffn", width: a.width))
        }
        finalNorm = try LayerNorm(file: file, prefix: "encoder/layer_norm", width: a.width)
    }
}

/// Decoder blocks keep their step-time projections in float16 (`HalfLinear`): a step multiplies a handful of rows,
/// so reading the weights is the cost. The cross-attention K/V projection runs once per window over 1500 rows and
/// stays a float32 BLAS product.
struct DecoderLayerWeights: Sendable {
    let selfNorm: LayerNorm
    let selfQKV: HalfLinear
    let selfOutput: HalfLinear
    let crossNorm: LayerNorm
    let crossQuery: HalfLinear
    let crossKeyValue: Linear
    let crossOutput: HalfLinear
    let ffnNorm: LayerNorm
    let ffnUp: HalfLinear
    let ffnDown: HalfLinear

    init(file: ModelFile, prefix: String, width d: Int) throws {
        selfNorm = try LayerNorm(file: file, prefix: prefix + "/self_attention/layer_norm", width: d)
        selfQKV = try HalfLinear(file: file, prefix: prefix + "/self_attention/linear_0", inputs: d, outputs: 3 * d)
        selfOutput = try HalfLinear(file: file, prefix: prefix + "/self_attention/linear_1", inputs: d, outputs: d)
        crossNorm = try LayerNorm(file: file, prefix: prefix + "/attention/layer_norm", width: d)
        crossQuery = try HalfLinear(file: file, prefix: prefix + "/attention/linear_0", inputs: d, outputs: d)
        crossKeyValue = try Linear(file: file, prefix: prefix + "/attention/linear_1", inputs: d, outputs: 2 * d)
        crossOutput = try HalfLinear(file: file, prefix: prefix + "/attention/linear_2", inputs: d, outputs: d)
        ffnNorm = try LayerNorm(file: file, prefix: prefix + "/ffn/layer_norm", width: d)
        let hidden = try file.require(prefix + "/ffn/linear_0/weight").shape.first ?? 4 * d
        ffnUp = try HalfLinear(file: file, prefix: prefix + "/ffn/linear_0", inputs: d, outputs: hidden)
        ffnDown = try HalfLinear(file: file, prefix: prefix + "/ffn/linear_1", inputs: hidden, outputs: d)
    }
}

struct DecoderWeights: Sendable {
    /// Token embeddings [vocabulary × width] as float16 bit patterns; also the output projection (tied weights).
    /// Kept in half precision because the logits projection reads all of it at every step and is bound by
    /// memory traffic; Whisper checkpoints are float16, so nothing is lost for them.
    let embeddings: [UInt16]
    let positions: [Float]  // [textContext × width]
    let layers: [DecoderLayerWeights]
    let finalNorm: LayerNorm

    init(file: ModelFile, architecture a: WhisperArchitecture) throws {
        embeddings = try file.halves("decoder/embeddings/weight", shape: [a.vocabularySize, a.width])
        positions = try file.floats("decoder/position_encodings/encodings", shape: [a.textContext, a.width])
        layers = try (0..<a.decoderLayers).map { i in try DecoderLayerWeights(file: file, prefix: "decoder/layer_\(i)", width: a.width) }
        finalNorm = try LayerNorm(file: file, prefix: "decoder/layer_norm", width: a.width)
        if let projection = file.variable("decoder/projection/weight"),
           projection.byteRange != (try file.require("decoder/embeddings/weight")).byteRange {
            // Untied output projections exist in no Whisper release; refuse rather than silently ignore one.
            throw EngineError.invalidModel(file: file.path, problem: "decoder/projection/weight is not tied to the embeddings")
        }
    }
}
