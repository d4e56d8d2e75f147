import Foundation
import StenoEngine
import Testing

/// Reference values were computed once with faster-whisper 1.2.1's own feature extractor
/// (`faster_whisper.feature_extractor.FeatureExtractor(n_mels)(samples, padding=…)` and its `.mel_filters`)
/// on the signal `testSignal` below, generated identically in numpy, and on a LibriVox recording.
@Suite struct LogMelSpectrogramTests {
    static let tolerance: Float = 1e-4

    /// 40123 samples: 0.1 s of silence, then a 440 Hz tone, a chirp from 200 Hz, a 3777 Hz tone and LCG noise,
    /// faded in over the first 0.5 s. Computed in double, rounded to float.
    static let testSignal: [Float] = {
        var state: UInt64 = 12345
        return (0..<40123).map { i in
            state = (state * 1_103_515_245 + 12345) % (1 << 31)
            if i < 1600 { return 0 }
            let t = Double(i) / 16000
            let noise = Double(state) / Double(1 << 31) - 0.5
            let fade = min(1, Double(i) / 8000)
            let tones = 0.4 * sin(2 * .pi * 440 * t) + 0.2 * sin(2 * .pi * (200 + 1500 * t) * t)
                + 0.05 * sin(2 * .pi * 3777 * t + 1)
            return Float(tones * fade + 0.05 * noise * fade)
        }
    }()

    @Test func filterbank80MatchesFasterWhisper() {
        let bank = MelFilterbank(bands: 80)
        #expect(bank.bins == 201)
        #expect(bank.weights.filter { $0 != 0 }.count == 391)
        #expect(abs(bank.weights.reduce(0.0) { $0 + Double($1) } - 1.99902411) < 1e-6)
        let points: [(Int, Int)] = [(0, 1), (9, 10), (18, 18), (27, 27), (36, 37), (45, 51), (45, 53), (54, 71),
                                    (54, 73), (54, 75), (63, 101), (63, 103), (63, 105), (63, 107), (72, 142),
                                    (72, 144), (72, 146), (72, 148), (72, 150), (72, 152)]
        let expected: [Float] = [0.02486259, 0.006945197, 0.01787204, 0.003610967, 0.01656128, 0.005156962,
                                 0.007301822, 0.0002863668, 0.006649229, 0.004809897, 0.001294369, 0.004481776,
                                 0.00488666, 0.001819342, 0.0003559796, 0.001952676, 0.003549373, 0.003729963,
                                 0.002193423, 0.0006568834]
        for ((band, bin), value) in zip(points, expected) {
            #expect(abs(bank.weights[band * 201 + bin] - value) <= 1e-6 * value, "band \(band) bin \(bin)")
        }
    }

    @Test func filterbank128MatchesFasterWhisper() {
        let bank = MelFilterbank(bands: 128)
        #expect(bank.weights.filter { $0 != 0 }.count == 394)
        #expect(abs(bank.weights.reduce(0.0) { $0 + Double($1) } - 3.19098552) < 1e-6)
        let points: [(Int, Int)] = [(0, 1), (18, 11), (36, 22), (54, 33), (63, 41), (72, 51), (72, 53), (81, 64),
                                    (90, 79), (90, 81), (99, 99), (99, 101), (108, 122), (108, 124), (108, 126),
                                    (117, 151), (117, 153), (117, 155), (117, 157), (126, 188), (126, 190),
                                    (126, 192), (126, 194)]
        let expected: [Float] = [0.01237399, 0.03495235, 0.01562839, 0.00856344, 0.006931381, 0.006591877,
                                 0.001468042, 0.012009, 0.006184019, 0.006297788, 0.008731318, 0.003489239,
                                 0.004187308, 0.006931883, 0.001360232, 0.002316419, 0.00601427, 0.003873574,
                                 0.0002638267, 0.002344858, 0.004740612, 0.003782647, 0.001443974]
        for ((band, bin), value) in zip(points, expected) {
            #expect(abs(bank.weights[band * 201 + bin] - value) <= 1e-6 * value, "band \(band) bin \(bin)")
        }
    }

    static let bandsChecked = [0, 1, 7, 20, 39, 55, 66, 79]

    @Test func spectrogramMatchesFasterWhisperWithTranscribePadding() {
        let mel = LogMelSpectrogram(melBands: 80).compute(Self.testSignal, paddingSamples: 160)
        #expect(mel.bands == 80 && mel.frames == 251)
        let expected: [Float] = [
            -0.6085746, -0.6085746, -0.6085746, 0.5182919, 0.0009486675, 0.08147192, 0.1959041, 0.1830199, 0.3579881, 0.3814167,
            -0.6085746, -0.6085746, -0.6085746, 0.5229091, 0.005690098, -0.008053422, 0.2323634, 0.2291419, 0.3038606, 0.3678055,
            -0.6085746, -0.6085746, -0.6085746, 0.6361864, 0.04503995, 0.07812113, 0.3385154, 0.1908119, 0.2183769, 0.6202536,
            -0.6085746, -0.6085746, -0.6085746, 0.3564669, -0.1168817, 0.105873, 0.1018104, 0.2376729, 0.1620672, 0.4902822,
            -0.6085746, -0.6085746, -0.6085746, -0.04859805, -0.5317763, 0.2272087, 0.2361431, 0.2662503, 0.08877659, 0.2644331,
            -0.6085746, -0.6085746, -0.6085746, -0.2439442, -0.6085746, 0.05699354, 0.2587473, 0.2568299, 0.2152196, 0.1902654,
            -0.6085746, -0.6085746, -0.6085746, -0.2013, -0.6085746, 0.1307297, 0.2245721, 0.2243043, 0.1628237, 0.3006061,
            -0.6085746, -0.6085746, -0.6085746, -0.1507323, -0.6085746, 0.1416716, 0.1982522, 0.2756068, 1.06442, 1.064056,
        ]
        expectValues(mel, bands: Self.bandsChecked, frames: [0, 1, 5, 10, 9, 37, 123, 200, 249, 250], expected)
        #expect(abs(mean(mel) - 0.236826937) < 1e-5)
    }

    @Test func spectrogramMatchesFasterWhisperWithoutPadding() {
        let mel = LogMelSpectrogram(melBands: 80).compute(Self.testSignal)
        #expect(mel.frames == 250)
        let expected: [Float] = [
            -0.6085746, 0.2882727, 0.3579881, -0.6085746, 0.2547433, 0.3038606, -0.6085746, 0.1654661, 0.2183769,
            -0.6085746, 0.1989261, 0.1620672, -0.6085746, 0.2122666, 0.08877659, -0.6085746, 0.2931607, 0.2152196,
            -0.6085746, 0.2308928, 0.1628237, -0.6085746, 1.055405, 1.06442,
        ]
        expectValues(mel, bands: Self.bandsChecked, frames: [0, 248, 249], expected)
        #expect(abs(mean(mel) - 0.236093689) < 1e-5)
    }

    @Test func spectrogram128MatchesFasterWhisper() {
        let mel = LogMelSpectrogram(melBands: 128).compute(Self.testSignal, paddingSamples: 160)
        #expect(mel.bands == 128 && mel.frames == 251)
        let expected: [Float] = [
            -0.5614787, -0.09187353, 0.1366999, 0.2472005, 0.3056575, -0.5614787, -0.04328895, 0.01088685, -0.01145887,
            0.4004766, -0.5614787, -0.1103141, 0.04015601, 0.2360818, 0.3044369, -0.5614787, -0.04391003, 0.1846449,
            0.06220978, 0.3352898, -0.5614787, -0.09539187, 0.1406883, 0.1792952, 1.02488,
        ]
        expectValues(mel, bands: [0, 5, 64, 100, 127], frames: [0, 11, 77, 150, 250], expected)
        #expect(abs(mean(mel) - 0.209070763) < 1e-5)
    }

    /// A real recording: every band's mean over all 711 frames (so each value of the matrix counts), the
    /// extremes and 30 scattered points.
    @Test func spectrogramOfARecordingMatchesFasterWhisper() throws {
        let data = try Data(contentsOf: IOTestSupport.librivoxRecording)
        let samples = try #require(WAVReader.readSamples(from: data))
        #expect(samples.count == 113_600)
        let mel = LogMelSpectrogram(melBands: 80).compute(samples, paddingSamples: 160)
        #expect(mel.frames == 711)
        #expect(abs(mel.values.max()! - 1.27988374) < Self.tolerance)
        #expect(abs(mel.values.min()! - -0.720116258) < Self.tolerance)
        #expect(abs(mean(mel) - -0.0209661) < 1e-5)
        let bandMeans: [Double] = [
            0.5731918, 0.6962442, 0.6614799, 0.5819949, 0.5514486, 0.5176432, 0.4556835, 0.4196014, 0.4046115, 0.3814403,
            0.3589052, 0.319235, 0.2881387, 0.2790536, 0.2801278, 0.2088279, 0.1835777, 0.1816268, 0.1733606, 0.1546269,
            0.127368, 0.09889913, 0.08245596, 0.06365559, 0.0447707, 0.03983699, 0.04862521, 0.03356358, -0.01064784,
            -0.04163098, -0.04164089, -0.03086392, -0.03724121, -0.03072062, -0.02968405, -0.03463226, 0.006708925,
            -0.0005161864, 0.02060287, 0.009506755, 0.01831167, -0.00490928, -0.01927808, -0.04135715, -0.06239336,
            -0.05978787, -0.05893699, -0.07608037, -0.06297945, -0.03400769, -0.02408852, -0.01380649, -0.01848417,
            -0.04539822, -0.05274646, -0.04618058, -0.04762708, -0.04705452, -0.004809957, -0.03587106, -0.06886444,
            -0.07849943, -0.09785924, -0.123869, -0.2004861, -0.3071738, -0.4144365, -0.5333779, -0.5407262,
            -0.5163976, -0.5121122, -0.5219786, -0.5390609, -0.5473168, -0.5823849, -0.6155439, -0.6490647,
            -0.6726246, -0.6947535, -0.7125075,
        ]
        for band in 0..<80 {
            let row = mel.values[(band * mel.frames)..<((band + 1) * mel.frames)]
            let bandMean = row.reduce(0.0) { $0 + Double($1) } / Double(mel.frames)
            #expect(abs(bandMean - bandMeans[band]) < 1e-5, "band \(band)")
        }
        let points: [(Int, Int)] = [(75, 414), (50, 393), (54, 362), (71, 707), (46, 574), (62, 563), (66, 497),
                                    (18, 442), (4, 242), (24, 703), (22, 331), (69, 153), (73, 600), (0, 113),
                                    (39, 609), (65, 435), (10, 81), (63, 31), (9, 316), (37, 25), (65, 100),
                                    (24, 366), (27, 689), (57, 574), (20, 652), (79, 585), (35, 447), (38, 313),
                                    (40, 365)]
        let expected: [Float] = [-0.7201163, -0.5664922, 0.2046726, -0.7201163, -0.2084641, 0.1169419, -0.5816623,
                                 0.2340086, 0.8926269, -0.5546004, 0.03064364, -0.5799621, -0.6774408, 0.2855358,
                                 0.3437103, -0.6635094, 0.853964, -0.07381737, -0.2124215, -0.1792004, -0.6472515,
                                 0.854892, -0.1959828, 0.3294029, 0.7297956, -0.7201163, 0.2835695, -0.01009321,
                                 0.2773373]
        for ((band, frame), value) in zip(points, expected) {
            #expect(abs(mel[band, frame] - value) < Self.tolerance, "band \(band) frame \(frame)")
        }
    }

    @Test func windowSlicesAndZeroPads() {
        let mel = LogMelSpectrogram(melBands: 80).compute(Self.testSignal, paddingSamples: 160)
        let window = mel.window(startFrame: 200)
        #expect(window.count == 80 * 3000)
        for band in [0, 40, 79] {
            for frame in [0, 25, 50] {
                #expect(window[band * 3000 + frame] == mel[band, 200 + frame])
            }
            #expect(window[(band * 3000 + 51)..<((band + 1) * 3000)].allSatisfy { $0 == 0 })
        }
        let short = mel.window(startFrame: 10, frames: 20)
        #expect(short.count == 80 * 20)
        #expect(short[79 * 20 + 19] == mel[79, 29])
        #expect(mel.window(startFrame: 5000).allSatisfy { $0 == 0 })
    }

    @Test func degenerateInputs() {
        let extractor = LogMelSpectrogram(melBands: 80)
        #expect(extractor.compute([]).frames == 0)
        #expect(extractor.compute([Float](repeating: 0.1, count: 159)).frames == 0)
        // Shorter than the reflect padding: the reflection bounces, as numpy's does; values stay finite.
        let tiny = extractor.compute([0.5, -0.25, 0.125], paddingSamples: 160)
        #expect(tiny.frames == 1)
        #expect(tiny.values.allSatisfy { $0.isFinite })
        // Silence: every value is log10(1e-10) normalized, (-10 + 4) / 4.
        let silence = extractor.compute([Float](repeating: 0, count: 16000))
        #expect(silence.values.allSatisfy { $0 == -1.5 })
    }

    private func mean(_ mel: MelSpectrogram) -> Double {
        mel.values.reduce(0.0) { $0 + Double($1) } / Double(mel.values.count)
    }

    private func expectValues(
        _ mel: MelSpectrogram, bands: [Int], frames: [Int], _ expected: [Float],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(expected.count == bands.count * frames.count, sourceLocation: sourceLocation)
        for (i, band) in bands.enumerated() {
            for (j, frame) in frames.enumerated() {
                let want = expected[i * frames.count + j]
                #expect(abs(mel[band, frame] - want) < Self.tolerance, "band \(band) frame \(frame)",
                        sourceLocation: sourceLocation)
            }
        }
    }
}
