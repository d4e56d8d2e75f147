import Foundation

/// The power spectrum `|X[k]|²`, k = 0…N/2, of a real signal of even length N, from one complex FFT of
/// length N/2: even samples go in the real part, odd ones in the imaginary part, and the two interleaved
/// half-length spectra are separated and recombined afterwards.
package struct RealFFT: Sendable {
    package let size: Int
    private let half: MixedRadixFFT
    /// W_N^k = exp(-2πik/N) for k = 0…N/2.
    private let twiddleRe: [Float]
    private let twiddleIm: [Float]

    /// Floats of scratch space `powerSpectrum` needs.
    package var workspaceCount: Int { 2 * size }

    package init(size: Int) {
        precondition(size >= 2 && size % 2 == 0, "RealFFT needs an even length")
        self.size = size
        half = MixedRadixFFT(size: size / 2)
        twiddleRe = (0...(size / 2)).map { Float(cos(-2 * Double.pi * Double($0) / Double(size))) }
        twiddleIm = (0...(size / 2)).map { Float(sin(-2 * Double.pi * Double($0) / Double(size))) }
    }

    /// Writes `size / 2 + 1` powers to `output`. `workspace` holds `workspaceCount` floats.
    package func powerSpectrum(
        of input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
        workspace: UnsafeMutablePointer<Float>
    ) {
        let h = size / 2
        let zr = workspace, zi = workspace + h, scratchRe = workspace + 2 * h, scratchIm = workspace + 3 * h
        // Four arrays of N/2: the packed signal z (real, imaginary) and the FFT's scratch.
        for n in 0..<h {
            zr[n] = input[2 * n]
            zi[n] = input[2 * n + 1]
        }
        half.transform(re: zr, im: zi, scratchRe: scratchRe, scratchIm: scratchIm)
        twiddleRe.withUnsafeBufferPointer { wr in
            twiddleIm.withUnsafeBufferPointer { wi in
                for k in 0...h {
                    let a = k == h ? 0 : k, b = k == 0 ? 0 : h - k
                    // E = (Z[k] + conj Z[h-k]) / 2 and O = (Z[k] - conj Z[h-k]) / 2i.
                    let er = 0.5 * (zr[a] + zr[b]), ei = 0.5 * (zi[a] - zi[b])
                    let or = 0.5 * (zi[a] + zi[b]), oi = -0.5 * (zr[a] - zr[b])
                    let xr = er + wr[k] * or - wi[k] * oi
                    let xi = ei + wr[k] * oi + wi[k] * or
                    output[k] = xr * xr + xi * xi
                }
            }
        }
    }
}
