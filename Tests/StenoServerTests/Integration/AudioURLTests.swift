import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StenoServer
import Testing

/// `audio_url`: the worker fetches the recording from a local file server (allowed by the test's allowlist)
/// and the job completes on exactly those bytes; a transient 503 is retried; a private address without the
/// allowlist, a redirect to a private address, an oversized and a slow source, a missing file and a host that
/// does not exist each fail the job with their code. Submission checks only the syntax, and a file and a URL together are refused.
@Suite struct AudioURLTests {
    /// A recording served by the source.
    static let recording = try! Data(contentsOf: Fixtures.recording("0920"))

    /// The file server: `/audio.wav`, `/flaky.wav` (503 once, then the file), `/moved` (302 to `/audio.wav`),
    /// `/to-private` (302 to a private address), `/slow.wav` (a few bytes, then nothing for 10 s), `/missing`.
    final class Source: @unchecked Sendable {
        private let lock = NSLock()
        private var flakyCalls = 0
        private(set) var port = 0

        func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

        func router() -> Router<BasicRequestContext> {
            let router = Router()
            router.get("audio.wav") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: AudioURLTests.recording))) }
            router.get("flaky.wav") { _, _ in
                let call = self.lock.withLock { self.flakyCalls += 1; return self.flakyCalls }
                if call == 1 { return Response(status: .serviceUnavailable) }
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: AudioURLTests.recording)))
            }
            router.get("moved") { _, _ in Response(status: .found, headers: [.location: "/audio.wav"]) }
            router.get("to-private") { _, _ in Response(status: .found, headers: [.location: "http://192.168.77.1/audio.wav"]) }
            router.get("slow.wav") { _, _ in
                Response(status: .ok, body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "RIFF"))
                    try await Task.sleep(for: .seconds(10))
                    try await writer.finish(nil)
                })
            }
            return router
        }

        static func run<T: Sendable>(_ body: @Sendable (Source) async throws -> T) async throws -> T {
            let source = Source()
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let app = Application(
                router: source.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in
                    continuation.yield(channel.localAddress?.port ?? 0)
                    continuation.finish()
                },
                logger: WebhookTesting.quiet)
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await app.run()
                    return nil
                }
                for await port in ports { source.port = port }
                let result = try await body(source)
                group.cancelAll()
                return result
            }
        }
    }

    func finished(_ client: some TestClientProtocol, _ server: TestServer, url: String) async throws -> Job {
        let response = try await client.upload(MultipartForm(fields: ["audio_url": url]))
        #expect(response.status == .accepted, "\(String(buffer: response.body))")
        let id = try TestJSON.decode(Components.Schemas.JobCreated.self, response.body).jobId
        return try await client.wait(for: id, in: [.completed, .failed], store: server.service.store, timeout: 30)
    }

    @Test func theWorkerFetchesTheRecording() async throws {
        try await Source.run { source in
            let server = try TestServer {
                $0.audioURLAllow = ["127.0.0.1"]
                // The slow source sends four bytes, then nothing: the stall limit ends it (the whole-download
                // limit stays generous, for the retried source on a loaded machine).
                $0.uploadStallTimeout = 1
                $0.audioURLTimeout = 30
                $0.maxUploadBytes = 1 << 20
            }
            try await server.service.app.test(.live) { client in
                for path in ["/audio.wav", "/flaky.wav", "/moved"] {
                    let job = try await finished(client, server, url: source.url(path))
                    #expect(job.state == .completed, "\(path): \(job.errorCode ?? "") \(job.errorMessage ?? "")")
                    // The engine read exactly the source's bytes.
                    let status = try await client.status(job.id.uuidString.lowercased())
                    #expect(status.result?.text == "transcript of \(Self.recording.count) bytes", "\(path)")
                }
                let expectations: [(String, String)] = [
                    ("/to-private", "download_refused"), ("/slow.wav", "download_timeout"), ("/missing", "download_failed"),
                ]
                for (path, code) in expectations {
                    let job = try await finished(client, server, url: source.url(path))
                    #expect(job.state == .failed && job.errorCode == code, "\(path): \(job.errorCode ?? "") \(job.errorMessage ?? "")")
                }
                // A name that does not exist (RFC 6761's .invalid) is a failed fetch, not a refusal.
                let nowhere = try await finished(client, server, url: "http://steno-test.invalid/a.wav")
                #expect(nowhere.errorCode == "download_failed", "\(nowhere.errorMessage ?? "")")
                // The URL is never shown (its query may be a signature), nor put in a failure message.
                let failed = try await finished(client, server, url: source.url("/missing?signature=s3cr3t"))
                #expect(!(failed.errorMessage ?? "").contains("s3cr3t"))
                let shown = String(buffer: try await client.execute(uri: "/transcribe/\(failed.id.uuidString.lowercased())", method: .get).body)
                #expect(!shown.contains("s3cr3t"))
            }
        }
    }

    @Test func limitsAndTheAllowlistApply() async throws {
        try await Source.run { source in
            // No allowlist: the loopback source is refused by the worker, not at submission.
            let closed = try TestServer()
            try await closed.service.app.test(.live) { client in
                let job = try await finished(client, closed, url: source.url("/audio.wav"))
                #expect(job.errorCode == "download_refused", "\(job.errorMessage ?? "")")
                #expect(job.errorMessage?.contains("loopback") == true)
            }
            // A limit below the recording's size.
            let small = try TestServer {
                $0.audioURLAllow = ["127.0.0.0/8"]
                $0.maxUploadBytes = 1000
            }
            try await small.service.app.test(.live) { client in
                let job = try await finished(client, small, url: source.url("/audio.wav"))
                #expect(job.errorCode == "download_too_large", "\(job.errorMessage ?? "")")
            }
        }
    }

    @Test func submissionChecksTheForm() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let both = try await client.upload(MultipartForm(file: Data("x".utf8), fields: ["audio_url": "https://example.com/a.wav"]))
            #expect(both.status == .badRequest)
            #expect(try client.errorCode(both) == "invalid_request")
            for bad in ["ftp://example.com/a.wav", "https://user:pw@example.com/a.wav", "not a url"] {
                let response = try await client.upload(MultipartForm(fields: ["audio_url": bad]))
                #expect(response.status == .badRequest, "\(bad)")
                #expect(try client.errorCode(response) == "invalid_audio_url", "\(bad)")
            }
            let neither = try await client.upload(MultipartForm(fields: ["language": "en"]))
            #expect(try client.errorCode(neither) == "missing_file")
        }
    }
}
