/// The audio encoder: two convolutions and a stack of pre-norm self-attention blocks over one 30 s window.
struct WhisperEncoder: Sendable {
    let weights: EncoderWeights
    let architecture: WhisperArchitecture

    /// Number of input mel frames per window (twice the encoder positions: conv2 has stride 2).
    var inputFrames: Int { architecture.audioContext * 2 }

    /// Encodes a window of log-mel features [melBands × inputFrames] (row-major) into
    /// [audioContext × width] hidden states.
    func encode(_ mel: [Float]) -> [Float] {
        let a = architecture
        let frames = inputFrames
        let positions = a.audioContext
        let width = a.width
        precondition(mel.count == a.melBands * frames, "mel window must be [\(a.melBands) × \(frames)]")

        // conv1 (kernel 3, stride 1, padding 1) as one product: columns [frames × mels·3].
        var columns = [Float](repeating: 0, count: frames * a.melBands * 3)
        mel.withUnsafeBufferPointer { m in
            columns.withUnsafeMutableBufferPointer { col in
                for c in 0..<a.melBands {
                    let row = m.baseAddress! + c * frames
                    for t in 0..<frames {
                        let dst = col.baseAddress! + t * a.melBands * 3 + c * 3
                        dst[0] = t > 0 ? row[t - 1] : 0
                        dst[1] = row[t]
                        dst[2] = t + 1 < frames ? row[t + 1] : 0
                    }
                }
            }
        }
        var hidden1 = [Float](repeating: 0, count: frames * width)
        columns.withUnsafeBufferPointer { col in
            hidden1.withUnsafeMutableBufferPointer { h in
                weights.conv1.apply(col.baseAddress!, rows: frames, into: h.baseAddress!)
                Kernels.geluParallel(h.baseAddress!, count: h.count)
            }
        }

        // conv2 (kernel 3, stride 2, padding 1): columns [positions × width·3] over time-major hidden1.
        columns = [Float](repeating: 0, count: positions * width * 3)
        hidden1.withUnsafeBufferPointer { h in
            columns.withUnsafeMutableBufferPointer { col in
                for t in 0..<positions {
                    let dst = col.baseAddress! + t * width * 3
                    for tap in 0..<3 {
                        let source = 2 * t + tap - 1
                        guard source >= 0, source < frames else { continue }
                        let src = h.baseAddress! + source * width
                        for c in 0..<width { dst[c * 3 + tap] = src[c] }
                    }
                }
            }
        }
        var x = [Float](repeating: 0, count: positions * width)
        columns.withUnsafeBufferPointer { col in
            x.withUnsafeMutableBufferPointer { h in
                weights.conv2.apply(col.baseAddress!, rows: positions, into: h.baseAddress!)
                Kernels.geluParallel(h.baseAddress!, count: h.count)
                weights.positions.withUnsafeBufferPointer { p in Kernels.add(h.baseAddress!, p.baseAddress!, count: h.count) }
            }
        }
        columns = []
        hidden1 = []

        var scratch = EncoderScratch(positions: positions, width: width, hidden: weights.layers.first?.ffn.up.outputs ?? 4 * width)
        for layer in weights.layers {
            selfAttentionBlock(layer.attention, x: &x, scratch: &scratch)
            feedForwardBlock(layer.ffn, x: &x, scratch: &scratch, rows: positions)
        }
        var out = [Float](repeating: 0, count: positions * width)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in weights.finalNorm.apply(src.baseAddress!, rows: positions, into: dst.baseAddress!) }
        }
        return out
    }

    private func selfAttentionBlock(_ w: SelfAttentionWeights, x: inout [Float], scratch: inout EncoderScratch) {
        let t = architecture.audioContext
        let d = architecture.width
        let headWidth = architecture.headWidth
        let scale = 1 / Float(headWidth).squareRoot()
        x.withUnsafeMutableBufferPointer { xp in
            scratch.normed.withUnsafeMutableBufferPointer { ln in
            scratch.qkv.withUnsafeMutableBufferPointer { qkv in
            scratch.context.withUnsafeMutableBufferPointer { ctx in
            scratch.scores.withUnsafeMutableBufferPointer { scores in
                let x = xp.baseAddress!, ln = ln.baseAddress!, qkv = qkv.baseAddress!, ctx = ctx.baseAddress!, s = scores.baseAddress!
                w.norm.apply(x, rows: t, into: ln)
                w.qkv.apply(ln, rows: t, into: qkv)
                for h in 0..<architecture.heads {
                    let q = qkv + h * headWidth
                    let k = qkv + d + h * headWidth
                    let v = qkv + 2 * d + h * headWidth
                    BLAS.gemmNT(m: t, n: t, k: headWidth, a: q, lda: 3 * d, b: k, ldb: 3 * d, c: s, ldc: t, alpha: scale)
                    Kernels.softmaxRowsParallel(s, rows: t, columns: t)
                    BLAS.gemmNN(m: t, n: headWidth, k: t, a: s, lda: t, b: v, ldb: 3 * d, c: ctx + h * headWidth, ldc: d)
                }
                // x += ctx·Woᵀ + b
                w.output.apply(ctx, rows: t, into: ln)
                Kernels.add(x, ln, count: t * d)
            }
            }
            }
            }
        }
    }

    private func feedForwardBlock(_ w: FeedForwardWeights, x: inout [Float], scratch: inout EncoderScratch, rows: Int) {
        let d = architecture.width
        x.withUnsafeMutableBufferPointer { xp in
            scratch.normed.withUnsafeMutableBufferPointer { ln in
            scratch.hidden.withUnsafeMutableBufferPointer { hidden in
                w.norm.apply(xp.baseAddress!, rows: rows, into: ln.baseAddress!)
                w.up.apply(ln.baseAddress!, rows: rows, into: hidden.baseAddress!)
                Kernels.geluParallel(hidden.baseAddress!, count: rows * w.up.outputs)
                w.down.apply(hidden.baseAddress!, rows: rows, into: ln.baseAddress!)
                Kernels.add(xp.baseAddress!, ln.baseAddress!, count: rows * d)
            }
            }
        }
    }

    /// Floating-point operations of one window, for reporting achieved GFLOP/s.
    var flopsPerWindow: Double {
        let a = architecture
        let t = Double(a.audioContext), d = Double(a.width), f = Double(weights.layers.first?.ffn.up.outputs ?? 4 * a.width)
        let conv = 2 * Double(inputFrames) * d * Double(a.melBands * 3) + 2 * t * d * d * 3
        let perLayer = 2 * t * d * 3 * d + 2 * t * t * d * 2 + 2 * t * d * d + 2 * t * d * f * 2
        return conv + perLayer * Double(a.encoderLayers)
    }
}

/// Buffers reused across the encoder's layers.
private struct EncoderScratch {
    var normed: [Float]
    var qkv: [Float]
    var context: [Float]
    var scores: [Float]
    var hidden: [Float]

    init(positions: Int, width: Int, hidden: Int) {
        normed = [Float](repeating: 0, count: positions * width)
        qkv = [Float](repeating: 0, count: positions * width * 3)
        context = [Float](repeating: 0, count: positions * width)
        scores = [Float](repeating: 0, count: positions * positions)
        self.hidden = [Float](repeating: 0, count: positions * hidden)
    }
}
