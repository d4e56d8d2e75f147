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
    public static let sampleRate = WhisperAudio.sampleRate

    public let ffmpegPath: String
    public let ffprobePath: String
    public let timeoutSeconds: Double
    public let cpuSeconds: Int
    public let memoryBytes: Int
    /// Where decoded samples are spooled while ffmpeg runs (unnamed files: nothing stays behind).
    public let scratchDirectory: URL

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
    ///   - scratchDirectory: where decoded samples are spooled (default: the system's temporary directory).
    public init(ffmpegPath: String = "ffmpeg", ffprobePath: String = "ffprobe", timeoutSeconds: Double = 300,
                cpuSeconds: Int? = nil, memoryBytes: Int = AudioDecoder.defaultMemoryBytes, scratchDirectory: URL? = nil) {
        self.ffmpegPath = ffmpegPath
        self.ffprobePath = ffprobePath
        self.timeoutSeconds = timeoutSeconds
        self.cpuSeconds = max(1, cpuSeconds ?? Int(timeoutSeconds.rounded(.up)))
        self.memoryBytes = memoryBytes
        self.scratchDirectory = scratchDirectory ?? FileManager.default.temporaryDirectory
    }

    private var limits: Subprocess.ResourceLimits {
        Subprocess.ResourceLimits(cpuSeconds: cpuSeconds, addressSpaceBytes: memoryBytes)
    }

    /// The file's first audio stream as 16 kHz mono float32 samples, in memory.
    ///
    /// - Throws: `EngineError.emptyAudio` for an empty file or one without samples;
    ///   `EngineError.undecodableAudio` with ffmpeg's first error line (paths removed) when the file is not
    ///   audio ffmpeg can read, has no audio stream, or is missing; `EngineError.decoderTimeout` when ffmpeg
    ///   takes longer than `timeoutSeconds`; `EngineError.decoderLimitExceeded` when the kernel stops it at
    ///   its `cpuSeconds` CPU-time or `memoryBytes` address-space limit; `EngineError.decoderUnavailable` when
    ///   ffmpeg cannot be started (missing, or no descriptors or processes left: worth another try).
    public func decode(file: URL) throws -> [Float] {
        try decode(file: file, limitSeconds: nil).samples
    }

    /// The file's first audio stream, decoded at most to `limitSeconds`: ffmpeg is stopped as soon as its
    /// output passes the limit, whatever the container states (or fails to state) about the duration, and the
    /// samples are spooled to an unnamed file in `scratchDirectory` and mapped, not collected on the heap.
    ///
    /// - Throws: as `decode(file:)`, and `EngineError.audioTooLong` past the limit.
    public func decode(file: URL, limitSeconds: Double?) throws -> DecodedAudio {
        try checkReadable(file)
        if let samples = try Self.readPlainWAV(file, limitSeconds: limitSeconds) {
            guard !samples.isEmpty else { throw EngineError.emptyAudio }
            return DecodedAudio(samples: samples)
        }
        let ffmpeg = try Self.executable(ffmpegPath, role: "ffmpeg")
        let arguments = ["-nostdin", "-hide_banner", "-loglevel", "error"]
            + FFmpegInputPolicy.inputArguments(for: file, ffmpeg: ffmpeg, timeout: timeoutSeconds)
            + ["-map", "0:a:0", "-ac", "1", "-ar", String(Self.sampleRate), "-f", "f32le", "-"]
        var spool = try SampleSpool(directory: scratchDirectory, limitSeconds: limitSeconds)
        defer { spool.closeFile() }
        let outcome = try Self.launch(ffmpeg, arguments, timeout: timeoutSeconds, limits: limits) { try spool.append($0) }
        try check(outcome, file: file)
        guard spool.samples > 0 else { throw EngineError.emptyAudio }
        return try spool.mapped()
    }

    /// Channels a multichannel transcription takes by default (a call recording has two; a conference
    /// bridge or a multitrack interview a few more).
    public static let defaultMaxChannels = 8

    /// The file's first audio stream with its channels kept apart: one 16 kHz track per channel (a mono file
    /// gives one), each decoded at most to `limitSeconds`.
    ///
    /// - Throws: as `decode(file:limitSeconds:)`, and `EngineError.tooManyChannels` when the stream has more
    ///   than `maxChannels`, before anything is decoded.
    public func decodeChannels(file: URL, limitSeconds: Double?, maxChannels: Int = AudioDecoder.defaultMaxChannels) throws -> [DecodedAudio] {
        let probe = try probe(file: file)
        guard probe.hasAudio else { throw EngineError.undecodableAudio("the file has no audio stream") }
        let channels = max(1, probe.channels ?? 1)
        guard channels <= maxChannels else { throw EngineError.tooManyChannels(count: channels, limit: maxChannels) }
        if channels == 1 { return [try decode(file: file, limitSeconds: limitSeconds)] }
        let ffmpeg = try Self.executable(ffmpegPath, role: "ffmpeg")
        let arguments = ["-nostdin", "-hide_banner", "-loglevel", "error"]
            + FFmpegInputPolicy.inputArguments(for: file, ffmpeg: ffmpeg, timeout: timeoutSeconds)
            + ["-map", "0:a:0", "-ac", String(channels), "-ar", String(Self.sampleRate), "-f", "f32le", "-"]
        // The spool holds the interleaved frames; the limit counts frames, not samples.
        var spool = try SampleSpool(directory: scratchDirectory, limitSeconds: limitSeconds, channels: channels)
        defer { spool.closeFile() }
        let outcome = try Self.launch(ffmpeg, arguments, timeout: timeoutSeconds, limits: limits) { try spool.append($0) }
        try check(outcome, file: file)
        guard spool.samples >= channels else { throw EngineError.emptyAudio }
        // Each channel goes to a spool file of its own, mapped as the mono path's is: hours of audio cost
        // page cache, not resident memory.
        let interleaved = try spool.mapped()
        return try interleaved.withSamples { samples in
            let frames = samples.count / channels
            return try (0..<channels).map { channel in
                var track = try SampleSpool(directory: scratchDirectory, limitSeconds: nil)
                defer { track.closeFile() }
                var chunk = [Float](repeating: 0, count: 65536)
                var frame = 0
                while frame < frames {
                    let count = min(chunk.count, frames - frame)
                    for i in 0..<count { chunk[i] = samples[(frame + i) * channels + channel] }
                    try chunk.withUnsafeBytes { try track.append(UnsafeRawBufferPointer(rebasing: $0[0..<(count * 4)])) }
                    frame += count
                }
                return try track.mapped()
            }
        }
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
                          hasAudio: !audio.isEmpty, channels: (audio.first?["channels"] as? NSNumber)?.intValue)
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

    /// The samples of a 16 kHz PCM WAV file, or nil when the file needs ffmpeg. A file with more samples than
    /// `limitSeconds` allows is refused before any is converted.
    private static func readPlainWAV(_ file: URL, limitSeconds: Double?) throws -> [Float]? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        let header = handle.readData(ofLength: 12)
        try? handle.close()
        guard header.count == 12, header.prefix(4) == Data("RIFF".utf8), header.suffix(4) == Data("WAVE".utf8),
              let data = try? Data(contentsOf: file, options: .alwaysMapped)
        else { return nil }
        let maxFrames = limitSeconds.map { Int(($0 * Double(sampleRate)).rounded(.up)) }
        switch WAVReader.readSamples(from: data, sampleRate: sampleRate, maxFrames: maxFrames) {
        case .samples(let samples): return samples
        case .tooLong: throw EngineError.audioTooLong(limitSeconds: limitSeconds ?? 0)
        case .notPlainWAV: return nil
        }
    }

    private static func executable(_ command: String, role: String) throws -> URL {
        guard let url = Subprocess.resolve(command) else {
            throw EngineError.decoderUnavailable("\(role) is not installed on the server")
        }
        return url
    }

    private static func launch(
        _ executable: URL, _ arguments: [String], timeout: Double, limits: Subprocess.ResourceLimits,
        onOutput: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Subprocess.Outcome {
        do {
            return try Subprocess.run(executable: executable, arguments: arguments, timeout: timeout,
                                      limits: limits, onOutput: onOutput)
        } catch let failure as Subprocess.LaunchFailed {
            // Out of descriptors or processes: the machine's state, not the input's, so the job is tried again.
            throw EngineError.decoderUnavailable("the audio decoder could not be started (\(failure))")
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
