import COpenBLAS
import Foundation

/// Thin wrappers over OpenBLAS SGEMM for the shapes a transformer needs. Matrices are row-major.
enum BLAS {
    /// Threads the engine's own parallel loops may use; set with `setThreads`.
    nonisolated(unsafe) private(set) static var threads = ProcessInfo.processInfo.activeProcessorCount

    /// Sets the number of threads for every product, OpenBLAS's and the engine's own kernels (process-wide).
    static func setThreads(_ count: Int) {
        threads = max(1, count)
        openblas_set_num_threads(Int32(threads))
    }

    /// C[m×n] = alpha · A[m×k] · B[n×k]ᵀ + beta · C, with leading dimensions (row strides) given.
    @inline(__always)
    static func gemmNT(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y[rows] = A[rows × columns] · x + beta · y (A row-major, dense).
    @inline(__always)
    static func gemv(rows: Int, columns: Int, a: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, beta: Float = 0) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(columns), 1, a, Int32(columns), x, 1, beta, y, 1)
    }

    /// C[m×n] = alpha · A[m×k] · B[k×n] + beta · C.
    @inline(__always)
    static func gemmNN(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// A dense layer y = x·Wᵀ + b with W stored [outputs × inputs], as CTranslate2 stores it.
struct Linear: Sendable {
    let weight: [Float]
    let bias: [Float]?
    let inputs: Int
    let outputs: Int

    init(file: ModelFile, prefix: String, inputs: Int, outputs: Int, hasBias: Bool = true) throws {
        weight = try file.floats(prefix + "/weight", shape: [outputs, inputs])
        bias = hasBias ? try file.floats(prefix + "/bias", shape: [outputs]) : nil
        self.inputs = inputs
        self.outputs = outputs
    }

    init(weight: [Float], bias: [Float]?, inputs: Int, outputs: Int) {
        self.weight = weight
        self.bias = bias
        self.inputs = inputs
        self.outputs = outputs
    }

    /// A slice of the output rows [from, from+count): used to split fused Q/K/V projections.
    func rows(_ from: Int, _ count: Int) -> Linear {
        Linear(
            weight: Array(weight[(from * inputs)..<((from + count) * inputs)]),
            bias: bias.map { Array($0[from..<(from + count)]) },
            inputs: inputs, outputs: count)
    }

    /// y[rows × outputs] (row stride ldy) = x[rows × inputs] (row stride ldx) · Wᵀ + b.
    func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil) {
        let ldy = ldy ?? outputs
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows { (y + r * ldy).update(from: b.baseAddress!, count: outputs) }
            }
        }
        weight.withUnsafeBufferPointer { w in
            BLAS.gemmNT(m: rows, n: outputs, k: inputs, a: x, lda: ldx ?? inputs, b: w.baseAddress!, ldb: inputs,
                        c: y, ldc: ldy, beta: bias == nil ? 0 : 1)
        }
    }
}

/// Layer normalization over the last axis (eps 1e-5), with learned gain and bias.
struct LayerNorm: Sendable {
    let gamma: [Float]
    let beta: [Float]

    init(file: ModelFile, prefix: String, width: Int) throws {
        gamma = try file.floats(prefix + "/gamma", shape: [width])
        beta = try file.floats(prefix + "/beta", shape: [width])
    }

    /// out[r] = LN(x[r]) for `rows` rows of `gamma.count` values.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let n = gamma.count
        gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = x + r * n
                    let dst = out + r * n
                    var mean: Float = 0
                    for i in 0..<n { mean += row[i] }
                    mean /= Float(n)
                    var variance: Float = 0
                    for i in 0..<n {
                        let d = row[i] - mean
                        variance += d * d
                    }
                    variance /= Float(n)
                    let inv = 1 / (variance + 1e-5).squareRoot()
                    for i in 0..<n { dst[i] = (row[i] - mean) * inv * g[i] + b[i] }
                }
            }
        }
    }
}
