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
        var keys: [[Float]] = []
        var values: [[Float]] = []
        for layer in weights.layers {
            var kv = [Float](repeating: 0, count: t * 2 * a.width)
            encoded.withUnsafeBufferPointer { e in
                kv.withUnsafeMutableBufferPointer { out in layer.crossAttention.keyValue.apply(e.baseAddress!, rows: t, into: out.baseAddress!) }
            }
            var k = [Float](repeating: 0, count: t * a.width)
            var v = [Float](repeating: 0, count: t * a.width)
            for row in 0..<t {
                let base = row * 2 * a.width
                k.withUnsafeMutableBufferPointer { dst in
                    kv.withUnsafeBufferPointer { src in
                        (dst.baseAddress! + row * a.width).update(from: src.baseAddress! + base, count: a.width)
                    }
                }
                v.withUnsafeMutableBufferPointer { dst in
                    kv.withUnsafeBufferPointer { src in
                        (dst.baseAddress! + row * a.width).update(from: src.baseAddress! + base + a.width, count: a.width)
                    }
                }
            }
            keys.append(k)
            values.append(v)
        }
        return CrossAttentionCache(keys: keys, values: values, positions: t)
    }
}

/// Cross-attention keys and values of one encoded window, per decoder layer ([positions × width] each).
struct CrossAttentionCache: Sendable {
    let keys: [[Float]]
    let values: [[Float]]
    let positions: Int
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
    private var keys: [[Float]]
    private var values: [[Float]]
    private var spareKeys: [[Float]]
    private var spareValues: [[Float]]

    init(decoder: WhisperDecoder, cross: CrossAttentionCache, batch: Int) {
        self.decoder = decoder
        self.cross = cross
        self.batch = batch
        let size = batch * decoder.architecture.textContext * decoder.architecture.width
        keys = Array(repeating: [Float](repeating: 0, count: size), count: decoder.architecture.decoderLayers)
        values = keys
        spareKeys = Array(repeating: [], count: decoder.architecture.decoderLayers)
        spareValues = spareKeys
    }

    var remainingCapacity: Int { decoder.architecture.textContext - length }

    /// Keeps, for each new slot b, the cache of sequence `indices[b]` (beam reordering); the batch may shrink or
    /// grow. Gathers into spare buffers that are then swapped in, so a step allocates nothing once warmed up.
    func reorder(_ indices: [Int]) {
        let a = decoder.architecture
        let stride = a.textContext * a.width
        let used = length * a.width
        let needed = indices.count * stride
        for layer in 0..<keys.count {
            if spareKeys[layer].count < needed {
                spareKeys[layer] = [Float](repeating: 0, count: needed)
                spareValues[layer] = [Float](repeating: 0, count: needed)
            }
            keys[layer].withUnsafeBufferPointer { k in
                values[layer].withUnsafeBufferPointer { v in
                    spareKeys[layer].withUnsafeMutableBufferPointer { nk in
                        spareValues[layer].withUnsafeMutableBufferPointer { nv in
                            for (slot, source) in indices.enumerated() {
                                (nk.baseAddress! + slot * stride).update(from: k.baseAddress! + source * stride, count: used)
                                (nv.baseAddress! + slot * stride).update(from: v.baseAddress! + source * stride, count: used)
                            }
                        }
                    }
                }
            }
            swap(&keys[layer], &spareKeys[layer])
            swap(&values[layer], &spareValues[layer])
        }
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

        let ffnWidth = w.layers.first?.ffn.up.outputs ?? 4 * d
        var normed = [Float](repeating: 0, count: rows * d)
        var qkv = [Float](repeating: 0, count: rows * 3 * d)
        var context = [Float](repeating: 0, count: rows * d)
        var selfScores = [Float](repeating: 0, count: n * total)
        var crossScores = [Float](repeating: 0, count: rows * cross.positions)
        var hidden = [Float](repeating: 0, count: rows * ffnWidth)

        for (layerIndex, layer) in w.layers.enumerated() {
            x.withUnsafeMutableBufferPointer { xp in
            normed.withUnsafeMutableBufferPointer { lnp in
            qkv.withUnsafeMutableBufferPointer { qkvp in
            context.withUnsafeMutableBufferPointer { ctxp in
            selfScores.withUnsafeMutableBufferPointer { ssp in
            crossScores.withUnsafeMutableBufferPointer { csp in
            hidden.withUnsafeMutableBufferPointer { hp in
            keys[layerIndex].withUnsafeMutableBufferPointer { kp in
            values[layerIndex].withUnsafeMutableBufferPointer { vp in
                let x = xp.baseAddress!, ln = lnp.baseAddress!, qkv = qkvp.baseAddress!, ctx = ctxp.baseAddress!
                let ss = ssp.baseAddress!, cs = csp.baseAddress!, hid = hp.baseAddress!
                let kCache = kp.baseAddress!, vCache = vp.baseAddress!

                // Causal self-attention with the KV cache.
                layer.selfAttention.norm.apply(x, rows: rows, into: ln)
                layer.selfAttention.qkv.apply(ln, rows: rows, into: qkv)
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
                layer.selfAttention.output.apply(ctx, rows: rows, into: ln)
                Kernels.add(x, ln, count: rows * d)

                // Cross-attention over the window: one product per head for the whole batch.
                layer.crossAttention.norm.apply(x, rows: rows, into: ln)
                layer.crossAttention.query.apply(ln, rows: rows, into: qkv)  // queries [rows × d]
                let positions = cross.positions
                cross.keys[layerIndex].withUnsafeBufferPointer { ck in
                    cross.values[layerIndex].withUnsafeBufferPointer { cv in
                        for h in 0..<a.heads {
                            BLAS.gemmNT(m: rows, n: positions, k: headWidth, a: qkv + h * headWidth, lda: d,
                                        b: ck.baseAddress! + h * headWidth, ldb: d, c: cs, ldc: positions, alpha: scale)
                            Kernels.softmaxRows(cs, rows: rows, columns: positions)
                            if let capture {
                                for (index, head) in capture.pointee.heads.enumerated() where head.layer == layerIndex && head.head == h {
                                    capture.pointee.weights[index] = Array(UnsafeBufferPointer(start: cs, count: rows * positions))
                                    capture.pointee.tokens = rows
                                    capture.pointee.positions = positions
                                }
                            }
                            BLAS.gemmNN(m: rows, n: headWidth, k: positions, a: cs, lda: positions,
                                        b: cv.baseAddress! + h * headWidth, ldb: d, c: ctx + h * headWidth, ldc: d)
                        }
                    }
                }
                layer.crossAttention.output.apply(ctx, rows: rows, into: ln)
                Kernels.add(x, ln, count: rows * d)

                // Feed-forward.
                layer.ffn.norm.apply(x, rows: rows, into: ln)
                layer.ffn.up.apply(ln, rows: rows, into: hid)
                Kernels.gelu(hid, count: rows * ffnWidth)
                layer.ffn.down.apply(hid, rows: rows, into: ln)
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
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
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
