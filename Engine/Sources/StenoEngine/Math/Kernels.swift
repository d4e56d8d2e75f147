import CStenoKernels
import Foundation

/// Element-wise kernels of the transformer. Written for the optimizer: plain loops over unsafe pointers.
package enum Kernels {
    /// GELU in its erf form, x·Φ(x), in place (erf to 1e-5; the AVX2 kernel `steno_gelu`).
    package static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        steno_gelu(x, count)
    }

    /// GELU over a large buffer, split across threads.
    static func geluParallel(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let chunks = max(1, min(BLAS.threads, count / 65536))
        if chunks == 1 { return gelu(x, count: count) }
        let size = (count + chunks - 1) / chunks
        let base = UnsafeSendable(x)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * size
            let n = min(size, count - start)
            if n > 0 { gelu(base.pointer + start, count: n) }
        }
    }

    /// Softmax of each row in place; `rows` rows of `columns` values with row stride `stride`.
    static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int? = nil) {
        steno_softmax_rows(x, Int32(rows), Int32(columns), Int32(stride ?? columns))
    }

    package static func softmax(_ row: UnsafeMutablePointer<Float>, count: Int) {
        steno_softmax_rows(row, 1, Int32(count), Int32(count))
    }

    /// Row-wise softmax over a large matrix, rows split across threads.
    static func softmaxRowsParallel(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int? = nil) {
        let stride = stride ?? columns
        let chunks = max(1, min(BLAS.threads, rows / 16))
        if chunks == 1 { return softmaxRows(x, rows: rows, columns: columns, stride: stride) }
        let per = (rows + chunks - 1) / chunks
        let base = UnsafeSendable(x)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * per
            let n = min(per, rows - start)
            if n > 0 { softmaxRows(base.pointer + start * stride, rows: n, columns: columns, stride: stride) }
        }
    }

    /// exp(x) for x ≤ 0 to about 6e-6 relative error: 2^(x·log2 e) split into integer and fraction parts,
    /// the fraction by a degree-6 polynomial. Much faster than `expf` and exact enough for attention weights.
    @inline(__always)
    package static func fastExp(_ x: Float) -> Float {
        if x < -87 { return 0 }
        let t = x * 1.44269504088896341
        let fi = t.rounded(.down)
        let f = t - fi
        // 2^f on [0, 1): minimax polynomial.
        var p: Float = 1.535336188319500e-4
        p = p * f + 1.339887440266574e-3
        p = p * f + 9.618437357674640e-3
        p = p * f + 5.550332471162809e-2
        p = p * f + 2.402264791363012e-1
        p = p * f + 6.931472028550421e-1
        p = p * f + 1.0
        let bits = UInt32(bitPattern: Int32(fi) + 127) << 23
        return p * Float(bitPattern: bits)
    }

    /// a[i] += b[i].
    static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { a[i] += b[i] }
    }

    /// log-softmax of one row into `out`.
    static func logSoftmax(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        var maximum = -Float.infinity
        for i in 0..<count where x[i] > maximum { maximum = x[i] }
        var sum: Float = 0
        for i in 0..<count where x[i] > -.infinity { sum += Foundation.exp(x[i] - maximum) }
        let logSum = maximum + Foundation.log(sum)
        for i in 0..<count { out[i] = x[i] - logSum }
    }
}

/// Any pointer handed to `concurrentPerform` iterations that touch disjoint parts of its memory.
struct UnsafeSendable<Pointee>: @unchecked Sendable {
    let pointer: Pointee
    init(_ pointer: Pointee) { self.pointer = pointer }
}
