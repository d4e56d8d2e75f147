import CStenoKernels
import Dispatch
import Foundation

/// A dense layer y = x·Wᵀ + b whose weights stay in float16, for the decoder: a decoding step multiplies only a
/// few rows (one per beam), so its cost is reading the weights, and half precision halves that. Whisper
/// checkpoints are float16, so for them nothing is lost; float32 checkpoints are rounded once at load.
struct HalfLinear: Sendable {
    let weight: [UInt16]
    let bias: [Float]?
    let inputs: Int
    let outputs: Int

    init(file: ModelFile, prefix: String, inputs: Int, outputs: Int, hasBias: Bool = true) throws {
        weight = try file.halves(prefix + "/weight", shape: [outputs, inputs])
        bias = hasBias ? try file.floats(prefix + "/bias", shape: [outputs]) : nil
        self.inputs = inputs
        self.outputs = outputs
    }

    /// y[rows × outputs] (row stride ldy) = x[rows × inputs] (contiguous) · Wᵀ + b.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil) {
        let ldy = ldy ?? outputs
        weight.withUnsafeBufferPointer { w in
            // Split the output rows across threads when there is enough work to pay for the hand-off.
            let work = rows * inputs * outputs
            let chunks = work >= 1 << 20 ? min(BLAS.threads, 4) : 1
            let per = (outputs + chunks - 1) / chunks
            let wp = UnsafeSendable(w.baseAddress!), xp = UnsafeSendable(x), yp = UnsafeSendable(y)
            let body: @Sendable (Int) -> Void = { chunk in
                let begin = chunk * per
                let end = min(outputs, begin + per)
                guard begin < end else { return }
                steno_logits_f16(wp.pointer, xp.pointer, Int32(rows), Int32(inputs), Int32(begin), Int32(end), yp.pointer, Int32(ldy))
            }
            if chunks == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: body) }
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = y + r * ldy
                    for c in 0..<outputs { row[c] += b[c] }
                }
            }
        }
    }
}
