import Foundation

/// Audio files made once per test run from Debian's recordings with ffmpeg, sox and espeak-ng, in a
/// temporary directory that is removed when the test process exits.
enum AudioFixtures {
    /// The LibriVox recording: 7.1 s, 16 kHz mono 16-bit WAV (113600 samples).
    static let sourceSampleCount = 113_600

    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("steno-audio-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: AudioFixtures.directory) }
        return url
    }()

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// Encodes the LibriVox recording with ffmpeg into `name`, with extra output arguments; made once.
    static func encoded(_ name: String, _ arguments: [String]) throws -> URL {
        let target = url(name)
        if !FileManager.default.fileExists(atPath: target.path) {
            try run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i",
                               IOTestSupport.librivoxRecording.path] + arguments + [target.path])
        }
        return target
    }

    /// Runs a tool to completion and returns its standard output; throws if it fails.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(tool) \(arguments) failed"])
        }
        return data
    }

    /// What ffmpeg itself makes of a file: 16 kHz mono float32, for comparing the WAV fast path against.
    static func ffmpegSamples(_ file: URL) throws -> [Float] {
        let data = try run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-i", file.path,
                                      "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"])
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// RMS of consecutive 100 ms blocks: a loudness envelope that survives lossy coding.
    static func envelope(_ samples: [Float], blocks: Int) -> [Double] {
        (0..<blocks).map { block in
            let range = (block * 1600)..<min(samples.count, (block + 1) * 1600)
            guard !range.isEmpty else { return 0 }
            return (samples[range].reduce(0.0) { $0 + Double($1 * $1) } / Double(range.count)).squareRoot()
        }
    }

    /// Pearson correlation of two equally long series.
    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        let meanA = a.reduce(0, +) / n, meanB = b.reduce(0, +) / n
        var ab = 0.0, aa = 0.0, bb = 0.0
        for (x, y) in zip(a, b) {
            ab += (x - meanA) * (y - meanB)
            aa += (x - meanA) * (x - meanA)
            bb += (y - meanB) * (y - meanB)
        }
        return ab / (aa * bb).squareRoot()
    }
}
