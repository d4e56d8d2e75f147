import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StenoServer
import Testing

/// The OpenAI-style routes over the job queue, with the scripted engine: answer shapes and the granularity
/// table, OpenAI's error body, a job per request that is deleted once answered, a client that disconnects
/// cancelling its job, and a wait that runs out answering 504 while the job goes on. (The real `openai` SDK
/// against a real model is `scripts/openai-sdk-test.sh`.)
@Suite struct OpenAIAPITests {
    let audio = Data("RIFF fake audio".utf8)

    func post(_ client: some TestClientProtocol, _ path: String = "/v1/audio/transcriptions", file: Data?, fields: [(String, String)]) async throws -> TestResponse {
        var form = MultipartForm(file: file)
        // Repeated fields (`timestamp_granularities[]`) are kept in order.
        form.parts.insert(contentsOf: fields.map { ($0.0, nil, Data($0.1.utf8)) }, at: 0)
        return try await client.execute(uri: path, method: .post, headers: [.contentType: form.contentType], body: form.body)
    }

    func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func answersInOpenAIShapes() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let plain = try await post(client, file: audio, fields: [("model", "whisper-1")])
            #expect(plain.status == .ok, "\(String(buffer: plain.body))")
            #expect(try json(plain)["text"] as? String == "transcript of \(audio.count) bytes")
            // Watching for a disconnect takes the connection over: the answer says it ends.
            #expect(plain.headers[.connection] == "close")

            let text = try await post(client, file: audio, fields: [("response_format", "text")])
            #expect(String(buffer: text.body) == "transcript of \(audio.count) bytes\n")
            let srt = try await post(client, file: audio, fields: [("response_format", "srt")])
            #expect(String(buffer: srt.body).hasPrefix("1\n00:00:00,000 --> 00:00:02,500\n"))
            let vtt = try await post(client, file: audio, fields: [("response_format", "vtt")])
            #expect(String(buffer: vtt.body).hasPrefix("WEBVTT"))

            // The granularity table: none or segment → segments; word → words and segments null; both → both.
            let cases: [([String], Bool, Bool)] = [([], true, false), (["segment"], true, false), (["word"], false, true), (["word", "segment"], true, true)]
            for (granularities, segments, words) in cases {
                let response = try await post(
                    client, file: audio, fields: [("response_format", "verbose_json")] + granularities.map { ("timestamp_granularities[]", $0) })
                let body = try json(response)
                #expect(body["task"] as? String == "transcribe")
                #expect(body["language"] as? String == "english")
                #expect(body["duration"] as? Double == 2.5)
                #expect(body.keys.contains("segments"), "segments is null, not absent")
                let segmentList = body["segments"] as? [[String: Any]]
                #expect((segmentList != nil) == segments, "\(granularities)")
                if let first = segmentList?.first {
                    #expect(Set(first.keys) == ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"])
                }
                let wordList = body["words"] as? [[String: Any]]
                #expect((wordList != nil) == words, "\(granularities)")
                if let first = wordList?.first { #expect(first["word"] as? String == "transcript") }
                // Words were asked of the engine only when they are wanted.
                #expect(server.transcriber.latestOptions?.wordTimestamps == words)
            }

            // The request's job is gone once answered.
            let jobs = try await server.service.store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 100)
            #expect(jobs.count == 8)
            #expect(jobs.allSatisfy { $0.deletionReason == .deleted })

            // Translation runs the translate task.
            let multilingual = try TestServer(languages: ["en", "es"])
            try await multilingual.service.app.test(.router) { client in
                let translated = try await post(client, "/v1/audio/translations", file: audio, fields: [("response_format", "verbose_json")])
                #expect(try json(translated)["task"] as? String == "translate")
                #expect(multilingual.transcriber.latestOptions?.task == .translate)
            }
        }
    }

    @Test func errorsHaveOpenAIsBody() async throws {
        let server = try TestServer(models: try ModelCatalog(entries: [.init(name: "tiny.en", languages: ["en"]), .init(name: "base", languages: ["en", "es"])]))
        try await server.service.app.test(.router) { client in
            func error(_ response: TestResponse) throws -> [String: Any] {
                try #require(try json(response)["error"] as? [String: Any])
            }
            let noFile = try await post(client, file: nil, fields: [("model", "whisper-1")])
            #expect(noFile.status == .badRequest)
            let detail = try error(noFile)
            #expect(detail["type"] as? String == "invalid_request_error")
            #expect(detail["param"] as? String == "file")
            #expect(detail["code"] as? String == "missing_file")
            #expect(detail.keys.contains("message"))

            let unknown = try await post(client, file: audio, fields: [("model", "large-v9")])
            #expect(unknown.status == .notFound)
            #expect(try error(unknown)["code"] as? String == "model_not_found")

            // The job form's 422s are 400s here.
            let language = try await post(client, file: audio, fields: [("language", "es")])
            #expect(language.status == .badRequest)
            #expect(try error(language)["param"] as? String == "language")
            let wordsInJSON = try await post(client, file: audio, fields: [("timestamp_granularities[]", "word")])
            #expect(wordsInJSON.status == .badRequest)
            let format = try await post(client, file: audio, fields: [("response_format", "docx")])
            #expect(try error(format)["param"] as? String == "response_format")
            let temperature = try await post(client, file: audio, fields: [("temperature", "1.5")])
            #expect(try error(temperature)["param"] as? String == "temperature")
            let englishOnly = try await post(client, "/v1/audio/translations", file: audio, fields: [])
            #expect(englishOnly.status == .badRequest)

            // A failed job is the client's fault here: 400 with the job's code, not to be retried.
            let garbage = try await post(client, file: Data("GARBAGE".utf8), fields: [])
            #expect(garbage.status == .badRequest)
            #expect(try error(garbage)["code"] as? String == "undecodable_audio")
            #expect(garbage.headers[HTTPField.Name("x-should-retry")!] == "false")

            // The model field routes the job; Steno's own routes keep Steno's error body.
            let routed = try await post(client, file: audio, fields: [("model", "base"), ("language", "es")])
            #expect(routed.status == .ok)
            #expect(server.transcriber.latestModel == "base")
            let steno = try await client.execute(uri: "/transcribe/nope", method: .get)
            #expect(try client.errorCode(steno) == "invalid_job_id")

            let models = try json(try await client.execute(uri: "/v1/models", method: .get))
            #expect((models["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["tiny.en", "base", "whisper-1"])
            #expect(try await client.execute(uri: "/v1/models/base", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v1/models/nope", method: .get).status == .notFound)
        }
    }

    /// `stream=true`: a delta per window as the worker decodes it, then `done` with the whole text.
    @Test func streamsTheTextAsWindowsAreDecoded() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let response = try await post(client, file: Data("SLOW audio".utf8), fields: [("stream", "true"), ("model", "whisper-1")])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let events = String(buffer: response.body).components(separatedBy: "\n\n")
                .filter { $0.hasPrefix("data: ") }
                .map { try! JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as! [String: Any] }
            let deltas = events.filter { $0["type"] as? String == "transcript.text.delta" }.compactMap { $0["delta"] as? String }
            // The scripted engine reports five windows of text over two seconds, read as they come (two windows
            // may share an event on a busy machine); the result's own text follows.
            #expect(deltas.count >= 2, "\(deltas)")
            #expect(deltas.joined().hasPrefix("part 1. part 2. part 3. part 4. part 5."), "\(deltas)")
            let done = try #require(events.last)
            #expect(done["type"] as? String == "transcript.text.done")
            #expect(done["text"] as? String == "transcript of 10 bytes")

            let subtitles = try await post(client, file: audio, fields: [("stream", "true"), ("response_format", "srt")])
            #expect(subtitles.status == .badRequest)
            let failing = try await post(client, file: Data("GARBAGE".utf8), fields: [("stream", "true")])
            let failure = String(buffer: failing.body)
            #expect(failure.contains("\"code\":\"undecodable_audio\""), "\(failure)")
        }
    }

    @Test func aWrongKeyIsInvalidAPIKey() async throws {
        let server = try TestServer { try! $0.apiKeys.add(list: "alice=\(TenancyTests.aliceKey)", source: "test") }
        try await server.service.app.test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sk-wrong"])
            #expect(response.status == .unauthorized)
            let detail = try #require(try json(response)["error"] as? [String: Any])
            #expect(detail["code"] as? String == "invalid_api_key")
            #expect(try await client.execute(
                uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(TenancyTests.aliceKey)"]).status == .ok)
        }
    }

    @Test func aClientThatDisconnectsCancelsItsJob() async throws {
        let server = try TestServer(clock: ManualClock())
        try await server.service.app.test(.live) { client in
            let port = try #require(client.port)
            let connection = try RawConnection(port: port)
            let form = MultipartForm(file: Data("HANG audio".utf8))
            var request = "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\nContent-Type: \(form.contentType)\r\n"
            request += "Content-Length: \(form.body.readableBytes)\r\n\r\n" + String(buffer: form.body)
            connection.send(request)
            let job = try await waitForJob(server, in: [.processing])
            connection.shutDown()
            let cancelled = try await client.wait(for: job.id.uuidString, in: [.cancelled], store: server.service.store, timeout: 20)
            #expect(cancelled.state == .cancelled)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }

    @Test func aWaitThatRunsOutAnswers504AndTheJobGoesOn() async throws {
        let server = try TestServer { $0.openAIWait = 0.3 }
        try await server.service.app.test(.router) { client in
            let response = try await post(client, file: Data("SLOW audio".utf8), fields: [])
            #expect(response.status == .gatewayTimeout)
            #expect(response.headers[HTTPField.Name("x-should-retry")!] == "false")
            let detail = try #require(try json(response)["error"] as? [String: Any])
            #expect(detail["code"] as? String == "timeout")
            let job = try await waitForJob(server, in: [.pending, .processing, .completed])
            #expect((detail["message"] as? String)?.contains(job.id.uuidString.lowercased()) == true)
            let done = try await client.wait(for: job.id.uuidString, in: [.completed], store: server.service.store, timeout: 20)
            #expect(done.resultPath != nil)
        }
    }

    private func waitForJob(_ server: TestServer, in states: Set<JobState>) async throws -> Job {
        for _ in 0..<500 {
            let jobs = try await server.service.store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 10)
            if let job = jobs.first(where: { states.contains($0.state) }) { return job }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }
}
