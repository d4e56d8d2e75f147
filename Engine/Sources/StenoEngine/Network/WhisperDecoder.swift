import CStenoKernels
import Dispatch
import Foundation

/// The text decoder: token + position embeddings, pre-norm blocks of causal self-attention, cross-attention over
/// the encoder output and a feed-forward network, then logits through the tied embedding matrix.
struct WhisperDecoder: Sendable {
    let weights: DecoderWeights
    let architecture: WhisperArchitecture

    /// Projects an encoded window [audioContext × width] to every layer's cross-attention keys and values.
    /// Done once per window and shared by all the window's sequences (beams, samples, the alignment pass).
    func crossAttentionCache(encoded: [Float]) -> CrossAttentionCache {
        let a = architecture
        let t = a.audioContext
        let d = a.width
        let headWidth = a.headWidth
        var keys: [[UInt16]] = []
        var values: [[UInt16]] = []
        var kv = [Float](repeating: 0, count: t * 2 * d)
        var headMajor = [Float](repeating: 0, count: t * d)
        for layer in weights.layers {
            encoded.withUnsafeBufferPointer { e in
                kv.withUnsafeMutableBufferPointer { out in layer.crossKeyValue.apply(e.baseAddress!, rows: t, into: out.baseAddress!) }
            }
            // Rearrange [position][K | V] into [head][position][headWidth] float16, so each head's keys and values
            // are contiguous rows for the step kernels.
            for half in 0..<2 {
                for h in 0..<a.heads {
                    for position in 0..<t {
                        let source = position * 2 * d + half * d + h * headWidth
                        let target = (h * t + position) * headWidth
                        for j in 0..<headWidth { headMajor[target + j] = kv[source + j] }
                    }
                }
                var packed = [UInt16](repeating: 0, count: t * d)
                headMajor.withUnsafeBufferPointer { src in
                    packed.withUnsafeMutableBufferPointer { dst in steno_f32_to_f16(src.baseAddress!, dst.baseAddress!, src.count) }
                }
                if half == 0 { keys.append(packed) } else { values.append(packed) }
            }
        }
        return CrossAttentionCache(keys: keys, values: values, positions: t, headWidth: headWidth)
    }
}

/// Cross-attention keys and values of one encoded window, per decoder layer, as float16 in
/// [head][position][headWidth] layout.
struct CrossAttentionCache: Sendable {
    let keys: [[UInt16]]
    let values: [[UInt16]]
    let positions: Int
    let headWidth: Int
}

/// Cross-attention weights of the alignment heads, captured during a forward pass: for each requested
/// (layer, head), a [tokens × positions] matrix of attention probabilities.
struct AlignmentCapture {
    let heads: [(layer: Int, head: Int)]
    var weights: [[Float]]
    var tokens = 0
    var positions = 0

    init(heads: [(layer: Int, head: Int)]) {
        self.heads = heads
        weights = Array(repeating: [], count: heads.count)
    }
}

/// Decoding state of a batch of sequences over one window: the self-attention KV cache of every sequence.
/// Each `step` feeds the same number of new tokens to every sequence and returns logits as one
/// [batch × vocabulary] product, so beams (and samples) advance together.
final class DecoderSession {
    let decoder: WhisperDecoder
    let cross: CrossAttentionCache
    private(set) var batch: Int
    /// Tokens already in the cache (the same for every sequence).
    private(set) var length = 0
    /// KV caches in raw memory owned by the session (no copy-on-write in the hot loop), laid out
    /// [layer][sequence][position][width]; the spare pair is the target of beam reordering.
    private var cache: KVCache
    private var spare: KVCache
    /// The step's working buffers, kept across steps.
    private let scratch = DecoderScratch()

    init(decoder: WhisperDecoder, cross: CrossAttentionCache, batch: Int) {
        self.decoder = decoder
        self.cross = cross
        self.batch = batch
        let a = decoder.architecture
        cache = KVCache(layers: a.decoderLayers, sequences: batch, positions: a.textContext, width: a.width)
        spare = KVCache(layers: a.decoderLayers, sequences: 0, positions: a.textContext, width: a.width)
    }

    var remainingCapacity: Int { decoder.architecture.textContext - length }

    /// Keeps, for each new slot b, the cache of sequence `indices[b]` (beam reordering); the batch may shrink or
    /// grow. Gathers into the spare cache, which is then swapped in, so a warmed-up step allocates nothing.
    func reorder(_ indices: [Int]) {
        spare.ensureCapacity(sequences: indices.count)
        let used = length * cache.width
        for layer in 0..<cache.layers {
            for (slot, source) in indices.enumerated() {
                spare.keys(layer: layer, sequence: slot).update(from: cache.keys(layer: layer, sequence: source), count: used)
                spare.values(layer: layer, sequence: slot).update(from: cache.values(layer: layer, sequence: source), count: used)
            }
        }
        swap(&cache, &spare)
        batch = indices.count
    }

    /// Runs `tokens` (batch rows of n new tokens each) through the decoder: the embeddings, then per layer
    /// self-attention, cross-attention and the feed-forward network, each adding into the residual stream
    /// `x`, then the logits. Works in the session's scratch buffers, so a step allocates only its logits.
    /// - Parameters:
    ///   - logitPositions: which of the n new positions to return logits for (default: the last).
    ///   - capture: if given, records the cross-attention weights of its heads (batch must be 1).
    /// - Returns: logits [batch × logitPositions.count × vocabulary].
    func step(_ tokens: [[Int]], logitPositions: [Int]? = nil, capture: UnsafeMutablePointer<AlignmentCapture>? = nil) -> [Float] {
        let a = decoder.architecture
        precondition(tokens.count == batch, "step needs one row of tokens per sequence")
        let n = tokens[0].count
        precondition(n > 0 && tokens.allSatisfy { $0.count == n }, "every sequence takes the same number of tokens")
        precondition(length + n <= a.textContext, "the decoder holds at most \(a.textContext) tokens")
        let wanted = logitPositions ?? [n - 1]
        let shape = StepShape(sequences: batch, newTokens: n, cached: length, logitRows: batch * wanted.count)
        let buffers = scratch.buffers(for: shape, architecture: a, ffnWidth: decoder.weights.layers.first?.ffnUp.outputs ?? 4 * a.width,
                                      crossPositions: cross.positions)

        embed(tokens, shape: shape, into: buffers.x)
        for (index, layer) in decoder.weights.layers.enumerated() {
            selfAttention(layer, index: index, shape: shape, buffers)
            crossAttention(layer, index: index, shape: shape, buffers, capture: capture)
            feedForward(layer, shape: shape, buffers)
        }
        length += n
        return logits(buffers.x, shape: shape, positions: wanted, normed: buffers.normed)
    }

    /// x = token embedding + position embedding, for every new token of every sequence.
    private func embed(_ tokens: [[Int]], shape: StepShape, into x: UnsafeMutablePointer<Float>) {
        let d = decoder.architecture.width
        decoder.weights.embeddings.withUnsafeBufferPointer { embeddings in
            decoder.weights.positions.withUnsafeBufferPointer { positions in
                for s in 0..<shape.sequences {
                    for i in 0..<shape.newTokens {
                        let row = x + (s * shape.newTokens + i) * d
                        steno_f16_to_f32(embeddings.baseAddress! + tokens[s][i] * d, row, d)
                        Kernels.add(row, positions.baseAddress! + (shape.cached + i) * d, count: d)
                    }
                }
            }
        }
    }

    /// Causal self-attention: the new keys and values join each sequence's cache, then per head the new
    /// queries attend over every cached position up to their own.
    private func selfAttention(_ layer: DecoderLayerWeights, index: Int, shape: StepShape, _ buffers: StepBuffers) {
        let a = decoder.architecture
        let d = a.width, headWidth = a.headWidth, n = shape.newTokens, total = shape.total
        let cacheStride = a.textContext * d
        let keys = cache.keys(layer: index, sequence: 0), values = cache.values(layer: index, sequence: 0)
        layer.selfNorm.apply(buffers.x, rows: shape.rows, into: buffers.normed)
        layer.selfQKV.apply(buffers.normed, rows: shape.rows, into: buffers.qkv)
        for s in 0..<shape.sequences {
            for i in 0..<n {
                let projected = buffers.qkv + (s * n + i) * 3 * d
                (keys + s * cacheStride + (shape.cached + i) * d).update(from: projected + d, count: d)
                (values + s * cacheStride + (shape.cached + i) * d).update(from: projected + 2 * d, count: d)
            }
            for h in 0..<a.heads {
                let query = buffers.qkv + s * n * 3 * d + h * headWidth
                let key = keys + s * cacheStride + h * headWidth
                let value = values + s * cacheStride + h * headWidth
                BLAS.gemmNT(m: n, n: total, k: headWidth, a: query, lda: 3 * d, b: key, ldb: d, c: buffers.selfScores, ldc: total,
                            alpha: 1 / Float(headWidth).squareRoot())
                for i in 0..<n {
                    let row = buffers.selfScores + i * total
                    for j in (shape.cached + i + 1)..<total { row[j] = -.infinity }
                    Kernels.softmax(row, count: total)
                }
                BLAS.gemmNN(m: n, n: headWidth, k: total, a: buffers.selfScores, lda: total, b: value, ldb: d,
                            c: buffers.context + s * n * d + h * headWidth, ldc: d)
            }
        }
        layer.selfOutput.apply(buffers.context, rows: shape.rows, into: buffers.normed)
        Kernels.add(buffers.x, buffers.normed, count: shape.rows * d)
    }

    /// Cross-attention over the window: per head, every row of the batch against the window's float16 keys and
    /// values, each key/value row read once for the whole batch.
    private func crossAttention(
        _ layer: DecoderLayerWeights, index: Int, shape: StepShape, _ buffers: StepBuffers, capture: UnsafeMutablePointer<AlignmentCapture>?
    ) {
        let a = decoder.architecture
        let d = a.width, headWidth = a.headWidth, rows = shape.rows, positions = cross.positions
        let scale = 1 / Float(headWidth).squareRoot()
        layer.crossNorm.apply(buffers.x, rows: rows, into: buffers.normed)
        layer.crossQuery.apply(buffers.normed, rows: rows, into: buffers.qkv)  // queries [rows × d]
        buffers.context.update(repeating: 0, count: rows * d)
        cross.keys[index].withUnsafeBufferPointer { crossKeys in
            cross.values[index].withUnsafeBufferPointer { crossValues in
                for h in 0..<a.heads {
                    for r in 0..<rows {
                        let source = buffers.qkv + r * d + h * headWidth
                        for j in 0..<headWidth { buffers.queries[r * headWidth + j] = source[j] * scale }
                    }
                    let headKeys = crossKeys.baseAddress! + h * positions * headWidth
                    let headValues = crossValues.baseAddress! + h * positions * headWidth
                    steno_logits_f16(headKeys, buffers.queries, Int32(rows), Int32(headWidth), 0, Int32(positions),
                                     buffers.crossScores, Int32(positions))
                    Kernels.softmaxRows(buffers.crossScores, rows: rows, columns: positions)
                    if let capture {
                        for (slot, head) in capture.pointee.heads.enumerated() where head.layer == index && head.head == h {
                            capture.pointee.weights[slot] = Array(UnsafeBufferPointer(start: buffers.crossScores, count: rows * positions))
                            capture.pointee.tokens = rows
                            capture.pointee.positions = positions
                        }
                    }
                    steno_weighted_rows_f16(headValues, buffers.crossScores, Int32(rows), Int32(positions), Int32(headWidth),
                                            Int32(positions), buffers.context + h * headWidth, Int32(d))
                }
            }
        }
        layer.crossOutput.apply(buffers.context, rows: rows, into: buffers.normed)
        Kernels.add(buffers.x, buffers.normed, count: rows * d)
    }

    /// x += W_down · gelu(W_up · norm(x)).
    private func feedForward(_ layer: DecoderLayerWeights, shape: StepShape, _ buffers: StepBuffers) {
        let d = decoder.architecture.width
        layer.ffnNorm.apply(buffers.x, rows: shape.rows, into: buffers.normed)
        layer.ffnUp.apply(buffers.normed, rows: shape.rows, into: buffers.hidden)
        Kernels.gelu(buffers.hidden, count: shape.rows * layer.ffnUp.outputs)
        layer.ffnDown.apply(buffers.hidden, rows: shape.rows, into: buffers.normed)
        Kernels.add(buffers.x, buffers.normed, count: shape.rows * d)
    }

    /// The final norm of the requested positions of every sequence (into `normed`), then their logits.
    private func logits(_ x: UnsafeMutablePointer<Float>, shape: StepShape, positions: [Int], normed: UnsafeMutablePointer<Float>) -> [Float] {
        let d = decoder.architecture.width
        for s in 0..<shape.sequences {
            for (j, position) in positions.enumerated() {
                decoder.weights.finalNorm.apply(x + (s * shape.newTokens + position) * d, rows: 1, into: normed + (s * positions.count + j) * d)
            }
        }
        return projectToVocabulary(normed, rows: shape.sequences * positions.count)
    }

    /// logits[rows × vocabulary] = hidden[rows × width] · Eᵀ with the float16 embeddings, the vocabulary split
    /// across threads. Each weight row is read once for all rows of the batch.
    private func projectToVocabulary(_ hidden: UnsafeMutablePointer<Float>, rows: Int) -> [Float] {
        let vocabulary = decoder.architecture.vocabularySize
        let d = decoder.architecture.width
        let chunks = max(1, min(BLAS.threads, 8))
        let per = (vocabulary + chunks - 1) / chunks
        // Every element is written by one chunk: no zeroing first.
        return [Float](unsafeUninitializedCapacity: rows * vocabulary) { logits, initialized in
            decoder.weights.embeddings.withUnsafeBufferPointer { e in
                let h = UnsafeSendable(hidden), w = UnsafeSendable(e.baseAddress!), out = UnsafeSendable(logits.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    let begin = chunk * per
                    let end = min(vocabulary, begin + per)
                    guard begin < end else { return }
                    steno_logits_f16(w.pointer, h.pointer, Int32(rows), Int32(d), Int32(begin), Int32(end),
                                     out.pointer, Int32(vocabulary))
                }
            }
            initialized = rows * vocabulary
        }
    }
}

/// Self-attention keys and values of a batch of sequences, in one raw allocation per side.
struct KVCache {
    let layers: Int
    let positions: Int
    let width: Int
    private(set) var capacity: Int
    private var keyStorage: UnsafeMutablePointer<Float>
    private var valueStorage: UnsafeMutablePointer<Float>
    private let owner: Deallocator

    var sequenceStride: Int { positions * width }
    var layerStride: Int { capacity * sequenceStride }

    init(layers: Int, sequences: Int, positions: Int, width: Int) {
        self.layers = layers
        self.positions = positions
        self.width = width
        capacity = max(1, sequences)
        let count = layers * capacity * positions * width
        keyStorage = .allocate(capacity: count)
        valueStorage = .allocate(capacity: count)
        owner = Deallocator(keyStorage, valueStorage)
    }

    mutating func ensureCapacity(sequences: Int) {
        guard sequences > capacity else { return }
        self = KVCache(layers: layers, sequences: sequences, positions: positions, width: width)
    }

    func keys(layer: Int, sequence: Int) -> UnsafeMutablePointer<Float> {
        keyStorage + layer * layerStride + sequence * sequenceStride
    }

    func values(layer: Int, sequence: Int) -> UnsafeMutablePointer<Float> {
        valueStorage + layer * layerStride + sequence * sequenceStride
    }

    /// Frees the storage when the last copy of the cache goes away.
    private final class Deallocator {
        let pointers: [UnsafeMutablePointer<Float>]
        init(_ pointers: UnsafeMutablePointer<Float>...) { self.pointers = pointers }
        deinit { pointers.forEach { $0.deallocate() } }
    }
}

/// The sizes of one decoder step.
struct StepShape {
    /// Sequences advancing together (beams, samples).
    let sequences: Int
    /// New tokens per sequence in this step (the prompt on the first step, then one).
    let newTokens: Int
    /// Tokens already in the cache.
    let cached: Int
    /// Rows of logits asked for: sequences × requested positions, which may repeat a position (and so
    /// outnumber the rows of the step).
    let logitRows: Int

    var rows: Int { sequences * newTokens }
    var total: Int { cached + newTokens }
}

/// A step's working memory, as pointers into the session's scratch.
struct StepBuffers {
    /// The residual stream [rows × width].
    let x: UnsafeMutablePointer<Float>
    /// Norm outputs and projections added back into `x` [rows × width]; at the end, the final norm of the
    /// requested positions [logitRows × width].
    let normed: UnsafeMutablePointer<Float>
    /// Self-attention q|k|v [rows × 3·width]; cross-attention queries [rows × width].
    let qkv: UnsafeMutablePointer<Float>
    /// Attention outputs before their projection [rows × width].
    let context: UnsafeMutablePointer<Float>
    /// One head's self-attention scores [newTokens × total].
    let selfScores: UnsafeMutablePointer<Float>
    /// One head's cross-attention scores [rows × window positions].
    let crossScores: UnsafeMutablePointer<Float>
    /// One head's scaled cross-attention queries [rows × headWidth].
    let queries: UnsafeMutablePointer<Float>
    /// The feed-forward network's inner activations [rows × ffnWidth].
    let hidden: UnsafeMutablePointer<Float>
}

/// The buffers of a session's steps, allocated on the first step and grown only when a step needs more (a
/// longer prompt, more sequences), so the steps of a window allocate nothing but their logits.
final class DecoderScratch {
    private let x = GrowingBuffer(), normed = GrowingBuffer(), qkv = GrowingBuffer(), context = GrowingBuffer()
    private let selfScores = GrowingBuffer(), crossScores = GrowingBuffer(), queries = GrowingBuffer(), hidden = GrowingBuffer()

    func buffers(for shape: StepShape, architecture a: WhisperArchitecture, ffnWidth: Int, crossPositions: Int) -> StepBuffers {
        let rows = shape.rows
        return StepBuffers(
            x: x.reserve(rows * a.width),
            normed: normed.reserve(max(rows, shape.logitRows) * a.width),
            qkv: qkv.reserve(rows * 3 * a.width),
            context: context.reserve(rows * a.width),
            selfScores: selfScores.reserve(shape.newTokens * shape.total),
            crossScores: crossScores.reserve(rows * crossPositions),
            queries: queries.reserve(rows * a.headWidth),
            hidden: hidden.reserve(rows * ffnWidth))
    }

    /// Raw floats that only grow; a grown buffer does not keep its contents.
    private final class GrowingBuffer {
        private var pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private var capacity = 1

        func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
            if count > capacity {
                pointer.deallocate()
                pointer = .allocate(capacity: count)
                capacity = count
            }
            return pointer
        }

        deinit { pointer.deallocate() }
    }
}
