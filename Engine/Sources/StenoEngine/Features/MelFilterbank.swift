import Foundation

/// Whisper's mel filterbank: `bands` triangular filters over the 201 bins of a 400-point FFT at 16 kHz,
/// centred on points equally spaced on the Slaney mel scale from 0 to 8000 Hz (linear below 1 kHz,
/// logarithmic above), each scaled by 2 / (its width in Hz) so that every band has about the same energy.
/// Computed in double precision and rounded to float, as librosa and faster-whisper do.
public struct MelFilterbank: Sendable {
    public let bands: Int
    /// Number of FFT bins (n_fft / 2 + 1).
    public let bins: Int
    /// Row-major [bands][bins].
    public let weights: [Float]
    /// Each band's nonzero weights are `weights[band * bins + lowerBin[band] ..< … + upperBin[band]]`.
    let lowerBin: [Int]
    let upperBin: [Int]

    public init(bands: Int, fftSize: Int = 400, sampleRate: Int = WhisperAudio.sampleRate) {
        self.bands = bands
        bins = fftSize / 2 + 1
        let binFrequencies = (0..<bins).map { Double($0) * Double(sampleRate) / Double(fftSize) }
        let maxMel = Self.mel(ofHertz: Double(sampleRate) / 2)
        let points = (0..<(bands + 2)).map { Self.hertz(ofMel: maxMel * Double($0) / Double(bands + 1)) }
        var weights = [Float](repeating: 0, count: bands * bins)
        var lowerBin = [Int](repeating: 0, count: bands)
        var upperBin = [Int](repeating: 0, count: bands)
        for band in 0..<bands {
            let (left, centre, right) = (points[band], points[band + 1], points[band + 2])
            let norm = 2 / (right - left)
            var first = bins, last = 0
            for (bin, frequency) in binFrequencies.enumerated() {
                let rising = (frequency - left) / (centre - left)
                let falling = (right - frequency) / (right - centre)
                let weight = max(0, min(rising, falling)) * norm
                if weight > 0 {
                    weights[band * bins + bin] = Float(weight)
                    first = min(first, bin)
                    last = bin + 1
                }
            }
            lowerBin[band] = min(first, last)
            upperBin[band] = last
        }
        self.weights = weights
        self.lowerBin = lowerBin
        self.upperBin = upperBin
    }

    /// The Slaney mel scale: linear (3 mels per 200 Hz) to 1 kHz, then logarithmic (27 mels per factor 6.4).
    static func mel(ofHertz f: Double) -> Double {
        let linearSpacing = 200.0 / 3, breakHz = 1000.0, logStep = log(6.4) / 27
        return f < breakHz ? f / linearSpacing : breakHz / linearSpacing + log(f / breakHz) / logStep
    }

    static func hertz(ofMel m: Double) -> Double {
        let linearSpacing = 200.0 / 3, breakHz = 1000.0, logStep = log(6.4) / 27
        let breakMel = breakHz / linearSpacing
        return m < breakMel ? m * linearSpacing : breakHz * exp(logStep * (m - breakMel))
    }
}
