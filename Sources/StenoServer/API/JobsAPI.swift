import Foundation
import Logging
import OpenAPIRuntime
import StenoEngine

/// The generated operations: job status and results, listing, deletion, the removed endpoint, health.
/// Every answer is a case of the generated output types, so what the server sends follows the document; the
/// job service does the work.
struct JobsAPI: APIProtocol {
    let jobs: JobService
    /// `/readyz` fails below this much free space where uploads are spooled.
    let minFreeDiskBytes: Int64
    let logger: Logger
    /// Webhook deliveries, shown in a job's status.
    var webhooks: (any WebhookStore)? = nil
    /// The models served and which are loaded, for `/readyz`.
    var transcriber: (any Transcriber)? = nil

    // MARK: GET /transcribe/{job_id}

    func getJob(_ input: Operations.GetJob.Input) async throws -> Operations.GetJob.Output {
        guard let id = UUID(uuidString: input.path.jobId) else {
            return .badRequest(.init(body: .json(Self.error(.invalidJobID(input.path.jobId)))))
        }
        let job: Job
        switch try await jobs.lookup(id: id, tenant: Tenant.current) {
        case .notFound: return .notFound(.init(body: .json(Self.error(.jobNotFound(input.path.jobId)))))
        case .gone(let tombstone, let reason): return .gone(.init(body: .json(Self.gone(tombstone, reason))))
        case .found(let found): job = found
        }
        let format = input.query.format ?? .json

        guard job.state == .completed else {
            if format != .json {
                return .conflict(.init(body: .json(Self.error(APIError(
                    .conflict, code: "job_not_completed",
                    message: "the job is \(job.state.rawValue); the \(format.rawValue) transcript exists once it is completed")))))
            }
            let position = try await jobs.queuePosition(of: job)
            return .ok(.init(body: .json(try await withWebhook(JobPresenter.status(job, queuePosition: position, result: nil)))))
        }

        guard case .result(let retrieved, let result) = try await jobs.retrieve(job) else {
            return .gone(.init(body: .json(Self.error(APIError(
                .gone, code: "result_deleted", message: "the result was retrieved and has since been deleted")))))
        }
        switch format {
        case .json:
            return .ok(.init(body: .json(try await withWebhook(JobPresenter.status(retrieved, queuePosition: nil, result: result)))))
        case .text:
            return .ok(.init(body: .plainText(HTTPBody(result.rendered(as: .text)))))
        case .srt:
            return .ok(.init(body: .applicationXSubrip(HTTPBody(result.rendered(as: .srt)))))
        case .vtt:
            return .ok(.init(body: .textVtt(HTTPBody(result.rendered(as: .vtt)))))
        case .rttm:
            return .ok(.init(body: .plainText(HTTPBody(result.rendered(as: .rttm, recordingID: job.id.uuidString.lowercased())))))
        }
    }

    // MARK: DELETE /transcribe/{job_id}

    func deleteJob(_ input: Operations.DeleteJob.Input) async throws -> Operations.DeleteJob.Output {
        guard let id = UUID(uuidString: input.path.jobId) else {
            return .badRequest(.init(body: .json(Self.error(.invalidJobID(input.path.jobId)))))
        }
        switch try await jobs.lookup(id: id, tenant: Tenant.current) {
        case .notFound:
            return .notFound(.init(body: .json(Self.error(.jobNotFound(input.path.jobId)))))
        case .gone(let job, _), .found(let job):
            if case .cancelled(let was) = try await jobs.remove(job) {
                logger.info("job cancelled", metadata: ["job_id": "\(input.path.jobId)", "was": "\(was.rawValue)"])
            }
            return .noContent(.init())
        }
    }

    // MARK: GET /transcribe

    func listJobs(_ input: Operations.ListJobs.Input) async throws -> Operations.ListJobs.Output {
        let limit = input.query.limit ?? 50
        guard (1...200).contains(limit) else {
            return .badRequest(.init(body: .json(Self.error(APIError(
                .badRequest, code: "invalid_parameter", message: "limit must be from 1 to 200")))))
        }
        var before: Int64?
        if let cursor = input.query.cursor {
            guard let sequence = Int64(cursor), sequence > 0 else {
                return .badRequest(.init(body: .json(Self.error(APIError(
                    .badRequest, code: "invalid_parameter", message: "cursor '\(cursor)' is not one this server gave")))))
            }
            before = sequence
        }
        let state = input.query.status.flatMap { JobState(rawValue: $0.rawValue) }
        let page = try await jobs.list(tenant: Tenant.current, state: state, before: before, limit: limit)
        var statuses: [Components.Schemas.JobStatus] = []
        for job in page.jobs {
            statuses.append(JobPresenter.status(job, queuePosition: try await jobs.queuePosition(of: job), result: nil))
        }
        return .ok(.init(body: .json(.init(jobs: statuses, nextCursor: page.next.map(String.init)))))
    }

    // MARK: Removed endpoint, health

    func legacyTranscribe(_ input: Operations.LegacyTranscribe.Input) async throws -> Operations.LegacyTranscribe.Output {
        .gone(.init(body: .json(Self.error(APIError(
            .gone, code: "endpoint_removed",
            message: "POST /api/transcribe was removed: upload with POST /transcribe (answers 202 with a job_id), then poll GET /transcribe/{job_id} for the result")))))
    }

    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        let (database, free) = await jobs.readiness()
        let disk = (free ?? 0) >= minFreeDiskBytes
        // The model is loaded before the server starts listening: a server that answers has it.
        let checks = Components.Schemas.Readiness.ChecksPayload(model: true, database: database, disk: disk, freeBytes: free.map(Int.init))
        let models: [Components.Schemas.ServedModel] = transcriber.map { transcriber in
            let loaded = Set(transcriber.loadedModels)
            return transcriber.models.entries.map { entry in
                Components.Schemas.ServedModel(
                    name: entry.name, _default: entry.name == transcriber.models.defaultName, multilingual: entry.isMultilingual,
                    languages: entry.languages.count, loaded: loaded.contains(entry.name))
            }
        } ?? []
        if database && disk {
            return .ok(.init(body: .json(.init(models: models, status: .ready, checks: checks))))
        }
        return .serviceUnavailable(.init(body: .json(.init(models: models, status: .notReady, checks: checks))))
    }

    // MARK: Helpers

    static func error(_ error: APIError) -> Components.Schemas.ErrorResponse {
        .init(error: .init(code: error.code, message: error.message))
    }

    /// The tombstone answer for a job whose files and result were deleted.
    static func gone(_ job: Job, _ reason: DeletionReason) -> Components.Schemas.ErrorResponse {
        let id = job.id.uuidString.lowercased()
        switch reason {
        case .retrieved:
            return error(APIError(.gone, code: "result_deleted",
                message: "job \(id) was retrieved and its result deleted after the grace period; the id is forgotten at its deadline"))
        case .deleted:
            return error(APIError(.gone, code: "job_deleted", message: "job \(id) was deleted"))
        }
    }
}

/// Job rows as API models.
enum JobPresenter {
    static func status(_ job: Job, queuePosition: Int?, result: TranscriptionResult?) -> Components.Schemas.JobStatus {
        .init(
            jobId: job.id.uuidString.lowercased(),
            status: Components.Schemas.JobState(rawValue: job.state.rawValue)!,
            progress: job.progress,
            queuePosition: queuePosition,
            createdAt: job.createdAt,
            startedAt: job.startedAt,
            completedAt: job.completedAt,
            retrievedAt: job.retrievedAt,
            expiresAt: job.expiresAt,
            attempts: job.attempts,
            options: options(job.options),
            audioBytes: Int(job.audioBytes),
            error: job.state == .failed ? job.errorCode.map { .init(code: $0, message: job.errorMessage ?? "") } : nil,
            result: result.map(Self.result))
    }

    static func options(_ options: JobOptions) -> Components.Schemas.JobOptions {
        let vadParameters = options.vad.map { detection in
            Components.Schemas.VadParameters(
                threshold: detection.threshold, minSpeechDurationMs: detection.minSpeechSeconds * 1000,
                maxSpeechDurationS: detection.maxSpeechSeconds.isFinite ? detection.maxSpeechSeconds : nil,
                minSilenceDurationMs: detection.minSilenceSeconds * 1000, speechPadMs: detection.speechPadSeconds * 1000)
        }
        let speakers: SpeakerOptions? = options.speakers
        return Components.Schemas.JobOptions(
            model: options.model, language: options.language, temperature: options.temperature, beamSize: options.beamSize,
            prompt: options.prompt, wordTimestamps: options.wordTimestamps, vad: options.vad != nil,
            task: Components.Schemas.Task(rawValue: options.task.rawValue)!, multilingual: options.multilingual,
            speakerLabels: speakers != nil, speakersExpected: speakers?.expected, minSpeakers: speakers?.minimum,
            maxSpeakers: speakers?.maximum, multichannel: options.multichannel, vadParameters: vadParameters)
    }

    static func result(_ result: TranscriptionResult) -> Components.Schemas.JobResult {
        Components.Schemas.JobResult(
            text: result.text, language: result.language, duration: result.duration,
            segments: result.segments.map(segment),
            speechRegions: result.speechRegions?.map { Components.Schemas.TimeSpan(start: $0.start, end: $0.end) },
            speakers: result.speakers?.map { Components.Schemas.SpeakerSummary(speaker: $0.speaker, speakingTime: $0.speakingTime, channel: $0.channel) },
            speakerTurns: result.speakerTurns?.map { Components.Schemas.SpeakerTurn(start: $0.start, end: $0.end, speaker: $0.speaker, channel: $0.channel) },
            channels: result.channels)
    }

    static func segment(_ segment: TranscribedSegment) -> Components.Schemas.Segment {
        let words: [Components.Schemas.Word]? = segment.words?.map { word in
            Components.Schemas.Word(word: word.word, start: word.start, end: word.end, probability: word.probability, speaker: word.speaker)
        }
        return Components.Schemas.Segment(
            id: segment.id, start: segment.start, end: segment.end, text: segment.text,
            avgLogprob: finite(segment.avgLogprob), noSpeechProb: finite(segment.noSpeechProb),
            words: words, language: segment.language, speaker: segment.speaker, channel: segment.channel)
    }

    /// JSON has no infinities: a log-probability of -infinity (a window decoded to nothing) is sent as -1e9.
    private static func finite(_ value: Double) -> Double {
        value.isFinite ? value : (value < 0 ? -1e9 : 1e9)
    }
}
