import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import StenoEngine
import StenoServer
import Testing

/// API keys, tenant isolation and per-tenant limits, through the real composition root and SQLite store.
@Suite struct TenancyTests {
    static let aliceKey = "steno_alice-key-0123456789abcdefghij"
    static let bobKey = "steno_bob-key-0123456789abcdefghijklm"
    let audio = Data("RIFF-pretend-wave-bytes".utf8)

    /// Alice's key is given in plaintext (environment form), Bob's as its digest (keys file form).
    static func withKeys(_ configuration: inout ServerConfiguration) {
        try! configuration.apiKeys.add(list: "alice=\(aliceKey)", source: "test")
        try! configuration.apiKeys.add(fileText: "# keys\n\n" + APIKeyRing.fileLine(tenant: "bob", key: bobKey) + "\n", source: "test")
    }

    static func auth(_ key: String, _ more: HTTPFields = [:]) -> HTTPFields {
        var fields = more
        fields[.authorization] = "Bearer \(key)"
        return fields
    }

    @Test func keysIsolateTenants() async throws {
        let server = try TestServer { Self.withKeys(&$0) }
        try await server.service.app.test(.router) { client in
            // No key, a wrong key, another scheme: 401 with a challenge.
            for headers: HTTPFields in [[:], [.authorization: "Bearer steno_not-a-key-0123456789abcdef"], [.authorization: "Basic YWxpY2U6eA=="]] {
                let response = try await client.execute(uri: "/transcribe", method: .get, headers: headers)
                #expect(response.status == .unauthorized)
                #expect(try client.errorCode(response) == "unauthorized")
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            }
            let upload = MultipartForm(file: audio)
            let anonymous = try await client.execute(uri: "/transcribe", method: .post, headers: [.contentType: upload.contentType], body: upload.body)
            #expect(anonymous.status == .unauthorized)
            // Probes and the document stay open; metrics need a key.
            for path in ["/healthz", "/readyz", "/openapi.yaml", "/docs"] {
                #expect(try await client.execute(uri: path, method: .get).status == .ok, "\(path)")
            }
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: Self.auth(Self.bobKey)).status == .ok)

            // One Idempotency-Key, two tenants: two jobs.
            let key = HTTPField.Name("Idempotency-Key")!
            func submit(_ apiKey: String) async throws -> String {
                let form = MultipartForm(file: audio)
                let response = try await client.execute(
                    uri: "/transcribe", method: .post,
                    headers: Self.auth(apiKey, [.contentType: form.contentType, key: "same-key"]), body: form.body)
                #expect(response.status == .accepted, "\(String(buffer: response.body))")
                return try TestJSON.decode(Components.Schemas.JobCreated.self, response.body).jobId
            }
            let alices = try await submit(Self.aliceKey)
            let bobs = try await submit(Self.bobKey)
            #expect(alices != bobs)
            #expect(try await submit(Self.aliceKey) == alices)
            _ = try await client.wait(for: alices, in: [.completed], store: server.service.store)

            // Bob cannot read Alice's job in any format, delete it, or see it listed.
            for format in ["", "?format=json", "?format=text", "?format=srt", "?format=vtt"] {
                let response = try await client.execute(uri: "/transcribe/\(alices)\(format)", method: .get, headers: Self.auth(Self.bobKey))
                #expect(response.status == .notFound, "\(format)")
                #expect(try client.errorCode(response) == "job_not_found")
            }
            let deletion = try await client.execute(uri: "/transcribe/\(alices)", method: .delete, headers: Self.auth(Self.bobKey))
            #expect(deletion.status == .notFound)
            let bobsList = try await client.execute(uri: "/transcribe?limit=200", method: .get, headers: Self.auth(Self.bobKey))
            #expect(try TestJSON.decode(Components.Schemas.JobList.self, bobsList.body).jobs.map(\.jobId) == [bobs])

            // Alice still has it, untouched, and sees only her own.
            let alicesList = try await client.execute(uri: "/transcribe", method: .get, headers: Self.auth(Self.aliceKey))
            #expect(try TestJSON.decode(Components.Schemas.JobList.self, alicesList.body).jobs.map(\.jobId) == [alices])
            let text = try await client.execute(uri: "/transcribe/\(alices)?format=text", method: .get, headers: Self.auth(Self.aliceKey))
            #expect(text.status == .ok)
            #expect(String(buffer: text.body).hasPrefix("transcript of"))
            #expect(try await client.execute(uri: "/transcribe/\(bobs)", method: .get, headers: Self.auth(Self.aliceKey)).status == .notFound)
            #expect(try await client.execute(uri: "/transcribe/\(bobs)", method: .delete, headers: Self.auth(Self.bobKey)).status == .noContent)
        }
    }

    @Test func keysNeverReachTheLogs() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.url
        configuration.logLevel = .trace
        configuration.pollInterval = 0.05
        Self.withKeys(&configuration)
        let lines = CapturedLog()
        let logger = Logger(label: "steno") { _ in lines.handler() }
        let service = try buildApplication(configuration: configuration, transcriber: ScriptedTranscriber(), logger: logger)
        let wrongKey = "steno_wrong-key-but-long-enough-0123"
        try await service.app.test(.live) { client in
            let form = MultipartForm(file: Data("GARBAGE".utf8))
            for key in [Self.aliceKey, Self.bobKey, wrongKey] {
                _ = try await client.execute(uri: "/transcribe", method: .post, headers: Self.auth(key, [.contentType: form.contentType]), body: form.body)
                _ = try await client.execute(uri: "/transcribe/not-a-uuid", method: .get, headers: Self.auth(key))
                _ = try await client.execute(uri: "/nowhere", method: .get, headers: Self.auth(key))
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        let text = lines.text
        #expect(text.contains("API keys required"), "the capture works")
        for key in [Self.aliceKey, Self.bobKey, wrongKey] { #expect(!text.contains(key)) }
        // Nor do configuration errors quote a key.
        var ring = APIKeyRing()
        #expect(throws: ConfigurationError.self) { try ring.add(fileText: "alice short-secret", source: "keys") }
        do { try ring.add(fileText: "alice short-secret", source: "keys") } catch { #expect(!"\(error)".contains("short-secret")) }
    }

    @Test func rateLimitAnswers429WithRetryAfter() async throws {
        let server = try TestServer {
            Self.withKeys(&$0)
            $0.rateLimit = RateLimit(parsing: "3/m")
        }
        try await server.service.app.test(.router) { client in
            for _ in 0..<3 {
                #expect(try await client.execute(uri: "/transcribe", method: .get, headers: Self.auth(Self.aliceKey)).status == .ok)
            }
            let limited = try await client.execute(uri: "/transcribe", method: .get, headers: Self.auth(Self.aliceKey))
            #expect(limited.status == .tooManyRequests)
            #expect(try client.errorCode(limited) == "rate_limited")
            let wait = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect((1...20).contains(wait))
            // Another tenant has its own bucket; probes are not counted.
            #expect(try await client.execute(uri: "/transcribe", method: .get, headers: Self.auth(Self.bobKey)).status == .ok)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test func concurrentJobLimitPerTenant() async throws {
        // Transcriptions wait for the test, so no job finishes during the burst and the count is exact.
        let directory = try TemporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.url
        configuration.pollInterval = 0.05
        configuration.heartbeatInterval = 0.05
        configuration.shutdownGrace = 0.2
        configuration.logLevel = .warning
        configuration.maxJobsPerKey = 2
        Self.withKeys(&configuration)
        let transcriber = HeldTranscriber()
        let service = try buildApplication(configuration: configuration, transcriber: transcriber)
        defer { transcriber.release() }
        try await service.app.test(.router) { client in
            // Ten uploads at once from one tenant: exactly its limit of jobs is created.
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for index in 0..<10 {
                    group.addTask {
                        let form = MultipartForm(file: Data("recording \(index)".utf8))
                        let response = try await client.execute(
                            uri: "/transcribe", method: .post, headers: Self.auth(Self.aliceKey, [.contentType: form.contentType]), body: form.body)
                        return (response.status, response.headers[.retryAfter])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0.0 == .accepted }.count == 2)
            #expect(statuses.filter { $0.0 == .tooManyRequests }.count == 8)
            #expect(statuses.filter { $0.0 == .tooManyRequests }.allSatisfy { $0.1 != nil })
            let form = MultipartForm(file: audio)
            let refused = try await client.execute(
                uri: "/transcribe", method: .post, headers: Self.auth(Self.aliceKey, [.contentType: form.contentType]), body: form.body)
            #expect(try client.errorCode(refused) == "too_many_jobs")
            // Bob is not held back by Alice's jobs.
            let bobs = try await client.execute(
                uri: "/transcribe", method: .post, headers: Self.auth(Self.bobKey, [.contentType: form.contentType]), body: form.body)
            #expect(bobs.status == .accepted)
            // Once Alice cancels one, she may submit again.
            let list = try await client.execute(uri: "/transcribe", method: .get, headers: Self.auth(Self.aliceKey))
            let first = try #require(try TestJSON.decode(Components.Schemas.JobList.self, list.body).jobs.first)
            #expect(try await client.execute(uri: "/transcribe/\(first.jobId)", method: .delete, headers: Self.auth(Self.aliceKey)).status == .noContent)
            let again = try await client.execute(
                uri: "/transcribe", method: .post, headers: Self.auth(Self.aliceKey, [.contentType: form.contentType]), body: form.body)
            #expect(again.status == .accepted)
            transcriber.release()
        }
    }

    @Test func fullQueueAnswers503WithRetryAfter() async throws {
        let server = try TestServer { $0.maxQueuedJobs = 0 }
        try await server.service.app.test(.router) { client in
            let response = try await client.upload(MultipartForm(file: audio))
            #expect(response.status == .serviceUnavailable)
            #expect(try client.errorCode(response) == "queue_full")
            #expect(response.headers[.retryAfter].flatMap(Int.init) != nil)
        }
    }

    @Test func publicAddressNeedsKeysOrOpen() async throws {
        let directory = try TemporaryDirectory()
        let base = ["STENO_DATA_DIR": directory.url.path]
        for host in ["127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"] {
            #expect(throws: Never.self) { try ServerConfiguration(settings: base.merging(["STENO_HOST": host]) { $1 }).checkExposure() }
        }
        let exposed = try ServerConfiguration(settings: base.merging(["STENO_HOST": "0.0.0.0"]) { $1 })
        #expect(throws: ConfigurationError.self) { try exposed.checkExposure() }
        #expect(throws: ConfigurationError.self) { _ = try buildApplication(configuration: exposed, transcriber: ScriptedTranscriber()) }
        let keyed = try ServerConfiguration(settings: base.merging(["STENO_HOST": "0.0.0.0", "STENO_API_KEYS": "alice=\(Self.aliceKey)"]) { $1 })
        #expect(throws: Never.self) { try keyed.checkExposure() }

        // Told to run open, it starts on every address and answers.
        var open = try ServerConfiguration(settings: base.merging(["STENO_HOST": "0.0.0.0", "STENO_OPEN": "true"]) { $1 })
        open.port = try RawConnection.freePort()
        open.logLevel = .warning
        let service = try buildApplication(configuration: open, transcriber: ScriptedTranscriber())
        // Stopped the way SIGTERM stops it (the workers end on graceful shutdown, not on cancellation).
        let services = ServiceGroup(configuration: .init(services: [service.app], gracefulShutdownSignals: [], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var answer: String?
            for _ in 0..<100 where answer == nil {
                try await Task.sleep(for: .milliseconds(50))
                guard let connection = try? RawConnection(port: open.port) else { continue }
                connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                answer = await connection.readUntilClosed(timeout: 5)
            }
            #expect(answer?.hasPrefix("HTTP/1.1 200") == true)
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    @Test func stalledUploadIsCutOff() async throws {
        let server = try TestServer {
            $0.uploadStallTimeout = 0.5
            $0.idleTimeout = 30
        }
        try await server.service.app.test(.live) { client in
            let port = try #require(client.port)
            let connection = try RawConnection(port: port)
            let boundary = "stall"
            connection.send("""
                POST /transcribe HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=\(boundary)\r\n\
                Content-Length: 1000000\r\n\r\n--\(boundary)\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n
                """ + String(repeating: "x", count: 20_000))
            let started = Date()
            let answer = try #require(await connection.readUntilClosed(timeout: 10), "the server kept the stalled upload open")
            #expect(Date().timeIntervalSince(started) < 5)
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
            #expect(answer.contains("upload_stalled"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: server.service.fileBlobs.temporaryDirectory.path)
            #expect(leftovers.isEmpty)
            #expect(try await client.store(server).isEmpty)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test func slowHeadersAreCutOff() async throws {
        let server = try TestServer { $0.idleTimeout = 0.5 }
        try await server.service.app.test(.live) { client in
            let port = try #require(client.port)
            let connection = try RawConnection(port: port)
            connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            let started = Date()
            // One byte every 100 ms: the head never completes, and the connection is closed.
            var open = true
            for _ in 0..<50 where open {
                try await Task.sleep(for: .milliseconds(100))
                open = connection.send("a")
            }
            let answer = await connection.readUntilClosed(timeout: 5)
            #expect(answer != nil)
            #expect(Date().timeIntervalSince(started) < 4)
            // The server still answers a prompt client (on a new connection: the test client's own idle one
            // was closed by the same timeout).
            let prompt = try RawConnection(port: port)
            prompt.send("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            #expect(await prompt.readUntilClosed(timeout: 5)?.hasPrefix("HTTP/1.1 200") == true)
        }
    }
}

extension TestClientProtocol {
    /// Every job in the store, of any tenant.
    fileprivate func store(_ server: TestServer) async throws -> [Job] {
        try await server.service.store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 100)
    }
}

/// An engine whose transcriptions wait until the test releases them (or the job is cancelled).
final class HeldTranscriber: Transcriber, @unchecked Sendable {
    let models = ModelCatalog.single(languages: ["en"])
    private let released = NSLock()
    private var isReleased = false

    func release() { released.withLock { isReleased = true } }

    func transcribe(
        file: URL, model: String, options: TranscriptionOptions, progress: @escaping TranscriptionProgress,
        isCancelled: @escaping CancellationCheck, text: @escaping TranscriptionText
    ) throws -> TranscriptionResult {
        let deadline = Date().addingTimeInterval(30)
        while !released.withLock({ isReleased }), Date() < deadline {
            if isCancelled() { throw EngineError.cancelled }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return TranscriptionResult(text: "held", language: "en", languageProbability: 1, duration: 1, segments: [])
    }
}

/// Log lines kept in memory, message and metadata, to search for what must never be logged.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var text: String { lock.withLock { lines.joined(separator: "\n") } }

    func handler() -> some LogHandler { Handler(log: self) }

    fileprivate func append(_ line: String) { lock.withLock { lines.append(line) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let all = self.metadata.merging(metadata ?? [:]) { $1 }
            log.append("\(level) \(message) \(all.map { "\($0)=\($1)" }.sorted().joined(separator: " "))")
        }
    }
}
