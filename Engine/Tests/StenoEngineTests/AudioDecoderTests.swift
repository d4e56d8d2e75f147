#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StenoEngine
import Testing

@Suite struct AudioDecoderTests {
    let decoder = AudioDecoder()

    /// The recording in the usual upload formats; each decodes to the same length (within codec padding)
    /// and the same loudness envelope as the original.
    @Test(arguments: [
        ("speech.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
        ("speech.opus.ogg", ["-c:a", "libopus", "-b:a", "32k"]),
        ("speech.vorbis.ogg", ["-c:a", "libvorbis"]),
        ("speech.flac", ["-c:a", "flac"]),
        ("speech.m4a", ["-c:a", "aac", "-b:a", "64k"]),
        ("speech.webm", ["-c:a", "libopus"]),
        ("speech-44k-stereo.wav", ["-ar", "44100", "-ac", "2"]),
        ("speech-8k.wav", ["-ar", "8000"]),
        ("speech-video.mkv", ["-f", "lavfi", "-i", "color=c=blue:s=64x48:r=5:d=7.1", "-map", "1:v", "-map", "0:a",
                              "-c:v", "mpeg4", "-c:a", "libvorbis", "-shortest"]),
    ])
    func decodesCommonFormats(name: String, arguments: [String]) throws {
        let reference = try decoder.decode(file: IOTestSupport.librivoxRecording)
        #expect(reference.count == AudioFixtures.sourceSampleCount)
        let file = try AudioFixtures.encoded(name, arguments)
        let samples = try decoder.decode(file: file)
        // Within 30 ms: encoders' priming is trimmed by ffmpeg, frame-size padding may remain.
        #expect(abs(samples.count - reference.count) <= 480, "\(name): \(samples.count) samples")
        let blocks = min(samples.count, reference.count) / 1600
        let r = AudioFixtures.correlation(
            AudioFixtures.envelope(samples, blocks: blocks), AudioFixtures.envelope(reference, blocks: blocks))
        #expect(r > 0.97, "\(name): envelope correlation \(r)")
        #expect(samples.allSatisfy { $0.isFinite && abs($0) <= 1.5 })
    }

    /// Synthetic speech from espeak-ng (22050 Hz WAV, resampled by ffmpeg) and a sox-made stereo file.
    @Test func decodesEspeakAndSoxOutput() throws {
        let speech = AudioFixtures.url("espeak.wav")
        try AudioFixtures.run("espeak-ng", ["-w", speech.path, "Steno turns speech into text."])
        let espeakSamples = try decoder.decode(file: speech)
        let probe = try decoder.probe(file: speech)
        let duration = try #require(probe.duration)
        #expect(abs(Double(espeakSamples.count) / 16000 - duration) < 0.01)

        let tone = AudioFixtures.url("sox-tone.wav")
        try AudioFixtures.run("sox", ["-n", "-r", "16000", "-c", "2", "-b", "16", tone.path,
                                      "synth", "1.5", "sine", "440", "vol", "0.5"])
        let toneSamples = try decoder.decode(file: tone)
        #expect(toneSamples.count == 24000)
        let energy: Double = toneSamples.reduce(0) { $0 + Double($1) * Double($1) }
        let rms = (energy / 24000).squareRoot()
        // Both channels carry the sine at 0.5; ffmpeg's downmix, (L + R)·√½, makes it 0.5·√2, of RMS 0.5.
        #expect(abs(rms - 0.5) < 0.01)
    }

    /// The WAV fast path gives what ffmpeg gives, for 16-bit and float, mono and stereo files; WAVs it does
    /// not take (other layouts) still decode through ffmpeg.
    @Test(arguments: [
        ("fast-s16-mono.wav", ["-c:a", "pcm_s16le"], true),
        ("fast-s16-stereo.wav", ["-af", "pan=stereo|c0=c0|c1=0.3*c0", "-c:a", "pcm_s16le"], true),
        ("fast-f32-mono.wav", ["-af", "volume=0.8", "-c:a", "pcm_f32le"], true),
        // ffmpeg writes float stereo as WAVE_FORMAT_EXTENSIBLE.
        ("fast-f32-stereo.wav", ["-af", "pan=stereo|c0=0.9*c0|c1=-0.4*c0", "-c:a", "pcm_f32le"], true),
        ("slow-f32-3ch.wav", ["-af", "pan=3c|c0=c0|c1=0.5*c0|c2=-0.2*c0", "-c:a", "pcm_f32le"], false),
        ("slow-s24.wav", ["-c:a", "pcm_s24le"], false),
    ])
    func wavFastPathMatchesFFmpeg(name: String, arguments: [String], fast: Bool) throws {
        let file = try AudioFixtures.encoded(name, arguments)
        let direct = WAVReader.readSamples(from: try Data(contentsOf: file))
        #expect((direct != nil) == fast)
        let decoded = try decoder.decode(file: file)
        let viaFFmpeg = try AudioFixtures.ffmpegSamples(file)
        #expect(decoded.count == viaFFmpeg.count)
        let worst = zip(decoded, viaFFmpeg).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-6, "\(name): largest difference \(worst)")
        if let direct { #expect(direct == decoded) }
    }

    @Test func notAudioIsUndecodable() throws {
        let text = AudioFixtures.url("notes.txt")
        try Data("These are meeting notes, not audio.\n".utf8).write(to: text)
        let error = try #require(throws: EngineError.self) { try decoder.decode(file: text) }
        #expect(error.code == "undecodable_audio")
        guard case let .undecodableAudio(message) = error else { return }
        #expect(message.contains("Invalid data"))
        #expect(!message.contains(AudioFixtures.directory.path) && !message.contains("/tmp"))
        #expect(throws: EngineError.self) { try decoder.probe(file: text) }
    }

    @Test func emptyFileIsEmptyAudio() throws {
        let empty = AudioFixtures.url("empty.mp3")
        FileManager.default.createFile(atPath: empty.path, contents: Data())
        #expect(throws: EngineError.emptyAudio) { try decoder.decode(file: empty) }
        // A WAV header with no samples: also empty, through the fast path and through ffmpeg.
        let silent = AudioFixtures.url("no-samples.wav")
        try AudioFixtures.run("sox", ["-n", "-r", "16000", "-c", "1", "-b", "16", silent.path, "trim", "0", "0"])
        #expect(throws: EngineError.emptyAudio) { try decoder.decode(file: silent) }
        let silent44 = AudioFixtures.url("no-samples-44k.wav")
        try AudioFixtures.run("sox", ["-n", "-r", "44100", "-c", "1", "-b", "16", silent44.path, "trim", "0", "0"])
        #expect(throws: EngineError.emptyAudio) { try decoder.decode(file: silent44) }
    }

    /// An MP3 cut inside its first frame is refused; one cut midway decodes as far as it goes.
    @Test func truncatedMP3() throws {
        let full = try AudioFixtures.encoded("speech.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"])
        let bytes = try Data(contentsOf: full)
        let cut = AudioFixtures.url("cut-header.mp3")
        try bytes.prefix(300).write(to: cut)
        let error = try #require(throws: EngineError.self) { try decoder.decode(file: cut) }
        #expect(error.code == "undecodable_audio")
        guard case let .undecodableAudio(message) = error else { return }
        #expect(message.hasPrefix("[mp3]"), "\(message)")
        #expect(!message.contains(AudioFixtures.directory.path))

        let half = AudioFixtures.url("cut-half.mp3")
        try bytes.prefix(bytes.count / 2).write(to: half)
        let samples = try decoder.decode(file: half)
        #expect(abs(Double(samples.count) / Double(AudioFixtures.sourceSampleCount) - 0.5) < 0.05)
    }

    @Test func missingFileAndNoAudioStream() throws {
        let missing = AudioFixtures.url("missing.wav")
        #expect(throws: EngineError.undecodableAudio("the file does not exist or cannot be read")) {
            try decoder.decode(file: missing)
        }
        let video = AudioFixtures.url("silent-video.mp4")
        try AudioFixtures.run("ffmpeg", ["-nostdin", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x48:r=5:d=1",
                                         "-c:v", "mpeg4", video.path])
        #expect(throws: EngineError.undecodableAudio("the file has no audio stream")) {
            try decoder.decode(file: video)
        }
        let probe = try decoder.probe(file: video)
        #expect(!probe.hasAudio)
        #expect(probe.formatName.contains("mp4"))
    }

    /// An uploaded "audio" file that is really an HLS playlist must not make ffmpeg read another local file.
    @Test func playlistCannotReachOtherFiles() throws {
        let target = try AudioFixtures.encoded("speech.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"])
        let playlist = AudioFixtures.url("playlist.mp3")
        try Data("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:7,\n\(target.path)\n#EXT-X-ENDLIST\n".utf8)
            .write(to: playlist)
        let error = try #require(throws: EngineError.self) { try decoder.decode(file: playlist) }
        #expect(error.code == "undecodable_audio")
    }

    @Test func probeReportsFormatAndDuration() throws {
        let wav = try decoder.probe(file: IOTestSupport.librivoxRecording)
        #expect(wav == AudioProbe(duration: 7.1, formatName: "wav", hasAudio: true, channels: 1))
        let m4a = try decoder.probe(file: try AudioFixtures.encoded("speech.m4a", ["-c:a", "aac", "-b:a", "64k"]))
        #expect(m4a.hasAudio && m4a.formatName.contains("m4a"))
        #expect(abs((m4a.duration ?? 0) - 7.1) < 0.05)
        let stereo = try decoder.probe(file: try AudioFixtures.encoded("stereo.wav", ["-ac", "2"]))
        #expect(stereo.channels == 2)
    }

    /// Ten minutes of audio (38 MB of float output) stream through the pipe without stalling.
    @Test func longFileDecodes() throws {
        let long = AudioFixtures.url("long.ogg")
        try AudioFixtures.run("ffmpeg", ["-nostdin", "-y", "-f", "lavfi", "-i",
                                         "sine=frequency=300:sample_rate=16000:duration=600", "-c:a", "libvorbis",
                                         long.path])
        let samples = try AudioDecoder(timeoutSeconds: 120).decode(file: long)
        #expect(abs(samples.count - 9_600_000) <= 1600)
    }

    /// A decoder that hangs is killed at the time limit.
    @Test func hangingDecoderTimesOut() throws {
        let pidFile = AudioFixtures.url("hang.pid")
        let script = try fakeDecoder("hang", "echo $$ > '\(pidFile.path)'\nexec sleep 30")
        let decoder = AudioDecoder(ffmpegPath: script.path, timeoutSeconds: 0.5)
        let start = Date()
        #expect(throws: EngineError.decoderTimeout(seconds: 0.5)) {
            try decoder.decode(file: IOTestSupport.pocketsphinxData.appendingPathComponent("cards/cards.gram"))
        }
        #expect(Date().timeIntervalSince(start) < 5)
        let pid = try #require(Int32(String(decoding: Data(contentsOf: pidFile), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) != 0, "the hung decoder must have been killed")
    }

    /// A decoder flooding both pipes is drained; its first stderr line is the message, without paths.
    @Test func floodingDecoderIsDrained() throws {
        let script = try fakeDecoder(
            "flood",
            """
            echo "$0: first problem in /srv/private/data" >&2
            head -c 2000000 /dev/zero
            head -c 2000000 /dev/zero | tr '\\0' 'x' >&2
            exit 1
            """)
        let decoder = AudioDecoder(ffmpegPath: script.path, timeoutSeconds: 20)
        let error = try #require(throws: EngineError.self) {
            try decoder.decode(file: IOTestSupport.pocketsphinxData.appendingPathComponent("cards/cards.gram"))
        }
        guard case let .undecodableAudio(message) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(message == "<path>: first problem in <path>")
    }

    @Test func missingDecoderIsReported() throws {
        let decoder = AudioDecoder(ffmpegPath: "/nonexistent/ffmpeg")
        let error = try #require(throws: EngineError.self) {
            try decoder.decode(file: try AudioFixtures.encoded("speech.flac", ["-c:a", "flac"]))
        }
        // A fault of the machine, not of the input: the service retries rather than failing the job.
        #expect(error.code == "decoder_unavailable")
    }

    /// A stand-in for ffmpeg: a shell script (which refuses to list demuxers, so the decoder falls back to
    /// its built-in list).
    private func fakeDecoder(_ name: String, _ body: String) throws -> URL {
        let url = AudioFixtures.url("fake-\(name).sh")
        let script = "#!/bin/sh\ncase \"$*\" in *-demuxers*) exit 1;; esac\n\(body)\n"
        try Data(script.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        return url
    }
}
