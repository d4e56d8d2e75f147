import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import StenoEngine
import StenoServer
import Testing

/// Hostile and broken input against a live server with the real engine: non-audio, truncated and corrupted
/// files of every common format, empty and lying files, wrong content types and broken multipart bodies.
/// Each is either refused at upload with a `{error:{code,message}}` 4xx, or accepted and then ends in a
/// terminal state (failed with a code, or completed when the damage is inaudible); the server still answers.
@Suite(.serialized) struct MalformedInputTests {
    /// A request body and its Content-Type, with a name for messages.
    struct Upload {
        var name: String
        var contentType: String?
        var body: Data
        /// Broken at the HTTP or form level: must be refused at upload, never become a job.
        var mustBeRefused = false
    }

    static let boundary = "steno-malformed-corpus"

    /// A well-formed form with one file part whose bytes and part Content-Type are given.
    static func form(_ name: String, file: Data, partType: String = "application/octet-stream", filename: String = "audio.bin") -> Upload {
        var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\n".utf8)
        body += Data("Content-Type: \(partType)\r\n\r\n".utf8) + file + Data("\r\n--\(boundary)--\r\n".utf8)
        return Upload(name: name, contentType: "multipart/form-data; boundary=\(boundary)", body: body)
    }

    /// Three seconds of synthetic speech (espeak-ng), encoded by ffmpeg into each format under test.
    static func encodings(in directory: URL) throws -> [(format: String, data: Data)] {
        let speech = directory.appendingPathComponent("espeak.wav")
        try DecoderSandboxTests.run("espeak-ng", ["-w", speech.path, "The quick brown fox jumps over the lazy dog."])
        let formats: [(String, [String])] = [
            ("wav", ["-ar", "22050"]), ("mp3", []), ("opus", ["-c:a", "libopus"]), ("flac", []),
            ("m4a", ["-c:a", "aac"]), ("webm", ["-c:a", "libopus"]),
        ]
        return try formats.map { format, options in
            let file = directory.appendingPathComponent("speech.\(format)")
            try DecoderSandboxTests.run("ffmpeg", ["-v", "error", "-y", "-i", speech.path] + options + [file.path])
            return (format, try Data(contentsOf: file))
        }
    }

    /// Every byte at `stride` intervals past `start` inverted: deterministic damage to headers or payload.
    static func flipped(_ data: Data, from start: Int, stride: Int, through end: Int? = nil) -> Data {
        var bytes = [UInt8](data)
        for index in Swift.stride(from: start, to: min(end ?? bytes.count, bytes.count), by: stride) { bytes[index] ^= 0xFF }
        return Data(bytes)
    }

    static func le32(_ value: UInt32) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
    static func le16(_ value: UInt16) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }

    /// A PCM WAV header with the given fields, followed by `samples` bytes of silence.
    static func wav(channels: UInt16 = 1, rate: UInt32 = 16000, bits: UInt16 = 16, declared: UInt32, samples: Int) -> Data {
        let block = UInt32(channels) * UInt32(bits / 8)
        var data = Data("RIFF".utf8) + le32(declared &+ 36) + Data("WAVEfmt ".utf8) + le32(16)
        data += le16(1) + le16(channels) + le32(rate) + le32(rate &* block) + le16(UInt16(truncatingIfNeeded: block)) + le16(bits)
        return data + Data("data".utf8) + le32(declared) + Data(count: samples)
    }

    static func corpus(in directory: URL) throws -> [Upload] {
        var uploads: [Upload] = []
        for (format, data) in try encodings(in: directory) {
            uploads += [
                form("\(format): first half", file: data.prefix(data.count / 2)),
                form("\(format): first 64 bytes", file: data.prefix(64)),
                form("\(format): header bit-flipped", file: flipped(data, from: 0, stride: 3, through: 96)),
                form("\(format): payload bit-flipped", file: flipped(data, from: 200, stride: 61)),
                form("\(format): tail only", file: data.suffix(data.count / 3)),
            ]
        }
        let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
        uploads += [
            form("text", file: Data("This is a shopping list, not a recording.\n".utf8), partType: "text/plain"),
            form("json", file: Data(#"{"audio": false}"#.utf8), partType: "application/json"),
            form("random bytes", file: Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })),
            form("executable", file: try Data(contentsOf: URL(fileURLWithPath: "/bin/true"))),
            form("HLS playlist naming a local file", file: Data(playlist.utf8), filename: "list.m3u8"),
            { var upload = form("zero-length file", file: Data()); upload.mustBeRefused = true; return upload }(),
            form("WAV declaring 4 GB of samples", file: wav(declared: 0xFFFF_FF00, samples: 32000)),
            form("WAV declaring 65535 channels", file: wav(channels: 65535, declared: 64000, samples: 64000)),
            form("WAV declaring a 4 GHz rate", file: wav(rate: 0xFFFF_FFF0, declared: 32000, samples: 32000)),
            form("WAV declaring 0 bits per sample", file: wav(bits: 0, declared: 32000, samples: 32000)),
            form("WAV header only", file: wav(declared: 0, samples: 0).prefix(30)),
            form("audio labelled as image/png", file: wav(declared: 32000, samples: 32000), partType: "image/png"),
        ]
        // Wrong request content types and broken multipart bodies.
        let good = form("", file: wav(declared: 32000, samples: 32000)).body
        uploads += [
            Upload(name: "no Content-Type", contentType: nil, body: good, mustBeRefused: true),
            Upload(name: "JSON request", contentType: "application/json", body: Data(#"{"file": "AAAA"}"#.utf8), mustBeRefused: true),
            Upload(name: "raw audio request", contentType: "audio/wav", body: wav(declared: 32000, samples: 32000), mustBeRefused: true),
            Upload(name: "urlencoded request", contentType: "application/x-www-form-urlencoded", body: Data("file=abc".utf8), mustBeRefused: true),
            Upload(name: "multipart without boundary", contentType: "multipart/form-data", body: good, mustBeRefused: true),
            Upload(name: "multipart with another boundary", contentType: "multipart/form-data; boundary=other", body: good, mustBeRefused: true),
            Upload(name: "unterminated part", contentType: "multipart/form-data; boundary=\(boundary)", body: good.prefix(good.count - 40), mustBeRefused: true),
            Upload(name: "garbage body", contentType: "multipart/form-data; boundary=\(boundary)",
                   body: Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) }), mustBeRefused: true),
            Upload(name: "empty body", contentType: "multipart/form-data; boundary=\(boundary)", body: Data(), mustBeRefused: true),
            Upload(name: "part without headers", contentType: "multipart/form-data; boundary=\(boundary)",
                   body: Data("--\(boundary)\r\n\r\nRIFF....\r\n--\(boundary)--\r\n".utf8), mustBeRefused: true),
            Upload(name: "part with a broken header line", contentType: "multipart/form-data; boundary=\(boundary)",
                   body: Data("--\(boundary)\r\nContent-Disposition form-data name=file\r\n\r\nabc\r\n--\(boundary)--\r\n".utf8), mustBeRefused: true),
            Upload(name: "form without a file", contentType: "multipart/form-data; boundary=\(boundary)",
                   body: Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n--\(boundary)--\r\n".utf8), mustBeRefused: true),
        ]
        return uploads
    }

    @Test func everyMalformedInputGetsACleanAnswerAndTheServerSurvives() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.url.appendingPathComponent("data")
        configuration.modelDirectory = Fixtures.model
        configuration.vadModel = Fixtures.vadModel
        configuration.pollInterval = 0.05
        configuration.logLevel = .critical
        configuration.maxAudioSeconds = 60
        let transcriber = try WhisperTranscriber(
            modelDirectory: Fixtures.model, voiceActivityModel: Fixtures.vadModel, threads: nil, maxAudioSeconds: configuration.maxAudioSeconds)
        let service = try buildApplication(configuration: configuration, transcriber: transcriber)
        let uploads = try Self.corpus(in: directory.url)

        try await service.app.test(.live) { client in
            var accepted: [(name: String, id: String)] = []
            var refusals: [String: Int] = [:]
            for upload in uploads {
                var headers = HTTPFields()
                if let type = upload.contentType { headers[.contentType] = type }
                let response = try await client.execute(
                    uri: "/transcribe", method: .post, headers: headers, body: ByteBuffer(bytes: upload.body))
                if response.status == .accepted {
                    accepted.append((upload.name, try TestJSON.decode(Components.Schemas.JobCreated.self, response.body).jobId))
                    continue
                }
                // Refused: a client error (never 5xx) with the documented error body and no internal paths.
                #expect((400..<500).contains(response.status.code), "\(upload.name): \(response.status)")
                let body = String(buffer: response.body)
                let error = try? TestJSON.decode(Components.Schemas.ErrorResponse.self, response.body).error
                #expect(error != nil && !error!.code.isEmpty && !error!.message.isEmpty, "\(upload.name): \(body)")
                #expect(!body.contains(directory.url.path) && !body.contains("/tmp/"), "\(upload.name) leaks a path: \(body)")
                refusals[error?.code ?? "?", default: 0] += 1
            }
            // The request-level breakage must all have been refused at upload.
            for upload in uploads where upload.mustBeRefused {
                #expect(!accepted.contains { $0.name == upload.name }, "\(upload.name) was accepted")
            }

            var outcomes: [String: Int] = [:]
            for (name, id) in accepted {
                let job = try await client.wait(for: id, in: [.completed, .failed, .cancelled], store: service.store, timeout: 120)
                switch job.state {
                case .failed:
                    #expect(job.errorCode?.isEmpty == false && job.errorMessage?.isEmpty == false, "\(name)")
                    #expect(job.errorMessage?.contains(directory.url.path) != true, "\(name) leaks a path: \(job.errorMessage ?? "")")
                    #expect(job.attempts == 1, "\(name) was retried: \(job.errorCode ?? "")")
                    outcomes[job.errorCode ?? "?", default: 0] += 1
                case .completed:
                    outcomes["completed", default: 0] += 1
                default:
                    Issue.record("\(name) ended \(job.state)")
                }
            }
            // Non-audio must fail, not be "transcribed".
            for name in ["text", "json", "random bytes", "executable", "HLS playlist naming a local file"] {
                if let id = accepted.first(where: { $0.name == name })?.id {
                    #expect(try await service.store.job(id: UUID(uuidString: id)!)?.state == .failed, "\(name)")
                }
            }
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            print("malformed corpus: \(uploads.count) uploads; refused \(refusals.sorted { $0.key < $1.key }); jobs \(outcomes.sorted { $0.key < $1.key })")
        }
    }
}
