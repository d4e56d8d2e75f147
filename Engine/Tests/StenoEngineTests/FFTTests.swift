import Foundation
import StenoEngine
import Testing

@Suite struct FFTTests {
    /// A deterministic pseudo-random signal in [-0.5, 0.5).
    static func noise(_ count: Int, seed: UInt32) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24) - 0.5
        }
    }

    /// The complex FFT equals a direct DFT (computed in double) for sizes that use each kind of stage.
    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 12, 25, 40, 200, 400, 1000, 21])
    func complexFFTMatchesDirectDFT(size: Int) {
        let inputRe = Self.noise(size, seed: 1), inputIm = Self.noise(size, seed: 2)
        var re = inputRe, im = inputIm
        var scratchRe = [Float](repeating: 0, count: size), scratchIm = scratchRe
        MixedRadixFFT(size: size).transform(re: &re, im: &im, scratchRe: &scratchRe, scratchIm: &scratchIm)
        var worst = 0.0
        for k in 0..<size {
            var sumRe = 0.0, sumIm = 0.0
            for n in 0..<size {
                let angle = -2 * Double.pi * Double((k * n) % size) / Double(size)
                sumRe += Double(inputRe[n]) * cos(angle) - Double(inputIm[n]) * sin(angle)
                sumIm += Double(inputRe[n]) * sin(angle) + Double(inputIm[n]) * cos(angle)
            }
            worst = max(worst, abs(sumRe - Double(re[k])), abs(sumIm - Double(im[k])))
        }
        #expect(worst < 1e-5 * Double(size), "size \(size): max error \(worst)")
    }

    /// The real-input power spectrum equals |DFT|² of the same signal.
    @Test(arguments: [2, 10, 400])
    func realPowerSpectrumMatchesDirectDFT(size: Int) {
        let input = Self.noise(size, seed: 3)
        let fft = RealFFT(size: size)
        var power = [Float](repeating: 0, count: size / 2 + 1)
        var workspace = [Float](repeating: 0, count: fft.workspaceCount)
        fft.powerSpectrum(of: input, into: &power, workspace: &workspace)
        for k in 0...(size / 2) {
            var sumRe = 0.0, sumIm = 0.0
            for n in 0..<size {
                let angle = -2 * Double.pi * Double((k * n) % size) / Double(size)
                sumRe += Double(input[n]) * cos(angle)
                sumIm += Double(input[n]) * sin(angle)
            }
            let expected = sumRe * sumRe + sumIm * sumIm
            #expect(abs(Double(power[k]) - expected) < 1e-4 * max(1, expected), "bin \(k)")
        }
    }
}
