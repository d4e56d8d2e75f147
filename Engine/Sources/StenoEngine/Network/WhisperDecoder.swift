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

    /// Runs `tokens` (batch rows of n new tokens each) through the decoder.
    /// - Parameters:
    ///   - logitPositions: which of the n new positions to return logits for (default: the last).
    ///   - capture: if given, records the cross-attention weights of its heads (batch must be 1).
    /// - Returns: logits [batch × logitPositions.count × vocabulary].
    func step(_ tokens: [[Int]], logitPositions: [Int]? = nil, capture: UnsafeMutablePointer<AlignmentCapture>? = nil) -> [Float] {
        let a = decoder.architecture
        let w = decoder.weights
        let d = a.width
        let b = tokens.count
        precondition(b == batch, "step needs one row of tokens per sequence")
        let n = tokens[0].count
        precondition(n > 0 && tokens.allSatisfy { $0.count == n }, "every sequence takes the same number of tokens")
        precondition(length + n <= a.textContext, "the decoder holds at most \(a.textContext) tokens")
        let rows = b * n
        let total = length + n
        let headWidth = a.headWidth
        let scale = 1 / Float(headWidth).squareRoot()
        let ctxStride = a.textContext * d

        var x = [Float](repeating: 0, count: rows * d)
        x.withUnsafeMutableBufferPointer { xp in
            w.embeddings.withUnsafeBufferPointer { e in
                w.positions.withUnsafeBufferPointer { p in
                    for s in 0..<b {
                        for i in 0..<n {
                            let dst = xp.baseAddress! + (s * n + i) * d
                            steno_f16_to_f32(e.baseAddress! + tokens[s][i] * d, dst, d)
                            let pos = p.baseAddress! + (length + i) * d
                            for c in 0..<d { dst[c] += pos[c] }
                        }
                    }
                }
            }
        }

        let ffnWidth = w.layers.first?.ffnUp.outputs ?? 4 * d
        var normed = [Float](repeating: 0, count: rows * d)
        var qkv = [Float](repeating: 0, count: rows * 3 * d)
        var context = [Float](repeating: 0, count: rows * d)
        var selfScores = [Float](repeating: 0, count: n * total)
        var crossScores = [Float](repeating: 0, count: rows * cross.positions)
        var hidden = [Float](repeating: 0, count: rows * ffnWidth)

        var queries = [Float](repeating: 0, count: rows * headWidth)
        for (layerIndex, layer) in w.layers.enumerated() {
            x.withUnsafeMutableBufferPointer { xp in
            normed.withUnsafeMutableBufferPointer { lnp in
            qkv.withUnsafeMutableBufferPointer { qkvp in
            context.withUnsafeMutableBufferPointer { ctxp in
            selfScores.withUnsafeMutableBufferPointer { ssp in
            crossScores.withUnsafeMutableBufferPointer { csp in
            hidden.withUnsafeMutableBufferPointer { hp in
            queries.withUnsafeMutableBufferPointer { qp in
                let x = xp.baseAddress!, ln = lnp.baseAddress!, qkv = qkvp.baseAddress!, ctx = ctxp.baseAddress!
                let ss = ssp.baseAddress!, cs = csp.baseAddress!, hid = hp.baseAddress!, q = qp.baseAddress!
                let kCache = cache.keys(layer: layerIndex, sequence: 0), vCache = cache.values(layer: layerIndex, sequence: 0)

                // Causal self-attention with the KV cache.
                layer.selfNorm.apply(x, rows: rows, into: ln)
                layer.selfQKV.apply(ln, rows: rows, into: qkv)
                for s in 0..<b {
                    for i in 0..<n {
                        let src = qkv + (s * n + i) * 3 * d
                        (kCache + s * ctxStride + (length + i) * d).update(from: src + d, count: d)
                        (vCache + s * ctxStride + (length + i) * d).update(from: src + 2 * d, count: d)
                    }
                    for h in 0..<a.heads {
                        let q = qkv + s * n * 3 * d + h * headWidth
                        let k = kCache + s * ctxStride + h * headWidth
                        let v = vCache + s * ctxStride + h * headWidth
                        BLAS.gemmNT(m: n, n: total, k: headWidth, a: q, lda: 3 * d, b: k, ldb: d, c: ss, ldc: total, alpha: scale)
                        for i in 0..<n {
                            let row = ss + i * total
                            let visible = length + i + 1
                            for j in visible..<total { row[j] = -.infinity }
                            Kernels.softmax(row, count: total)
                        }
                        BLAS.gemmNN(m: n, n: headWidth, k: total, a: ss, lda: total, b: v, ldb: d, c: ctx + s * n * d + h * headWidth, ldc: d)
                    }
                }
                layer.selfOutput.apply(ctx, rows: rows, into: ln)
                Kernels.add(x, ln, count: rows * d)

                // Cross-attention over the window: per head, every row of the batch against the window's
                // float16 keys and values, each key/value row read once for the whole batch.
                layer.crossNorm.apply(x, rows: rows, into: ln)
                layer.crossQuery.apply(ln, rows: rows, into: qkv)  // queries [rows × d]
                let positions = cross.positions
                ctx.update(repeating: 0, count: rows * d)
                cross.keys[layerIndex].withUnsafeBufferPointer { ck in
                    cross.values[layerIndex].withUnsafeBufferPointer { cv in
                        for h in 0..<a.heads {
                            for r in 0..<rows {
                                let src = qkv + r * d + h * headWidth
                                for j in 0..<headWidth { q[r * headWidth + j] = src[j] * scale }
                            }
                            let headKeys = ck.baseAddress! + h * positions * headWidth
                            let headValues = cv.baseAddress! + h * positions * headWidth
                            steno_logits_f16(headKeys, q, Int32(rows), Int32(headWidth), 0, Int32(positions), cs, Int32(positions))
                            Kernels.softmaxRows(cs, rows: rows, columns: positions)
                            if let capture {
                                for (index, head) in capture.pointee.heads.enumerated() where head.layer == layerIndex && head.head == h {
                                    capture.pointee.weights[index] = Array(UnsafeBufferPointer(start: cs, count: rows * positions))
                                    capture.pointee.tokens = rows
                                    capture.pointee.positions = positions
                                }
                            }
                            steno_weighted_rows_f16(headValues, cs, Int32(rows), Int32(positions), Int32(headWidth),
                                                    Int32(positions), ctx + h * headWidth, Int32(d))
                        }
                    }
                }
                layer.crossOutput.apply(ctx, rows: rows, into: ln)
                Kernels.add(x, ln, count: rows * d)

                // Feed-forward.
                layer.ffnNorm.apply(x, rows: rows, into: ln)
                layer.ffnUp.apply(ln, rows: rows, into: hid)
                Kernels.gelu(hid, count: rows * ffnWidth)
                layer.ffnDown.apply(hid, rows: rows, into: ln)
                Kernels.add(x, ln, count: rows * d)
            }
            }
            }
            }
            }
            }
            }
            }
        }
        length += n

        // Final norm and logits, only for the requested positions.
        let wanted = logitPositions ?? [n - 1]
        let outRows = b * wanted.count
        var selected = [Float](repeating: 0, count: outRows * d)
        x.withUnsafeBufferPointer { xp in
            selected.withUnsafeMutableBufferPointer { sp in
                for s in 0..<b {
                    for (j, position) in wanted.enumerated() {
                        w.finalNorm.apply(xp.baseAddress! + (s * n + position) * d, rows: 1, into: sp.baseAddress! + (s * wanted.count + j) * d)
                    }
                }
            }
        }
        let vocabulary = a.vocabularySize
        return projectToVocabulary(selected, rows: outRows)
    }

    /// logits[rows × vocabulary] = hidden[rows × width] · Eᵀ with the float16 embeddings, the vocabulary split
    /// across threads. Each weight row is read once for all rows of the batch.
    private func projectToVocabulary(_ hidden: [Float], rows: Int) -> [Float] {
        let vocabulary = decoder.architecture.vocabularySize
        let d = decoder.architecture.width
        var logits = [Float](repeating: 0, count: rows * vocabulary)
        let chunks = max(1, min(BLAS.threads, 8))
        let per = (vocabulary + chunks - 1) / chunks
        hidden.withUnsafeBufferPointer { hp in
            decoder.weights.embeddings.withUnsafeBufferPointer { e in
                logits.withUnsafeMutableBufferPointer { l in
                    let h = UnsafeSendable(hp.baseAddress!), w = UnsafeSendable(e.baseAddress!), out = UnsafeSendable(l.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                        let begin = chunk * per
                        let end = min(vocabulary, begin + per)
                        guard begin < end else { return }
                        steno_logits_f16(w.pointer, h.pointer, Int32(rows), Int32(d), Int32(begin), Int32(end),
                                         out.pointer, Int32(vocabulary))
                    }
                }
            }
        }
        return logits
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
