#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
public import Foundation

/// Turns an audio or video file of any format ffmpeg reads into Whisper's input: 16 kHz mono float32
/// samples in [-1, 1].
///
/// Plain PCM WAV files already at 16 kHz (16-bit or 32-bit float, any channel count) are read directly;
/// everything else goes through an `ffmpeg` subprocess that decodes the first audio stream, downmixes and
/// resamples it. ffmpeg may read only the given file (see `FFmpegInputPolicy`), runs under kernel limits on
/// CPU time and address space (`cpuSeconds`, `memoryBytes`), and is killed when it runs longer than
/// `timeoutSeconds`; ffprobe runs under the same rules. Both calls block the calling thread: run them on a
/// thread of your own.
public struct AudioDecoder: Sendable {
    /// Samples per second of the decoded audio, as Whisper expects.
    public static let sampleRate = 16000

    public let ffmpegPath: String
    public let ffprobePath: String
    public let timeoutSeconds: Double
    public let cpuSeconds: Int
    public let memoryBytes: Int

    /// Address space ffmpeg gets by default. Loading ffmpeg and its libraries alone maps about 400 MB;
    /// streaming decoding needs little more, so a gigabyte and a half leaves room without letting a crafted
    /// file take the machine's memory.
    public static let defaultMemoryBytes = 1536 << 20

    /// - Parameters:
    ///   - ffmpegPath: a path, or a name looked up on `PATH`.
    ///   - ffprobePath: a path, or a name looked up on `PATH`.
    ///   - timeoutSeconds: wall-clock limit for one ffmpeg or ffprobe run.
    ///   - cpuSeconds: CPU-time limit for one run (all its threads together); nil means `timeoutSeconds`.
    ///   - memoryBytes: address-space limit for one run.
    public init(ffmpegPath: String = "ffmpeg", ffprobePath: String = "ffprobe", timeoutSeconds: Double = 300,
                cpuSeconds: Int? = nil, memoryBytes: Int = AudioDecoder.defaultMemoryBytes) {
        self.ffmpegPath = ffmpegPath
        self.ffprobePath = ffprobePath
        self.timeoutSeconds = timeoutSeconds
        self.cpuSeconds = max(1, cpuSeconds ?? Int(timeoutSeconds.rounded(.up)))
        self.memoryBytes = memoryBytes
    }

    private var limits: Subprocess.ResourceLimits {
        Subprocess.ResourceLimits(cpuSeconds: cpuSeconds, addressSpaceBytes: memoryBytes)
    }

    /// The file's first audio stream as 16 kHz mono float32 samples.
    ///
    /// - Throws: `EngineError.emptyAudio` for an empty file or one without samples;
    ///   `EngineError.undecodableAudio` with ffmpeg's first error line (paths removed) when the file is not
    ///   audio ffmpeg can read, has no audio stream, or is missing; `EngineError.decoderTimeout` when ffmpeg
    ///   takes longer than `timeoutSeconds`; `EngineError.decoderLimitExceeded` when the kernel stops it at
    ///   its `cpuSeconds` CPU-time or `memoryBytes` address-space limit.
    public func decode(file: URL) throws -> [Float] {
        try checkReadable(file)
        if let samples = Self.readPlainWAV(file) {
            guard !samples.isEmpty else { throw EngineError.emptyAudio }
            return samples
        }
        let ffmpeg = try Self.executable(ffmpegPath, role: "ffmpeg")
        let arguments = ["-nostdin", "-hide_banner", "-loglevel", "error"]
            + FFmpegInputPolicy.inputArguments(for: file, ffmpeg: ffmpeg, timeout: timeoutSeconds)
            + ["-map", "0:a:0", "-ac", "1", "-ar", String(Self.sampleRate), "-f", "f32le", "-"]
        var samples = FloatCollector()
        let outcome = try Self.launch(ffmpeg, arguments, timeout: timeoutSeconds, limits: limits) { samples.append($0) }
        try check(outcome, file: file)
        guard !samples.values.isEmpty else { throw EngineError.emptyAudio }
        return samples.values
    }

    /// The container's format, duration and whether it has audio, from `ffprobe`.
    ///
    /// - Throws: as `decode(file:)`, except that a file without audio is reported, not refused.
    public func probe(file: URL) throws -> AudioProbe {
        try checkReadable(file)
        let ffprobe = try Self.executable(ffprobePath, role: "ffprobe")
        // The demuxer list comes from ffmpeg: ffprobe is built from the same libraries.
        let ffmpeg = (try? Self.executable(ffmpegPath, role: "ffmpeg")) ?? ffprobe
        var input = FFmpegInputPolicy.inputArguments(for: file, ffmpeg: ffmpeg, timeout: timeoutSeconds)
        input.remove(at: input.count - 2)    // ffprobe takes the input without `-i`
        let arguments = ["-hide_banner", "-loglevel", "error", "-print_format", "json", "-show_format",
                         "-show_streams"] + input
        var json: [UInt8] = []
        let outcome = try Self.launch(ffprobe, arguments, timeout: timeoutSeconds, limits: limits) {
            json.append(contentsOf: $0)
        }
        try check(outcome, file: file)
        guard let root = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
              let format = root["format"] as? [String: Any]
        else { throw EngineError.undecodableAudio("ffprobe gave no format information") }
        let streams = root["streams"] as? [[String: Any]] ?? []
        let audio = streams.filter { $0["codec_type"] as? String == "audio" }
        let duration = Self.seconds(format["duration"]) ?? audio.lazy.compactMap { Self.seconds($0["duration"]) }.first
        return AudioProbe(duration: duration, formatName: format["format_name"] as? String ?? "unknown",
                          hasAudio: !audio.isEmpty)
    }

    // MARK: Steps

    private func checkReadable(_ file: URL) throws {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        } catch {
            throw EngineError.undecodableAudio("the file does not exist or cannot be read")
        }
        if attributes[.type] as? FileAttributeType == .typeDirectory {
            throw EngineError.undecodableAudio("the input is a directory, not a file")
        }
        if (attributes[.size] as? NSNumber)?.intValue == 0 { throw EngineError.emptyAudio }
    }

    /// The samples of a 16 kHz PCM WAV file, or nil when the file needs ffmpeg.
    private static func readPlainWAV(_ file: URL) -> [Float]? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        let header = handle.readData(ofLength: 12)
        try? handle.close()
        guard header.count == 12, header.prefix(4) == Data("RIFF".utf8), header.suffix(4) == Data("WAVE".utf8),
              let data = try? Data(contentsOf: file, options: .alwaysMapped)
        else { return nil }
        return WAVReader.readSamples(from: data, sampleRate: sampleRate)
    }

    private static func executable(_ command: String, role: String) throws -> URL {
        guard let url = Subprocess.resolve(command) else {
            throw EngineError.decoderUnavailable("\(role) is not installed on the server")
        }
        return url
    }

    private static func launch(
        _ executable: URL, _ arguments: [String], timeout: Double, limits: Subprocess.ResourceLimits,
        onOutput: (UnsafeRawBufferPointer) -> Void
    ) throws -> Subprocess.Outcome {
        do {
            return try Subprocess.run(executable: executable, arguments: arguments, timeout: timeout,
                                      limits: limits, onOutput: onOutput)
        } catch {
            throw EngineError.undecodableAudio("the audio decoder could not be started")
        }
    }

    private func check(_ outcome: Subprocess.Outcome, file: URL) throws {
        if outcome.timedOut { throw EngineError.decoderTimeout(seconds: timeoutSeconds) }
        // We did not kill it, so SIGKILL (or SIGXCPU) came from the kernel: the CPU-time limit was used up.
        // Reported apart from the wall-clock timeout: the input made the decoder work too hard, it was not slow.
        if outcome.signaled, outcome.status == SIGKILL || outcome.status == SIGXCPU {
            throw EngineError.decoderLimitExceeded(limit: "CPU-time limit of \(cpuSeconds) s")
        }
        if outcome.status != 0, Self.ranOutOfMemory(outcome.standardError) {
            throw EngineError.decoderLimitExceeded(limit: "memory limit of \(memoryBytes >> 20) MiB")
        }
        if outcome.signaled {
            throw EngineError.undecodableAudio("the decoder crashed on this input (signal \(outcome.status))")
        }
        guard outcome.status == 0 else {
            let message = FFmpegInputPolicy.clientMessage(standardError: outcome.standardError, file: file)
            throw EngineError.undecodableAudio(message ?? "the decoder failed with status \(outcome.status)")
        }
    }

    /// Whether ffmpeg's standard error says an allocation or a mapping failed (the address-space limit).
    private static func ranOutOfMemory(_ standardError: String) -> Bool {
        ["Cannot allocate memory", "failed to map segment", "out of memory", "bad_alloc"].contains {
            standardError.localizedCaseInsensitiveContains($0)
        }
    }

    private static func seconds(_ value: Any?) -> Double? {
        if let text = value as? String { return Double(text) }
        return (value as? NSNumber)?.doubleValue
    }
}

/// Collects little-endian float32 samples from byte chunks whose boundaries may split a sample.
private struct FloatCollector {
    var values: [Float] = []
    private var carry: [UInt8] = []

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        var bytes = chunk[...]
        if !carry.isEmpty {
            let needed = 4 - carry.count
            carry += bytes.prefix(needed)
            bytes = bytes.dropFirst(needed)
            guard carry.count == 4 else { return }
            values.append(Self.float(carry[0], carry[1], carry[2], carry[3]))
            carry.removeAll(keepingCapacity: true)
        }
        let whole = bytes.count / 4
        var index = bytes.startIndex
        for _ in 0..<whole {
            values.append(Self.float(bytes[index], bytes[index + 1], bytes[index + 2], bytes[index + 3]))
            index += 4
        }
        carry += bytes[index...]
    }

    private static func float(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) -> Float {
        Float(bitPattern: UInt32(b0) | UInt32(b1) << 8 | UInt32(b2) << 16 | UInt32(b3) << 24)
    }
}
