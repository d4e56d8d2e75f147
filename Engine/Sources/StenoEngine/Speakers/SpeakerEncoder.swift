public import Foundation

/// The GE2E speaker encoder of Resemblyzer 0.1.4, computed natively: a stretch of speech becomes a 256-value
/// voice print, L2-normalised, whose cosine similarity to another is high for the same voice.
///
/// Input: 40-band power mel frames (`SpeakerFeatures`), 10 ms apart. Network: a 3-layer LSTM of 256 (PyTorch's
/// gate order i, f, g, o), the last layer's final hidden state through a linear 256→256 layer and a ReLU, then
/// L2-normalised. Resemblyzer embeds "partial utterances" of 160 frames (1.6 s); the weights are the PyPI
/// wheel's `pretrained.pt`, converted once by scripts/install-speaker-model.sh into a plain tensor file.
public final class SpeakerEncoder: Sendable {
    public static let melBands = 40
    public static let hiddenSize = 256
    public static let embeddingSize = 256
    public static let layers = 3
    /// Frames of one partial utterance, as Resemblyzer embeds them.
    public static let partialFrames = 160
    /// Sequences whose LSTM steps advance together as one matrix product.
    static let batchSize = 32

    /// Per layer: the input projection carrying both biases, and the recurrent projection without bias.
    private let inputProjections: [Linear]
    private let recurrentProjections: [Linear]
    private let output: Linear
    public let features = SpeakerFeatures()

    public init(file: URL) throws {
        var shapes: [String: [Int]] = ["linear.weight": [256, 256], "linear.bias": [256]]
        for layer in 0..<Self.layers {
            let inputs = layer == 0 ? Self.melBands : Self.hiddenSize
            shapes["lstm.weight_ih_l\(layer)"] = [4 * Self.hiddenSize, inputs]
            shapes["lstm.weight_hh_l\(layer)"] = [4 * Self.hiddenSize, Self.hiddenSize]
            shapes["lstm.bias_ih_l\(layer)"] = [4 * Self.hiddenSize]
            shapes["lstm.bias_hh_l\(layer)"] = [4 * Self.hiddenSize]
        }
        let weights: [String: [Float]]
        do {
            weights = try TensorFile.read(file, expecting: shapes)
        } catch let EngineError.invalidModel(_, problem) {
            throw EngineError.invalidModel(
                file: file.path,
                problem: "\(problem); it is the GE2E speaker encoder (scripts/install-speaker-model.sh installs it; --speaker-model points to it)")
        }
        var inputs: [Linear] = [], recurrent: [Linear] = []
        for layer in 0..<Self.layers {
            let width = layer == 0 ? Self.melBands : Self.hiddenSize
            let bias = zip(weights["lstm.bias_ih_l\(layer)"]!, weights["lstm.bias_hh_l\(layer)"]!).map { $0 + $1 }
            inputs.append(Linear(weight: weights["lstm.weight_ih_l\(layer)"]!, bias: bias, inputs: width, outputs: 4 * Self.hiddenSize))
            recurrent.append(Linear(weight: weights["lstm.weight_hh_l\(layer)"]!, bias: nil, inputs: Self.hiddenSize, outputs: 4 * Self.hiddenSize))
        }
        inputProjections = inputs
        recurrentProjections = recurrent
        output = Linear(weight: weights["linear.weight"]!, bias: weights["linear.bias"]!, inputs: 256, outputs: 256)
    }

    /// One embedding per sequence of mel frames. Each sequence is `frames` rows of 40 values; all sequences of
    /// one call have the same length (as Resemblyzer's batches of partial utterances).
    public func embed(_ sequences: [[Float]], frames: Int) -> [[Float]] {
        precondition(sequences.allSatisfy { $0.count == frames * Self.melBands })
        var embeddings: [[Float]] = []
        embeddings.reserveCapacity(sequences.count)
        var first = 0
        while first < sequences.count {
            let batch = Array(sequences[first..<min(sequences.count, first + Self.batchSize)])
            embeddings.append(contentsOf: embedBatch(batch, frames: frames))
            first += batch.count
        }
        return embeddings
    }

    /// Resemblyzer's `embed_utterance`: partial utterances of 160 frames at 1.3 per second (the last kept when
    /// at least three quarters of it is audio, the audio zero-padded to its end), each embedded, averaged and
    /// L2-normalised. Returns the utterance embedding and the partials'.
    public func embedUtterance(_ samples: [Float]) -> (embedding: [Float], partials: [[Float]]) {
        let slices = Self.partialSlices(sampleCount: samples.count)
        let paddedCount = max(samples.count, slices.last!.upperBound * WhisperAudio.hopLength)
        let padded = samples + [Float](repeating: 0, count: paddedCount - samples.count)
        let mel = features.frames(of: padded)
        let sequences = slices.map { slice in Array(mel[(slice.lowerBound * Self.melBands)..<(slice.upperBound * Self.melBands)]) }
        let partials = embed(sequences, frames: Self.partialFrames)
        return (Self.normalised(mean(of: partials)), partials)
    }

    /// Where Resemblyzer cuts an utterance into partials (its `compute_partial_slices` at rate 1.3, minimum
    /// coverage 0.75), as mel frame ranges.
    static func partialSlices(sampleCount: Int, rate: Double = 1.3, minCoverage: Double = 0.75) -> [Range<Int>] {
        let hop = WhisperAudio.hopLength
        let frameCount = Int((Double(sampleCount + 1) / Double(hop)).rounded(.up))
        let frameStep = Int((Double(WhisperAudio.sampleRate) / rate / Double(hop)).rounded(.toNearestOrEven))
        let steps = max(1, frameCount - partialFrames + frameStep + 1)
        var slices = stride(from: 0, to: steps, by: frameStep).map { $0..<($0 + partialFrames) }
        let last = slices.last!
        let coverage = Double(sampleCount - last.lowerBound * hop) / Double(partialFrames * hop)
        if coverage < minCoverage, slices.count > 1 { slices.removeLast() }
        return slices
    }

    /// The element-wise mean of equally long vectors.
    private func mean(of vectors: [[Float]]) -> [Float] {
        var sum = [Float](repeating: 0, count: vectors.first?.count ?? 0)
        for vector in vectors { for i in sum.indices { sum[i] += vector[i] } }
        return sum.map { $0 / Float(max(1, vectors.count)) }
    }

    static func normalised(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }

    /// The LSTM over a batch: for each layer, one matrix product gives every frame's input projection, then
    /// the frames advance in turn, the recurrent projection of the whole batch as one product per frame.
    private func embedBatch(_ sequences: [[Float]], frames: Int) -> [[Float]] {
        let batch = sequences.count, hidden = Self.hiddenSize, gatesWidth = 4 * hidden
        // Layer input, rows [sequence·frames + t].
        var x = sequences.flatMap { $0 }
        var gates = [Float](repeating: 0, count: batch * frames * gatesWidth)
        var step = [Float](repeating: 0, count: batch * gatesWidth)
        var h = [Float](repeating: 0, count: batch * hidden)
        var c = [Float](repeating: 0, count: batch * hidden)
        var layerOutput = [Float](repeating: 0, count: batch * frames * hidden)
        for layer in 0..<Self.layers {
            x.withUnsafeBufferPointer { x in
                gates.withUnsafeMutableBufferPointer { inputProjections[layer].apply(x.baseAddress!, rows: batch * frames, into: $0.baseAddress!) }
            }
            for i in h.indices { h[i] = 0; c[i] = 0 }
            for t in 0..<frames {
                // step[b] = gates[b, t] + W_hh · h[b]
                gates.withUnsafeBufferPointer { gates in
                    step.withUnsafeMutableBufferPointer { step in
                        for b in 0..<batch {
                            (step.baseAddress! + b * gatesWidth).update(from: gates.baseAddress! + (b * frames + t) * gatesWidth, count: gatesWidth)
                        }
                        h.withUnsafeBufferPointer { h in
                            recurrentProjections[layer].weight.withUnsafeBufferPointer { w in
                                BLAS.gemmNT(m: batch, n: gatesWidth, k: hidden, a: h.baseAddress!, lda: hidden,
                                            b: w.baseAddress!, ldb: hidden, c: step.baseAddress!, ldc: gatesWidth, beta: 1)
                            }
                        }
                    }
                }
                step.withUnsafeBufferPointer { step in
                    h.withUnsafeMutableBufferPointer { h in
                        c.withUnsafeMutableBufferPointer { c in
                            layerOutput.withUnsafeMutableBufferPointer { out in
                                Self.lstmCell(gates: step.baseAddress!, h: h.baseAddress!, c: c.baseAddress!, batch: batch)
                                for b in 0..<batch {
                                    (out.baseAddress! + (b * frames + t) * hidden).update(from: h.baseAddress! + b * hidden, count: hidden)
                                }
                            }
                        }
                    }
                }
            }
            if layer + 1 < Self.layers {
                swap(&x, &layerOutput)
                if layerOutput.count != batch * frames * hidden { layerOutput = [Float](repeating: 0, count: batch * frames * hidden) }
            }
        }
        // The last layer's final hidden state → linear → ReLU → L2 normalisation.
        var projected = [Float](repeating: 0, count: batch * 256)
        h.withUnsafeBufferPointer { h in
            projected.withUnsafeMutableBufferPointer { output.apply(h.baseAddress!, rows: batch, into: $0.baseAddress!) }
        }
        return (0..<batch).map { b in
            Self.normalised(projected[(b * 256)..<((b + 1) * 256)].map { max(0, $0) })
        }
    }

    /// PyTorch's LSTM cell on a batch: gates [batch × 4·256] (i, f, g, o), state updated in place. The
    /// sigmoids and tanhs go through `Kernels.fastExp` (about 6e-6 relative error): libm's are most of the
    /// encoder's time otherwise.
    private static func lstmCell(gates: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>, batch: Int) {
        let n = hiddenSize
        for b in 0..<batch {
            let g = gates + b * 4 * n, hb = h + b * n, cb = c + b * n
            for i in 0..<n {
                let inputGate = sigmoid(g[i]), forget = sigmoid(g[n + i])
                let candidate = tanh(g[2 * n + i]), outputGate = sigmoid(g[3 * n + i])
                cb[i] = forget * cb[i] + inputGate * candidate
                hb[i] = outputGate * tanh(cb[i])
            }
        }
    }

    @inline(__always)
    static func sigmoid(_ v: Float) -> Float {
        let e = Kernels.fastExp(-abs(v))
        return v >= 0 ? 1 / (1 + e) : e / (1 + e)
    }

    @inline(__always)
    static func tanh(_ v: Float) -> Float {
        let e = Kernels.fastExp(-2 * abs(v))
        let t = (1 - e) / (1 + e)
        return v >= 0 ? t : -t
    }
}

/// The speaker encoder's input: librosa's `melspectrogram` as Resemblyzer calls it (16 kHz, 400-point FFT
/// with a periodic Hann window, hop 160, centred with 200 zeros of padding on each side, power spectrum, 40
/// Slaney-normalised mel bands from 0 to 8 kHz), not logarithmic. Frame t is centred on sample 160·t; a
/// recording of n samples has 1 + n / 160 frames.
public struct SpeakerFeatures: Sendable {
    public let filterbank = MelFilterbank(bands: SpeakerEncoder.melBands, fftSize: 400)
    private let fft = RealFFT(size: 400)
    private let window: [Float] = (0..<400).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / 400)) }

    public init() {}

    /// Frame count of `sampleCount` samples.
    public static func frameCount(samples sampleCount: Int) -> Int { 1 + sampleCount / WhisperAudio.hopLength }

    /// All frames of `samples`, rows of 40 values.
    public func frames(of samples: [Float]) -> [Float] {
        samples.withUnsafeBufferPointer { frames(of: $0, range: 0..<Self.frameCount(samples: $0.count)) }
    }

    /// Frames `range` of the recording `samples` (rows of 40 values), each centred on sample 160·t, with zeros
    /// outside the recording.
    public func frames(of samples: UnsafeBufferPointer<Float>, range: Range<Int>) -> [Float] {
        let n = 400, bins = filterbank.bins, bands = filterbank.bands
        var out = [Float](repeating: 0, count: range.count * bands)
        var frame = [Float](repeating: 0, count: n)
        var power = [Float](repeating: 0, count: bins)
        var workspace = [Float](repeating: 0, count: fft.workspaceCount)
        for (row, t) in range.enumerated() {
            let start = t * WhisperAudio.hopLength - n / 2
            for i in 0..<n {
                let index = start + i
                frame[i] = index >= 0 && index < samples.count ? samples[index] * window[i] : 0
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
                let weights = band * bins
                for bin in filterbank.lowerBin[band]..<filterbank.upperBin[band] { sum += filterbank.weights[weights + bin] * power[bin] }
                out[row * bands + band] = sum
            }
        }
        return out
    }
}
