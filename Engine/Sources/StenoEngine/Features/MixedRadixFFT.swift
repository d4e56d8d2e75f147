import Foundation

/// A complex FFT of one fixed size, decomposed into radix-2, -4 and -5 stages (other prime factors take a
/// generic stage), computed out of place in the Stockham order so no bit-reversal pass is needed.
///
/// Each stage with radix `r` turns length-`n` sub-transforms at stride `s` into length-`n/r` ones at stride
/// `s·r`: `y[q + s(rp + j)] = W_n^{jp} · Σ_k x[q + s(p + km)] W_r^{jk}` with `m = n/r`.
package struct MixedRadixFFT: Sendable {
    package let size: Int
    private let stages: [Stage]

    private struct Stage: Sendable {
        var radix: Int
        var length: Int      // n: length of the sub-transforms this stage splits
        var stride: Int      // s
        /// W_n^{jp} for p in 0..<m, j in 0..<radix, at [p * radix + j].
        var twiddleRe: [Float]
        var twiddleIm: [Float]
        /// W_r^{jk} for the generic radix, at [j * radix + k].
        var rootRe: [Float]
        var rootIm: [Float]
    }

    package init(size: Int) {
        precondition(size > 0)
        self.size = size
        var factors: [Int] = []
        var rest = size
        while rest % 4 == 0 { factors.append(4); rest /= 4 }
        while rest % 2 == 0 { factors.append(2); rest /= 2 }
        while rest % 5 == 0 { factors.append(5); rest /= 5 }
        var divisor = 3
        while rest > 1 {
            while rest % divisor == 0 { factors.append(divisor); rest /= divisor }
            divisor += 2
        }
        var stages: [Stage] = []
        var length = size
        var stride = 1
        for radix in factors {
            let m = length / radix
            var twRe = [Float](repeating: 0, count: m * radix)
            var twIm = [Float](repeating: 0, count: m * radix)
            for p in 0..<m {
                for j in 0..<radix {
                    let angle = -2 * Double.pi * Double(j * p) / Double(length)
                    twRe[p * radix + j] = Float(cos(angle))
                    twIm[p * radix + j] = Float(sin(angle))
                }
            }
            var rootRe = [Float](repeating: 0, count: radix * radix)
            var rootIm = [Float](repeating: 0, count: radix * radix)
            for j in 0..<radix {
                for k in 0..<radix {
                    let angle = -2 * Double.pi * Double((j * k) % radix) / Double(radix)
                    rootRe[j * radix + k] = Float(cos(angle))
                    rootIm[j * radix + k] = Float(sin(angle))
                }
            }
            stages.append(Stage(radix: radix, length: length, stride: stride, twiddleRe: twRe, twiddleIm: twIm,
                                rootRe: rootRe, rootIm: rootIm))
            length = m
            stride *= radix
        }
        self.stages = stages
    }

    /// Transforms `re`/`im` (each `size` long) in place, using `scratchRe`/`scratchIm` (each `size` long).
    package func transform(
        re: UnsafeMutablePointer<Float>, im: UnsafeMutablePointer<Float>,
        scratchRe: UnsafeMutablePointer<Float>, scratchIm: UnsafeMutablePointer<Float>
    ) {
        var (xr, xi, yr, yi) = (re, im, scratchRe, scratchIm)
        for stage in stages {
            stage.twiddleRe.withUnsafeBufferPointer { twr in
                stage.twiddleIm.withUnsafeBufferPointer { twi in
                    switch stage.radix {
                    case 2: Self.radix2(stage, xr, xi, yr, yi, twr.baseAddress!, twi.baseAddress!)
                    case 4: Self.radix4(stage, xr, xi, yr, yi, twr.baseAddress!, twi.baseAddress!)
                    case 5: Self.radix5(stage, xr, xi, yr, yi, twr.baseAddress!, twi.baseAddress!)
                    default: Self.generic(stage, xr, xi, yr, yi, twr.baseAddress!, twi.baseAddress!)
                    }
                }
            }
            swap(&xr, &yr)
            swap(&xi, &yi)
        }
        if xr != re {
            re.update(from: xr, count: size)
            im.update(from: xi, count: size)
        }
    }

    private static func radix2(
        _ st: Stage, _ xr: UnsafeMutablePointer<Float>, _ xi: UnsafeMutablePointer<Float>,
        _ yr: UnsafeMutablePointer<Float>, _ yi: UnsafeMutablePointer<Float>,
        _ twr: UnsafePointer<Float>, _ twi: UnsafePointer<Float>
    ) {
        let s = st.stride, m = st.length / 2
        for p in 0..<m {
            let wr = twr[p * 2 + 1], wi = twi[p * 2 + 1]
            for q in 0..<s {
                let a = q + s * p, b = a + s * m
                let dr = xr[a] - xr[b], di = xi[a] - xi[b]
                let o = q + s * 2 * p
                yr[o] = xr[a] + xr[b]
                yi[o] = xi[a] + xi[b]
                yr[o + s] = dr * wr - di * wi
                yi[o + s] = dr * wi + di * wr
            }
        }
    }

    private static func radix4(
        _ st: Stage, _ xr: UnsafeMutablePointer<Float>, _ xi: UnsafeMutablePointer<Float>,
        _ yr: UnsafeMutablePointer<Float>, _ yi: UnsafeMutablePointer<Float>,
        _ twr: UnsafePointer<Float>, _ twi: UnsafePointer<Float>
    ) {
        let s = st.stride, m = st.length / 4
        for p in 0..<m {
            let w1r = twr[p * 4 + 1], w1i = twi[p * 4 + 1]
            let w2r = twr[p * 4 + 2], w2i = twi[p * 4 + 2]
            let w3r = twr[p * 4 + 3], w3i = twi[p * 4 + 3]
            for q in 0..<s {
                let i0 = q + s * p, i1 = i0 + s * m, i2 = i1 + s * m, i3 = i2 + s * m
                let s02r = xr[i0] + xr[i2], s02i = xi[i0] + xi[i2]
                let d02r = xr[i0] - xr[i2], d02i = xi[i0] - xi[i2]
                let s13r = xr[i1] + xr[i3], s13i = xi[i1] + xi[i3]
                let d13r = xr[i1] - xr[i3], d13i = xi[i1] - xi[i3]
                // Outputs j = 0…3: W_4 = -i.
                let y1r = d02r + d13i, y1i = d02i - d13r
                let y2r = s02r - s13r, y2i = s02i - s13i
                let y3r = d02r - d13i, y3i = d02i + d13r
                let o = q + s * 4 * p
                yr[o] = s02r + s13r
                yi[o] = s02i + s13i
                yr[o + s] = y1r * w1r - y1i * w1i
                yi[o + s] = y1r * w1i + y1i * w1r
                yr[o + 2 * s] = y2r * w2r - y2i * w2i
                yi[o + 2 * s] = y2r * w2i + y2i * w2r
                yr[o + 3 * s] = y3r * w3r - y3i * w3i
                yi[o + 3 * s] = y3r * w3i + y3i * w3r
            }
        }
    }

    private static let c1 = Float(cos(2 * Double.pi / 5)), c2 = Float(cos(4 * Double.pi / 5))
    private static let s1 = Float(sin(2 * Double.pi / 5)), s2 = Float(sin(4 * Double.pi / 5))

    private static func radix5(
        _ st: Stage, _ xr: UnsafeMutablePointer<Float>, _ xi: UnsafeMutablePointer<Float>,
        _ yr: UnsafeMutablePointer<Float>, _ yi: UnsafeMutablePointer<Float>,
        _ twr: UnsafePointer<Float>, _ twi: UnsafePointer<Float>
    ) {
        let s = st.stride, m = st.length / 5
        let (c1, c2, s1, s2) = (Self.c1, Self.c2, Self.s1, Self.s2)
        for p in 0..<m {
            for q in 0..<s {
                let i0 = q + s * p, i1 = i0 + s * m, i2 = i1 + s * m, i3 = i2 + s * m, i4 = i3 + s * m
                let a14r = xr[i1] + xr[i4], a14i = xi[i1] + xi[i4]
                let b14r = xr[i1] - xr[i4], b14i = xi[i1] - xi[i4]
                let a23r = xr[i2] + xr[i3], a23i = xi[i2] + xi[i3]
                let b23r = xr[i2] - xr[i3], b23i = xi[i2] - xi[i3]
                // Real parts of the symmetric sums, and the sine terms (multiplied by -i).
                let t1r = xr[i0] + c1 * a14r + c2 * a23r, t1i = xi[i0] + c1 * a14i + c2 * a23i
                let t2r = xr[i0] + c2 * a14r + c1 * a23r, t2i = xi[i0] + c2 * a14i + c1 * a23i
                let u1r = s1 * b14i + s2 * b23i, u1i = -(s1 * b14r + s2 * b23r)
                let u2r = s2 * b14i - s1 * b23i, u2i = -(s2 * b14r - s1 * b23r)
                let o = q + s * 5 * p
                yr[o] = xr[i0] + a14r + a23r
                yi[o] = xi[i0] + a14i + a23i
                @inline(__always) func put(_ j: Int, _ vr: Float, _ vi: Float) {
                    let wr = twr[p * 5 + j], wi = twi[p * 5 + j]
                    yr[o + j * s] = vr * wr - vi * wi
                    yi[o + j * s] = vr * wi + vi * wr
                }
                put(1, t1r + u1r, t1i + u1i)
                put(2, t2r + u2r, t2i + u2i)
                put(3, t2r - u2r, t2i - u2i)
                put(4, t1r - u1r, t1i - u1i)
            }
        }
    }

    private static func generic(
        _ st: Stage, _ xr: UnsafeMutablePointer<Float>, _ xi: UnsafeMutablePointer<Float>,
        _ yr: UnsafeMutablePointer<Float>, _ yi: UnsafeMutablePointer<Float>,
        _ twr: UnsafePointer<Float>, _ twi: UnsafePointer<Float>
    ) {
        let r = st.radix, s = st.stride, m = st.length / r
        for p in 0..<m {
            for q in 0..<s {
                let o = q + s * r * p
                for j in 0..<r {
                    var sr: Float = 0, si: Float = 0
                    for k in 0..<r {
                        let i = q + s * (p + k * m)
                        let wr = st.rootRe[j * r + k], wi = st.rootIm[j * r + k]
                        sr += xr[i] * wr - xi[i] * wi
                        si += xr[i] * wi + xi[i] * wr
                    }
                    let tr = twr[p * r + j], ti = twi[p * r + j]
                    yr[o + j * s] = sr * tr - si * ti
                    yi[o + j * s] = sr * ti + si * tr
                }
            }
        }
    }
}
