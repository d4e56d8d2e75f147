import Foundation
import HTTPTypes
import Hummingbird
import Logging
import StenoEngine

/// OpenAI's audio API over the job queue: `POST /v1/audio/transcriptions` and `/v1/audio/translations` take
/// OpenAI's form, make a job of it exactly as `POST /transcribe` does (keys, tenants, limits, the durable
/// queue, any node's workers), wait for it and answer in OpenAI's shape; `GET /v1/models` lists the models.
/// Any OpenAI SDK works by pointing its base URL at `…/v1`.
///
/// The request waits up to `settings.wait`. A client that disconnects cancels its job; a wait that runs out
/// answers `504` with the job's id (the job goes on and its result stays at `GET /transcribe/{id}`) and
/// `x-should-retry: false`, so the SDK does not submit the recording again. Once answered, the job's audio
/// and result are deleted at once: the client has its transcript.
struct OpenAIRoutes: Sendable {
    struct Settings: Sendable {
        /// Longest wait for a transcription before `504`.
        var wait: TimeInterval
    }

    let uploads: UploadController
    let models: ModelCatalog
    let settings: Settings
    /// The growing text of the jobs this node transcribes, for `stream=true`.
    let live: LiveTranscripts
    let logger: Logger
    /// `created` of the model objects: when this server started.
    let started = Int(Date().timeIntervalSince1970)

    private var jobs: JobService { uploads.jobs }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post(RouterPath(Route.openAITranscriptions.template)) { request, _ in try await self.run(request, task: .transcribe) }
        router.post(RouterPath(Route.openAITranslations.template)) { request, _ in try await self.run(request, task: .translate) }
        router.get(RouterPath(Route.openAIModels.template)) { _, _ in try OpenAIResponses.modelList(models, created: started) }
        router.get(RouterPath(Route.openAIModel.template)) { _, context in
            let name = context.parameters.get("model") ?? ""
            guard let model = OpenAIResponses.modelObjects(models, created: started).first(where: { $0.id == name }) else {
                throw APIError(.notFound, code: "model_not_found", param: "model",
                               message: "model '\(name)' is not served here; models: \(models.entries.map(\.name).joined(separator: ", "))")
            }
            return try OpenAIResponses.json(model)
        }
    }

    private func run(_ request: Request, task: WhisperTask) async throws -> Response {
        // The whole exchange runs under the connection's watch: when the client goes away, this task is
        // cancelled, and so is its job. Watching takes over the connection's inbound stream, so the connection
        // ends with this answer: every answer says so (`Connection: close`), and the client opens a new one.
        do {
            var response = try await request.body.consumeWithCancellationOnInboundClose { body in
                try await self.transcribe(request, body: body, task: task)
            }
            response.headers[.connection] = "close"
            return response
        } catch {
            var answer = (error as? APIError) ?? ErrorMap.answer(for: error, logger: logger, "request", metadata: ["path": "\(request.uri.path)"])
            answer.headers[.connection] = "close"
            throw answer
        }
    }

    private func transcribe(_ request: Request, body: RequestBody, task: WhisperTask) async throws -> Response {
        var parsed: OpenAIRequest?
        let job = try await uploads.receiveJob(request, body: body, honouringIdempotencyKey: false) { fields in
            let openAI = try OpenAIRequest(fields, task: task, models: models)
            parsed = openAI
            return .init(options: openAI.options)
        }
        // `receiveJob` calls `describe` for every new job (no idempotency replay here).
        guard let parsed else { throw APIError(.internalServerError, code: "internal_error", message: "the form was not read") }
        if parsed.stream { return streamed(job) }
        let finished: Job?
        do {
            finished = try await jobs.waitUntilFinished(id: job.id, tenant: job.tenant, timeout: settings.wait)
        } catch is CancellationError {
            await abandon(job)
            // Nobody is there to read it; the status only names what happened in the access log.
            return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"))
        }
        return try await answer(job: job, finished: finished, request: parsed, task: task)
    }

    private func answer(job: Job, finished: Job?, request: OpenAIRequest, task: WhisperTask) async throws -> Response {
        let id = job.id.uuidString.lowercased()
        guard let finished else {
            throw APIError(.gatewayTimeout, code: "timeout",
                           message: "the transcription did not finish within \(Int(settings.wait)) s; it goes on as job \(id): GET \(Route.jobPath(id)) has its status and result",
                           headers: [HTTPField.Name("x-should-retry")!: "false"])
        }
        switch finished.state {
        case .completed:
            guard case .result(_, let result) = try await jobs.retrieve(finished) else {
                throw APIError(.internalServerError, code: "result_deleted", message: "job \(id)'s result was deleted before it could be sent")
            }
            let response = try OpenAIResponses.response(result, task: task, request: request)
            _ = try? await jobs.remove(finished)
            return response
        case .failed:
            let code = finished.errorCode ?? "transcription_failed"
            // The workers already retried transient failures: a retry of the request would fail alike.
            let status: HTTPResponse.Status = Self.clientFaults.contains(code) ? .badRequest : .internalServerError
            _ = try? await jobs.remove(finished)
            throw APIError(status, code: code, param: status == .badRequest ? "file" : nil,
                           message: finished.errorMessage ?? "the transcription failed",
                           headers: [HTTPField.Name("x-should-retry")!: "false"])
        default:
            throw APIError(.badRequest, code: "job_cancelled", message: "job \(id) was cancelled before it finished")
        }
    }

    /// `stream=true`: OpenAI's server-sent events, `transcript.text.delta` for each window's text as this node's
    /// worker decodes it (a job running on another node gives its text in one delta when it completes), then
    /// `transcript.text.done` with the whole text. A failure is an event with OpenAI's error body. A comment
    /// line every second finds out whether the client is still there: when it is not, its job is cancelled.
    private func streamed(_ job: Job) -> Response {
        let routes = self
        let body = ResponseBody { writer in
            var sent = ""
            let deadline = ContinuousClock.now + .milliseconds(Int64(routes.settings.wait * 1000))
            var lastPing = ContinuousClock.now
            func event(_ value: any Encodable) async throws {
                let data = try OpenAIResponses.encoder.encode(value)
                try await writer.write(ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n"))
            }
            do {
                while true {
                    let current = try await routes.jobs.store.job(id: job.id, tenant: job.tenant)
                    if let text = routes.live.text(of: job.id), text.count > sent.count, text.hasPrefix(sent) {
                        let delta = String(text.dropFirst(sent.count))
                        // The first window's text starts with Whisper's space; the transcript does not.
                        try await event(OpenAIResponses.Delta(delta: sent.isEmpty ? String(delta.drop { $0 == " " }) : delta))
                        sent = text
                    }
                    guard let current else { break }
                    if current.state.isTerminal {
                        try await routes.finishStream(current, sent: sent, event: event)
                        break
                    }
                    if ContinuousClock.now > deadline {
                        try await event(OpenAIResponses.StreamError(error: .init(
                            message: "the transcription did not finish within \(Int(routes.settings.wait)) s; it goes on as job \(job.id.uuidString.lowercased())",
                            type: "server_error", code: "timeout")))
                        break
                    }
                    if ContinuousClock.now - lastPing > .seconds(1) {
                        try await writer.write(ByteBuffer(string: ": waiting\n\n"))
                        lastPing = .now
                    }
                    try await Task.sleep(for: .milliseconds(200))
                }
                try await writer.finish(nil)
            } catch {
                // The client went away (a write failed) or this task was cancelled: so goes the job.
                await routes.abandon(job)
                throw error
            }
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// The last events of a stream: the rest of the text and `done`, or the failure.
    private func finishStream(_ job: Job, sent: String, event: (any Encodable) async throws -> Void) async throws {
        switch job.state {
        case .completed:
            guard case .result(_, let result) = try await jobs.retrieve(job) else {
                try await event(OpenAIResponses.StreamError(error: .init(message: "the result was deleted before it could be sent", type: "server_error", code: "result_deleted")))
                return
            }
            // The windows' text, joined and trimmed, is the result's text: what was not sent yet goes now (all
            // of it when the job ran on another node).
            let delivered = sent.trimmingCharacters(in: .whitespaces)
            if result.text.hasPrefix(delivered), result.text.count > delivered.count {
                try await event(OpenAIResponses.Delta(delta: String(result.text.dropFirst(delivered.count))))
            }
            try await event(OpenAIResponses.Done(text: result.text, usage: .init(seconds: result.duration)))
            _ = try? await jobs.remove(job)
        case .failed:
            try await event(OpenAIResponses.StreamError(error: .init(
                message: job.errorMessage ?? "the transcription failed", type: "invalid_request_error", code: job.errorCode ?? "transcription_failed")))
            _ = try? await jobs.remove(job)
        default:
            try await event(OpenAIResponses.StreamError(error: .init(message: "the job was cancelled", type: "invalid_request_error", code: "job_cancelled")))
        }
    }

    /// Job failures caused by the recording, which OpenAI would answer with 400.
    static let clientFaults: Set<String> = [
        "undecodable_audio", "audio_too_long", "empty_audio", "decoder_limit_exceeded", "decoder_timeout",
        "unsupported_language", "invalid_option", "model_not_found",
    ]

    /// The client went away while its job was queued or running: cancel it, in a task of its own since this
    /// one is cancelled.
    private func abandon(_ job: Job) async {
        let jobs = self.jobs
        let logger = self.logger
        await Task.detached {
            guard let current = try? await jobs.store.job(id: job.id, tenant: job.tenant) else { return }
            if (try? await jobs.remove(current)) != nil {
                logger.info("client disconnected; job cancelled", metadata: ["job": "\(job.id.uuidString.lowercased())"])
            }
        }.value
    }
}
