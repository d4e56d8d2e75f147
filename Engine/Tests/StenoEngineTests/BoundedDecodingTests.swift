import Foundation
import StenoEngine
import Testing

/// Decoding stops at the caller's limit whatever the container says, and keeps the samples off the heap.
@Suite struct BoundedDecodingTests {
    let decoder = AudioDecoder()

    /// A FLAC of `seconds` of silence whose STREAMINFO states no total (`total_samples` = 0, valid FLAC): ffprobe
    /// reports no duration for it, so only the decoded length can tell.
    static func flacWithoutTotal(seconds: Int) throws -> URL {
        let file = AudioFixtures.url("silence-\(seconds)s-no-total.flac")
        try AudioFixtures.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                                         "-t", String(seconds), "-c:a", "flac", file.path])
        var bytes = [UInt8](try Data(contentsOf: file))
        // "fLaC", a 4-byte block header, then STREAMINFO: 10 bytes of sizes, then 64 bits of which the low 36
        // are the total sample count.
        let word = 8 + 10
        bytes[word + 3] &= 0xF0
        for index in (word + 4)..<(word + 8) { bytes[index] = 0 }
        try Data(bytes).write(to: file)
        return file
    }

    @Test func aFileWithNoStatedLengthStopsAtTheLimit() throws {
        let file = try Self.flacWithoutTotal(seconds: 120)
        #expect(try decoder.probe(file: file).duration == nil)
        let started = Date()
        #expect(throws: EngineError.audioTooLong(limitSeconds: 30)) {
            _ = try decoder.decode(file: file, limitSeconds: 30)
        }
        // Stopped near 30 s of output, not after decoding all 120 s.
        #expect(Date().timeIntervalSince(started) < 10)
        // Within the limit the same file decodes in full.
        let audio = try decoder.decode(file: file, limitSeconds: 125)
        #expect(audio.count == 120 * 16000)
        #expect(audio.duration == 120)
    }

    @Test func spooledSamplesEqualTheInMemoryOnes() throws {
        let file = try AudioFixtures.encoded("speech-bounded.flac", ["-c:a", "flac"])
        let inMemory = try decoder.decode(file: file)
        let spooled = try decoder.decode(file: file, limitSeconds: 3600)
        #expect(spooled.count == inMemory.count)
        #expect(spooled.samples == inMemory)
        // The spool file has no name: nothing is left in the scratch directory.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: decoder.scratchDirectory.path)
            .filter { $0.hasPrefix("steno-decoded-") }
        #expect(leftovers.isEmpty)
    }

    @Test func aPlainWAVOverTheLimitIsRefusedBeforeConversion() throws {
        let file = AudioFixtures.url("ten-seconds.wav")
        try AudioFixtures.run("sox", ["-n", "-r", "16000", "-c", "1", "-b", "16", file.path, "synth", "10", "sine", "300"])
        #expect(throws: EngineError.audioTooLong(limitSeconds: 5)) { _ = try decoder.decode(file: file, limitSeconds: 5) }
        #expect(try decoder.decode(file: file, limitSeconds: 10).count == 160_000)
    }

    @Test func aDecoderThatCannotStartIsAMachineFault() throws {
        let file = try AudioFixtures.encoded("speech-unstartable.flac", ["-c:a", "flac"])
        let missing = AudioDecoder(ffmpegPath: "/nonexistent/ffmpeg")
        let error = try #require(throws: EngineError.self) { _ = try missing.decode(file: file, limitSeconds: 60) }
        // Retried by the server, not reported as bad input.
        #expect(error.code == "decoder_unavailable")
    }
}
