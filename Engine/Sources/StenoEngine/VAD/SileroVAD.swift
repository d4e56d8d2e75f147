public import Foundation

/// Silero VAD v6.2 (16 kHz), computed natively: the probability that each 32 ms window (512 samples) holds
/// speech. The network: a fixed STFT as a convolution over the window and 64 samples of context, four Conv1d +
/// ReLU blocks, an LSTM cell whose state runs from window to window, and a 1×1 convolution with a sigmoid.
/// The weights are the ONNX model's of the PyPI wheel `silero-vad` 6.2.3, converted once by
/// scripts/install-vad-model.sh; docs/notes/silero-vad-v6.md has the shapes and the reference behaviour.
public final class SileroVAD: Sendable {
    public static let windowSamples = 512
    public static let contextSamples = 64
    /// STFT filter length and hop, the frequency bins kept (256 / 2 + 1), and the frames of one window.
    static let filterLength = 256, hop = 128, bins = 129, framesPerWindow = 4
    /// Windows whose feed-forward part (STFT and convolutions) is computed as one set of matrix products.
    static let windowsPerBatch = 256

    /// The STFT basis (258 rows: 129 real then 129 imaginary filters) and each Conv1d (kernel 3, padding 1,
    /// then ReLU) as a dense layer over [channel × tap] columns, the layout of im2col.
    private let stft: Linear
    private let convolutions: [Convolution]
    /// The LSTM cell's input projection carries both biases; the hidden projection none.
    private let lstmInput: Linear, lstmHidden: Linear
    private let outputWeight: [Float], outputBias: Float

    struct Convolution {
        let layer: Linear
        let channels: Int
        let stride: Int
    }

    public init(file: URL) throws {
        let weights = try TensorFile.read(file, expecting: [
            "stft.basis": [258, 1, 256],
            "conv1.weight": [128, 129, 3], "conv1.bias": [128], "conv2.weight": [64, 128, 3], "conv2.bias": [64],
            "conv3.weight": [64, 64, 3], "conv3.bias": [64], "conv4.weight": [128, 64, 3], "conv4.bias": [128],
            "lstm.weight_ih": [512, 128], "lstm.weight_hh": [512, 128], "lstm.bias_ih": [512], "lstm.bias_hh": [512],
            "output.weight": [1, 128, 1], "output.bias": [1],
        ])
        func conv(_ name: String, _ inputs: Int, _ outputs: Int, stride: Int) -> Convolution {
            Convolution(
                layer: Linear(weight: weights[name + ".weight"]!, bias: weights[name + ".bias"]!, inputs: inputs * 3, outputs: outputs),
                channels: inputs, stride: stride)
        }
        stft = Linear(weight: weights["stft.basis"]!, bias: nil, inputs: Self.filterLength, outputs: 2 * Self.bins)
        convolutions = [conv("conv1", 129, 128, stride: 1), conv("conv2", 128, 64, stride: 2),
                        conv("conv3", 64, 64, stride: 2), conv("conv4", 64, 128, stride: 1)]
        // The two biases are only ever added together.
        let bias = zip(weights["lstm.bias_ih"]!, weights["lstm.bias_hh"]!).map { $0 + $1 }
        lstmInput = Linear(weight: weights["lstm.weight_ih"]!, bias: bias, inputs: 128, outputs: 512)
        lstmHidden = Linear(weight: weights["lstm.weight_hh"]!, bias: nil, inputs: 128, outputs: 512)
        outputWeight = weights["output.weight"]!
        outputBias = weights["output.bias"]![0]
    }

    /// One probability per window of `samples` (16 kHz mono), the last window zero-padded; the state starts
    /// empty, as silero-vad's `get_speech_timestamps` resets it per recording.
    ///
    /// Only the LSTM cell depends on the windows before; everything up to its input projection depends on one
    /// window and its context alone. So that part runs as matrix products over a batch of windows at a time,
    /// and only the 128→512 hidden projection and the gates go window by window.
    public func speechProbabilities(_ samples: UnsafeBufferPointer<Float>) -> [Float] {
        let windows = (samples.count + Self.windowSamples - 1) / Self.windowSamples
        var state = LSTMState()
        var probabilities: [Float] = []
        probabilities.reserveCapacity(windows)
        var first = 0
        while first < windows {
            let count = min(Self.windowsPerBatch, windows - first)
            let gates = lstmInputs(samples, firstWindow: first, count: count)
            gates.withUnsafeBufferPointer { gates in
                for w in 0..<count { probabilities.append(step(gates.baseAddress! + w * 512, state: &state)) }
            }
            first += count
        }
        return probabilities
    }

    struct LSTMState {
        var h = [Float](repeating: 0, count: 128)
        var c = [Float](repeating: 0, count: 128)
        var gates = [Float](repeating: 0, count: 512)
    }

    /// The LSTM input projections ([count × 512], biases included) of `count` windows from `firstWindow`.
    private func lstmInputs(_ samples: UnsafeBufferPointer<Float>, firstWindow: Int, count: Int) -> [Float] {
        var x = magnitudes(samples, firstWindow: firstWindow, count: count)                  // [count·4 × 129]
        var frames = Self.framesPerWindow
        for convolution in convolutions { x = Self.convolve(x, windows: count, frames: &frames, convolution) }
        var gates = [Float](repeating: 0, count: count * 512)                                // frames is 1 here
        x.withUnsafeBufferPointer { x in
            gates.withUnsafeMutableBufferPointer { lstmInput.apply(x.baseAddress!, rows: count, into: $0.baseAddress!) }
        }
        return gates
    }

    /// |STFT| of each window's 576 input samples (64 of context, the previous window's last, zeros at first;
    /// then the window, zero-padded past the end), reflection-padded on the right by 64: 4 frames of 129 bins
    /// per window, as rows [window·4 + frame].
    private func magnitudes(_ samples: UnsafeBufferPointer<Float>, firstWindow: Int, count: Int) -> [Float] {
        let rows = count * Self.framesPerWindow
        let paddedLength = Self.contextSamples + Self.windowSamples + Self.contextSamples
        var padded = [Float](repeating: 0, count: paddedLength)
        var frames = [Float](repeating: 0, count: rows * Self.filterLength)
        for w in 0..<count {
            let start = (firstWindow + w) * Self.windowSamples - Self.contextSamples
            let inputLength = Self.contextSamples + Self.windowSamples
            for i in 0..<inputLength {
                let index = start + i
                padded[i] = index >= 0 && index < samples.count ? samples[index] : 0
            }
            for k in 0..<Self.contextSamples { padded[inputLength + k] = padded[inputLength - 2 - k] }
            for f in 0..<Self.framesPerWindow {
                let row = (w * Self.framesPerWindow + f) * Self.filterLength
                for t in 0..<Self.filterLength { frames[row + t] = padded[f * Self.hop + t] }
            }
        }
        var spectrum = [Float](repeating: 0, count: rows * 2 * Self.bins)
        frames.withUnsafeBufferPointer { f in
            spectrum.withUnsafeMutableBufferPointer { stft.apply(f.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        var out = [Float](repeating: 0, count: rows * Self.bins)
        for r in 0..<rows {
            let re = r * 2 * Self.bins, im = re + Self.bins
            for k in 0..<Self.bins {
                out[r * Self.bins + k] = (spectrum[re + k] * spectrum[re + k] + spectrum[im + k] * spectrum[im + k]).squareRoot()
            }
        }
        return out
    }

    /// One Conv1d (kernel 3, zero padding 1) and ReLU within each window: rows [window·frames + t] of
    /// `channels` values become rows [window·frames' + t'] of the layer's outputs.
    private static func convolve(_ x: [Float], windows: Int, frames: inout Int, _ convolution: Convolution) -> [Float] {
        let channels = convolution.channels
        let outFrames = (frames - 1) / convolution.stride + 1
        let rows = windows * outFrames
        // im2col: column c·3 + j of output frame t' is input frame t'·stride + j − 1 (zero outside the window).
        var columns = [Float](repeating: 0, count: rows * channels * 3)
        for w in 0..<windows {
            for t in 0..<outFrames {
                let row = (w * outFrames + t) * channels * 3
                for j in 0..<3 {
                    let source = t * convolution.stride + j - 1
                    guard source >= 0, source < frames else { continue }
                    let input = (w * frames + source) * channels
                    for c in 0..<channels { columns[row + c * 3 + j] = x[input + c] }
                }
            }
        }
        var y = [Float](repeating: 0, count: rows * convolution.layer.outputs)
        columns.withUnsafeBufferPointer { c in
            y.withUnsafeMutableBufferPointer { convolution.layer.apply(c.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        for i in y.indices where y[i] < 0 { y[i] = 0 }
        frames = outFrames
        return y
    }

    /// PyTorch's LSTMCell(128, 128) (gates i, f, g, o in that row order) on one window's input projection,
    /// then the output layer: ReLU, a 1×1 convolution and the sigmoid.
    private func step(_ input: UnsafePointer<Float>, state: inout LSTMState) -> Float {
        state.gates.withUnsafeMutableBufferPointer { gates in
            gates.baseAddress!.update(from: input, count: 512)
            state.h.withUnsafeBufferPointer { h in
                lstmHidden.weight.withUnsafeBufferPointer { w in
                    BLAS.gemv(rows: 512, columns: 128, a: w.baseAddress!, x: h.baseAddress!, y: gates.baseAddress!, beta: 1)
                }
            }
        }
        func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }
        var logit = outputBias
        for i in 0..<128 {
            let inputGate = sigmoid(state.gates[i]), forget = sigmoid(state.gates[128 + i])
            let candidate = Foundation.tanh(state.gates[256 + i]), output = sigmoid(state.gates[384 + i])
            state.c[i] = forget * state.c[i] + inputGate * candidate
            state.h[i] = output * Foundation.tanh(state.c[i])
            logit += outputWeight[i] * max(0, state.h[i])
        }
        return 1 / (1 + Foundation.exp(-logit))
    }
}

/// A plain tensor file (the safetensors layout: an 8-byte little-endian header length, a JSON header of
/// names, dtypes, shapes and byte ranges, then the data), float32 tensors only.
enum TensorFile {
    static func read(_ file: URL, expecting shapes: [String: [Int]]) throws -> [String: [Float]] {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw EngineError.invalidModel(file: file.lastPathComponent, problem: "cannot be read")
        }
        func bad(_ problem: String) -> EngineError { .invalidModel(file: file.lastPathComponent, problem: problem) }
        guard data.count >= 8 else { throw bad("too short") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard headerLength > 0, 8 + headerLength <= data.count,
              let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) as? [String: Any] else {
            throw bad("no tensor header")
        }
        var tensors: [String: [Float]] = [:]
        for (name, shape) in shapes {
            guard let entry = header[name] as? [String: Any], entry["dtype"] as? String == "F32",
                  entry["shape"] as? [Int] == shape, let range = entry["data_offsets"] as? [Int], range.count == 2 else {
                throw bad("tensor \(name) missing or not float32 \(shape)")
            }
            let begin = 8 + headerLength + range[0], end = 8 + headerLength + range[1]
            guard begin <= end, end <= data.count, end - begin == shape.reduce(1, *) * 4 else { throw bad("tensor \(name) out of bounds") }
            tensors[name] = data.subdata(in: begin..<end).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return tensors
    }
}
