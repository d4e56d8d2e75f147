public import Foundation

/// Silero VAD v6.2 (16 kHz), computed natively: the probability that each 32 ms window (512 samples) holds
/// speech. The network: a fixed STFT as a convolution over the window and 64 samples of context, four Conv1d +
/// ReLU blocks, an LSTM cell whose state runs from window to window, and a 1×1 convolution with a sigmoid.
/// The weights are the ONNX model's of the PyPI wheel `silero-vad` 6.2.3, converted once by
/// scripts/install-vad-model.sh; docs/notes/silero-vad-v6.md has the shapes and the reference behaviour.
public final class SileroVAD: Sendable {
    public static let windowSamples = 512
    public static let contextSamples = 64
    /// STFT filter length and hop, and the frequency bins kept (256 / 2 + 1).
    static let filterLength = 256, hop = 128, bins = 129

    private let basis: [Float]
    private let conv1: ConvWeights, conv2: ConvWeights, conv3: ConvWeights, conv4: ConvWeights
    private let lstmInput: [Float], lstmHidden: [Float], lstmBias: [Float]
    private let outputWeight: [Float], outputBias: Float

    /// One Conv1d (kernel 3, padding 1) followed by ReLU.
    struct ConvWeights {
        let weight: [Float]
        let bias: [Float]
        let inputs: Int
        let outputs: Int
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
        func conv(_ name: String, _ inputs: Int, _ outputs: Int, stride: Int) -> ConvWeights {
            ConvWeights(weight: weights[name + ".weight"]!, bias: weights[name + ".bias"]!, inputs: inputs, outputs: outputs, stride: stride)
        }
        basis = weights["stft.basis"]!
        conv1 = conv("conv1", 129, 128, stride: 1)
        conv2 = conv("conv2", 128, 64, stride: 2)
        conv3 = conv("conv3", 64, 64, stride: 2)
        conv4 = conv("conv4", 64, 128, stride: 1)
        lstmInput = weights["lstm.weight_ih"]!
        lstmHidden = weights["lstm.weight_hh"]!
        // The two biases are only ever added together.
        lstmBias = zip(weights["lstm.bias_ih"]!, weights["lstm.bias_hh"]!).map { $0 + $1 }
        outputWeight = weights["output.weight"]!
        outputBias = weights["output.bias"]![0]
    }

    /// One probability per window of `samples` (16 kHz mono), the last window zero-padded; the state starts
    /// empty, as silero-vad's `get_speech_timestamps` resets it per recording.
    public func speechProbabilities(_ samples: UnsafeBufferPointer<Float>) -> [Float] {
        let windows = (samples.count + Self.windowSamples - 1) / Self.windowSamples
        var state = LSTMState()
        var input = [Float](repeating: 0, count: Self.contextSamples + Self.windowSamples)
        var probabilities: [Float] = []
        probabilities.reserveCapacity(windows)
        for window in 0..<windows {
            // [context | window]: the context is the previous window's last 64 samples (zeros at first).
            let start = window * Self.windowSamples
            let count = min(Self.windowSamples, samples.count - start)
            for i in 0..<Self.contextSamples { input[i] = input[Self.windowSamples + i] }
            for i in 0..<Self.windowSamples { input[Self.contextSamples + i] = i < count ? samples[start + i] : 0 }
            probabilities.append(probability(of: input, state: &state))
        }
        return probabilities
    }

    struct LSTMState {
        var h = [Float](repeating: 0, count: 128)
        var c = [Float](repeating: 0, count: 128)
    }

    private func probability(of input: [Float], state: inout LSTMState) -> Float {
        var x = (values: magnitudes(of: input), frames: 4)                                     // [129 × 4]
        for block in [conv1, conv2, conv3, conv4] { x = Self.conv(x.values, frames: x.frames, block) }
        lstmStep(x.values, state: &state)
        var logit = outputBias
        for i in 0..<128 { logit += outputWeight[i] * max(0, state.h[i]) }
        return 1 / (1 + Foundation.exp(-logit))
    }

    /// |STFT| of the 576 input samples, reflection-padded on the right by 64: [129 bins × 4 frames].
    private func magnitudes(of input: [Float]) -> [Float] {
        let n = input.count
        var padded = input
        for k in 0..<Self.contextSamples { padded.append(input[n - 2 - k]) }
        let frames = (padded.count - Self.filterLength) / Self.hop + 1
        var out = [Float](repeating: 0, count: Self.bins * frames)
        for f in 0..<frames {
            let offset = f * Self.hop
            for k in 0..<Self.bins {
                var re: Float = 0, im: Float = 0
                let real = k * Self.filterLength, imaginary = (Self.bins + k) * Self.filterLength
                for t in 0..<Self.filterLength {
                    re += basis[real + t] * padded[offset + t]
                    im += basis[imaginary + t] * padded[offset + t]
                }
                out[k * frames + f] = (re * re + im * im).squareRoot()
            }
        }
        return out
    }

    /// Conv1d, kernel 3, zero padding 1, then ReLU: [channels × frames] → [outputs × frames'].
    private static func conv(_ x: [Float], frames: Int, _ block: ConvWeights) -> (values: [Float], frames: Int) {
        let outFrames = (frames + 2 - 3) / block.stride + 1
        let channels = block.inputs
        var y = [Float](repeating: 0, count: block.outputs * outFrames)
        for o in 0..<block.outputs {
            for t in 0..<outFrames {
                var sum = block.bias[o]
                for c in 0..<channels {
                    for j in 0..<3 {
                        let source = t * block.stride + j - 1
                        if source >= 0 && source < frames { sum += block.weight[(o * channels + c) * 3 + j] * x[c * frames + source] }
                    }
                }
                y[o * outFrames + t] = max(0, sum)
            }
        }
        return (y, outFrames)
    }

    /// PyTorch's LSTMCell(128, 128): gates i, f, g, o in that row order.
    private func lstmStep(_ x: [Float], state: inout LSTMState) {
        var gates = [Float](repeating: 0, count: 512)
        for r in 0..<512 {
            var sum = lstmBias[r]
            for i in 0..<128 { sum += lstmInput[r * 128 + i] * x[i] + lstmHidden[r * 128 + i] * state.h[i] }
            gates[r] = sum
        }
        func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }
        for i in 0..<128 {
            let input = sigmoid(gates[i]), forget = sigmoid(gates[128 + i])
            let candidate = Foundation.tanh(gates[256 + i]), output = sigmoid(gates[384 + i])
            state.c[i] = forget * state.c[i] + input * candidate
            state.h[i] = output * Foundation.tanh(state.c[i])
        }
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
