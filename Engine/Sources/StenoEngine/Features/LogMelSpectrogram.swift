import Dispatch
import Foundation

/// Whisper's log-mel spectrogram, computed as openai/whisper and faster-whisper compute it: a 400-point STFT
/// (periodic Hann window, hop 160, centred with reflect padding of 200 samples, last frame dropped), power
/// spectrum, Slaney mel filterbank, `log10(max(x, 1e-10))`, clamped below at (maximum over the whole
/// recording − 8), then mapped by `(x + 4) / 4`. One frame is 10 ms of 16 kHz audio.
public struct LogMelSpectrogram: Sendable {
    public static let fftSize = 400
    public static let hopLength = 160
    /// Frames in one 30-second window of the model.
    public static let framesPerWindow = 3000

    public let filterbank: MelFilterbank
    private let fft: RealFFT
    /// Periodic Hann window of `fftSize` points.
    private let window: [Float]

    /// - Parameter melBands: 80 for every Whisper model up to large-v2, 128 for large-v3.
    public init(melBands: Int) {
        filterbank = MelFilterbank(bands: melBands, fftSize: Self.fftSize)
        fft = RealFFT(size: Self.fftSize)
        window = (0..<Self.fftSize).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(Self.fftSize))) }
    }

    /// The spectrogram of 16 kHz mono samples.
    ///
    /// - Parameter paddingSamples: zeros appended to the audio before the STFT. faster-whisper's `transcribe`
    ///   appends 160 (one hop), which yields one more frame and lets the last real samples fall in a full
    ///   frame; openai/whisper appends 480000 (a whole window). The frame count is
    ///   `(samples.count + paddingSamples) / 160`, and the padding takes part in the clamp's maximum.
    public func compute(_ samples: [Float], paddingSamples: Int = 0) -> MelSpectrogram {
        samples.withUnsafeBufferPointer { compute($0, paddingSamples: paddingSamples) }
    }

    /// As `compute(_:paddingSamples:)`, reading the samples in place (for example from a mapped spool file).
    public func compute(_ samples: UnsafeBufferPointer<Float>, paddingSamples: Int = 0) -> MelSpectrogram {
        let length = samples.count + max(0, paddingSamples)
        let frames = length / Self.hopLength
        let bands = filterbank.bands
        guard frames > 0 else { return MelSpectrogram(bands: bands, frames: 0, values: []) }
        var values = [Float](repeating: 0, count: bands * frames)
        let chunkCount = min(frames, BLAS.threads * 4)
        var chunkMaxima = [Float](repeating: -.infinity, count: chunkCount)
        values.withUnsafeMutableBufferPointer { output in
            chunkMaxima.withUnsafeMutableBufferPointer { maxima in
                let shared = SharedBuffers(input: samples, length: length, output: output, maxima: maxima)
                DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
                    let range = (frames * chunk / chunkCount)..<(frames * (chunk + 1) / chunkCount)
                    shared.maxima[chunk] = logMel(frames: range, totalFrames: frames, shared: shared)
                }
            }
        }
        // Clamp to 80 dB below the loudest point, then scale to roughly [-1, 1].
        let floor = (chunkMaxima.max() ?? 0) - 8
        for i in values.indices {
            values[i] = (max(values[i], floor) + 4) / 4
        }
        return MelSpectrogram(bands: bands, frames: frames, values: values)
    }

    /// Buffers shared by the worker threads; each thread writes only its own frames and maximum slot.
    private struct SharedBuffers: @unchecked Sendable {
        let input: UnsafeBufferPointer<Float>
        /// Samples including the trailing zero padding.
        let length: Int
        let output: UnsafeMutableBufferPointer<Float>
        let maxima: UnsafeMutableBufferPointer<Float>
    }

    /// Writes `log10(max(mel, 1e-10))` for a range of frames to `shared.output` ([bands][totalFrames]) and
    /// returns the largest value written.
    private func logMel(frames range: Range<Int>, totalFrames: Int, shared: SharedBuffers) -> Float {
        let n = Self.fftSize, bins = filterbank.bins, bands = filterbank.bands
        var frame = [Float](repeating: 0, count: n)
        var power = [Float](repeating: 0, count: bins)
        var workspace = [Float](repeating: 0, count: fft.workspaceCount)
        var largest = -Float.infinity
        let input = shared.input, length = shared.length
        for t in range {
            // The frame is centred on sample t·hop; outside the signal it is mirrored (reflect padding).
            let start = t * Self.hopLength - n / 2
            for i in 0..<n {
                frame[i] = Self.sample(input, length: length, at: start + i) * window[i]
            }
            frame.withUnsafeBufferPointer { f in
                power.withUnsafeMutableBufferPointer { p in
                    workspace.withUnsafeMutableBufferPointer { w in
                        fft.powerSpectrum(of: f.baseAddress!, into: p.baseAddress!, workspace: w.baseAddress!)
                    }
                }
            }
            for band in 0..<bands {
                var sum: Float = 0
                let row = band * bins
                for bin in filterbank.lowerBin[band]..<filterbank.upperBin[band] {
                    sum += filterbank.weights[row + bin] * power[bin]
                }
                let value = log10(max(sum, 1e-10))
                shared.output[band * totalFrames + t] = value
                largest = max(largest, value)
            }
        }
        return largest
    }

    /// Sample `index` of the zero-padded signal of `length` samples, reflected at both ends (the edge sample
    /// itself is not repeated), bouncing again if the reflection overshoots a short signal.
    @inline(__always)
    private static func sample(_ input: UnsafeBufferPointer<Float>, length: Int, at index: Int) -> Float {
        var i = index
        if i < 0 || i >= length {
            guard length > 1 else { return length == 1 ? value(input, 0) : 0 }
            let period = 2 * (length - 1)
            i = ((i % period) + period) % period
            if i >= length { i = period - i }
        }
        return value(input, i)
    }

    /// Sample `i` of the signal, or zero in the appended padding.
    @inline(__always)
    private static func value(_ input: UnsafeBufferPointer<Float>, _ i: Int) -> Float {
        i < input.count ? input[i] : 0
    }
}

/// A log-mel spectrogram: `bands` rows of `frames` values (10 ms each), row-major.
public struct MelSpectrogram: Sendable {
    public let bands: Int
    public let frames: Int
    /// Row-major [bands][frames].
    public var values: [Float]

    public init(bands: Int, frames: Int, values: [Float]) {
        precondition(values.count == bands * frames)
        self.bands = bands
        self.frames = frames
        self.values = values
    }

    /// The value of one band at one frame.
    public subscript(band: Int, frame: Int) -> Float {
        values[band * frames + frame]
    }

    /// The model input for the window starting at `startFrame`: [bands][frames], frames past the end of the
    /// spectrogram filled with 0, as faster-whisper pads each window's normalised log-mel.
    public func window(startFrame: Int, frames count: Int = LogMelSpectrogram.framesPerWindow) -> [Float] {
        var result = [Float](repeating: 0, count: bands * count)
        let start = max(0, startFrame)
        let available = max(0, min(count, frames - start))
        guard available > 0 else { return result }
        for band in 0..<bands {
            let source = band * frames + start
            result.replaceSubrange((band * count)..<(band * count + available),
                                   with: values[source..<(source + available)])
        }
        return result
    }
}
