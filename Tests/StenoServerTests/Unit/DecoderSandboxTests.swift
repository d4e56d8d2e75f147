import Foundation
import StenoEngine
import StenoServer
import Testing

/// The decoder's sandbox: ffmpeg under CPU-time and address-space limits fails with a code instead of hanging
/// or taking the machine, and a file stating an absurd duration is refused after probing, before decoding.
@Suite struct DecoderSandboxTests {
    /// Runs a tool of the test's own set-up (not sandboxed) and requires it to succeed.
    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool) \(arguments) failed")
    }

    /// Two seconds of tone in `name` (its extension picks the format), made by ffmpeg.
    /// A stand-in for ffmpeg that answers the demuxer listing with an error (so the input policy falls back to
    /// its own list), then spins on the CPU forever.
    static func spinningFFmpeg(in directory: URL) throws -> URL {
        let spinner = directory.appendingPathComponent("spinning-ffmpeg")
        try "#!/bin/sh\ncase \"$*\" in *-demuxers*) exit 1;; esac\nwhile :; do :; done\n"
            .write(to: spinner, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: spinner.path)
        return spinner
    }

    static func tone(_ name: String, in directory: URL) throws -> URL {
        let file = directory.appendingPathComponent(name)
        try run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=2", "-ar", "16000", "-ac", "1", file.path])
        return file
    }

    @Test func decodingThatNeedsMoreMemoryThanAllowedFailsWithAClearMessage() throws {
        let directory = try TemporaryDirectory()
        let mp3 = try Self.tone("tone.mp3", in: directory.url)
        // The same file decodes under the default limits…
        #expect(try AudioDecoder().decode(file: mp3).count > 16000)
        // …and not when ffmpeg may map only 200 MiB (loading its libraries alone takes about 400 MB).
        let started = Date()
        #expect {
            try AudioDecoder(memoryBytes: 200 << 20).decode(file: mp3)
        } throws: { error in
            guard let error = error as? EngineError, case let .decoderLimitExceeded(limit) = error else { return false }
            return error.code == "decoder_limit_exceeded" && limit.contains("memory limit of 200 MiB")
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }

    /// A "decoder" that spins forever is killed by the CPU-time limit after one CPU second, long before the
    /// wall-clock timeout, and reported as a decoder limit (not as a timeout: the input was too costly, the
    /// decoder was not slow).
    @Test func aDecoderThatBurnsCPUIsKilledByTheCPULimit() throws {
        let directory = try TemporaryDirectory()
        let flac = try Self.tone("tone.flac", in: directory.url)
        let spinner = try Self.spinningFFmpeg(in: directory.url)

        let started = Date()
        #expect(throws: EngineError.decoderLimitExceeded(limit: "CPU-time limit of 1 s")) {
            try AudioDecoder(ffmpegPath: spinner.path, timeoutSeconds: 120, cpuSeconds: 1).decode(file: flac)
        }
        // One CPU second, however busy the machine is, is far less than the 120 s wall-clock limit.
        #expect(Date().timeIntervalSince(started) < 60)
    }

    /// The decoder limits of `steno serve` (`STENO_DECODER_*`, or `--decoder-*`) reach the decoder the server
    /// runs: with a one-second CPU limit a spinning decoder fails the transcription with
    /// `decoder_limit_exceeded` (a permanent failure for the worker pool), not `decoder_timeout`.
    @Test func serveSettingsReachTheDecoder() throws {
        let directory = try TemporaryDirectory()
        let flac = try Self.tone("tone.flac", in: directory.url)
        let spinner = try Self.spinningFFmpeg(in: directory.url)

        var configuration = try ServerConfiguration(settings: [
            "STENO_MODEL": Fixtures.model.path, "STENO_VAD_MODEL": Fixtures.vadModel.path, "STENO_FFMPEG": spinner.path, "STENO_DECODER_TIMEOUT": "2m",
            "STENO_DECODER_CPU": "1", "STENO_DECODER_MEMORY": "1G",
        ])
        configuration.threads = 1
        let transcriber = try WhisperTranscriber(configuration: configuration)
        #expect(transcriber.decoder.timeoutSeconds == 120)
        #expect(transcriber.decoder.cpuSeconds == 1)
        #expect(transcriber.decoder.memoryBytes == 1 << 30)
        #expect {
            try transcriber.transcribe(file: flac, model: transcriber.models.defaultName, options: TranscriptionOptions(), progress: { _ in }, isCancelled: { false })
        } throws: { error in
            (error as? EngineError)?.code == "decoder_limit_exceeded"
        }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: ["STENO_DECODER_MEMORY": "1M"]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: ["STENO_DECODER_CPU": "soon"]) }
    }

    /// A FLAC file whose STREAMINFO claims 2^36 samples (about 50 days) but holds 2 s: the probe reads the
    /// claim and the job fails with `audio_too_long` although decoding it would have succeeded.
    @Test func anAbsurdStatedDurationIsRefusedAfterProbing() throws {
        let directory = try TemporaryDirectory()
        let flac = try Self.tone("tone.flac", in: directory.url)
        var bytes = [UInt8](try Data(contentsOf: flac))
        try #require(bytes.count > 26 && bytes[0..<4].elementsEqual("fLaC".utf8))
        // Bytes 18…25 hold sample rate, channels, bits per sample and, in the low 36 bits, the sample count.
        bytes[21] |= 0x0F
        for index in 22...25 { bytes[index] = 0xFF }
        let liar = directory.url.appendingPathComponent("liar.flac")
        try Data(bytes).write(to: liar)

        let probe = try AudioDecoder().probe(file: liar)
        #expect(try #require(probe.duration) > 4_000_000)
        #expect(try AudioDecoder().decode(file: liar).count == 32000)

        let transcriber = try WhisperTranscriber(
            modelDirectory: Fixtures.model, voiceActivityModel: Fixtures.vadModel, threads: 1, maxAudioSeconds: 600)
        #expect {
            try transcriber.transcribe(file: liar, model: transcriber.models.defaultName, options: TranscriptionOptions(), progress: { _ in }, isCancelled: { false })
        } throws: { error in
            (error as? JobFailure)?.code == "audio_too_long"
        }
    }
}
