import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MultipartKit
import StenoEngine
#if canImport(Glibc)
import Glibc
#endif

/// `POST /transcribe`, hand-written rather than generated so that the upload streams through multipart-kit's
/// parser straight into a file: memory stays flat whatever the size, and `413` comes as soon as the limit is
/// crossed. This type parses and presents; the job service admits, records and announces the job. Nothing is
/// decoded here: `202` comes in milliseconds.
struct UploadController: Sendable {
    struct Settings: Sendable {
        var maxUploadBytes: Int64
        /// An upload that sends nothing for this long is cut off (its file removed); slow clients cannot hold a
        /// connection and a temporary file forever.
        var stallTimeout: TimeInterval
        /// The models served, for the `model` field, and the languages each knows, for `language`.
        var models: ModelCatalog
    }

    let jobs: JobService
    let settings: Settings
    let logger: Logger
    /// Which callback URLs are accepted (SSRF checks and the allowlist).
    var callbacks = CallbackPolicy()

    private var maxUploadBytes: Int64 { settings.maxUploadBytes }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post(RouterPath(Route.jobs.template)) { request, _ in try await self.create(request) }
    }

    func create(_ request: Request) async throws -> Response {
        let job = try await receiveJob(request, body: request.body, acceptsAudioURL: true) { fields in
            var options = try jobOptions(fields.values)
            options.audioURL = try audioURL(fields.values["audio_url"])
            return JobDescription(
                options: options, lifetime: try deleteAfter(fields.values["delete_after_seconds"]),
                webhook: try await webhook(fields.values))
        }
        return try Self.created(job)
    }

    /// The `audio_url` field, its syntax checked (the worker that fetches it checks its addresses).
    private func audioURL(_ field: String?) throws -> String? {
        guard let text = field?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        do {
            _ = try AudioDownloader.syntaxPolicy.parse(text)
        } catch let refusal as CallbackRefusal {
            throw APIError(.badRequest, code: "invalid_audio_url", param: "audio_url", message: refusal.reason)
        }
        return text
    }

    /// What a job is made of besides its audio, read from the form's fields.
    struct JobDescription: Sendable {
        var options: JobOptions
        var lifetime: TimeInterval?
        var webhook: WebhookRequest?
    }

    /// The non-file fields of a received form: the last value of each name, and every value of names sent more
    /// than once (`timestamp_granularities[]`).
    struct FormFields: Sendable {
        var values: [String: String]
        var repeated: [String: [String]]
    }

    /// An upload becomes a job: the idempotency replay and the admission checks (before the body is read), the
    /// body streamed into a temporary file, the form's checks, then `describe` reads the fields (its errors
    /// refuse the upload before anything is stored). `body` is the request's body, or the stream that stands
    /// for it (`consumeWithCancellationOnInboundClose`). Shared by `POST /transcribe` and the OpenAI routes.
    func receiveJob(
        _ request: Request, body: RequestBody, honouringIdempotencyKey: Bool = true, acceptsAudioURL: Bool = false,
        describe: (FormFields) async throws -> JobDescription
    ) async throws -> Job {
        guard let boundary = Self.boundary(of: request.headers[.contentType]) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                           message: "send the recording as multipart/form-data with a 'file' field")
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > maxUploadBytes + Self.formOverhead {
            throw tooLarge()
        }
        // A retried upload with a known key gets the job its first attempt created, without storing the file
        // again; a full queue or a tenant at its bound is refused before the body is read.
        let admission: JobService.Admission
        let idempotencyKey = honouringIdempotencyKey ? try Self.idempotencyKey(request) : nil
        switch try await jobs.admit(tenant: Tenant.current, idempotencyKey: idempotencyKey) {
        case .existing(let job): return job
        case .admitted(let held): admission = held
        }
        defer { admission.release() }

        let (temporary, descriptor) = try Self.createUploadFile(jobs.blobs)
        // Gone by the end either way: `create` moves it into the blob store, a refused upload leaves it here.
        defer { try? FileManager.default.removeItem(at: temporary) }
        let form: ReceivedForm
        do {
            defer { close(descriptor) }
            form = try await receive(body, boundary: boundary, into: descriptor)
        }

        // Validate the fields before the job exists: a file, or (where accepted) a URL the worker fetches.
        let byURL = acceptsAudioURL && !(form.fields["audio_url"]?.trimmingCharacters(in: .whitespaces).isEmpty ?? true)
        if byURL {
            guard !form.sawFile else {
                throw APIError(.badRequest, code: "invalid_request", message: "send either a 'file' or an 'audio_url', not both")
            }
        } else {
            guard form.sawFile else {
                throw APIError(.badRequest, code: "missing_file",
                               message: acceptsAudioURL ? "the form has no 'file' field (nor an 'audio_url')" : "the form has no 'file' field")
            }
            guard form.fileComplete else {
                throw APIError(.badRequest, code: "invalid_request", message: "the multipart body ended before the file did")
            }
            guard form.fileBytes > 0 else {
                throw APIError(.unprocessableContent, code: "empty_file", message: "the uploaded file is empty")
            }
        }
        let description = try await describe(FormFields(values: form.fields, repeated: form.repeatedFields))
        let newJob = JobService.NewJob(
            options: description.options, lifetime: description.lifetime, webhook: description.webhook,
            audio: byURL ? nil : temporary, audioBytes: byURL ? 0 : form.fileBytes)
        return try await jobs.create(newJob, admission: admission)
    }

    /// The `202` answer for a job: its id, state and times, and its status URL in `Location`.
    private static func created(_ job: Job) throws -> Response {
        let body = Components.Schemas.JobCreated(
            jobId: job.id.uuidString.lowercased(), status: Components.Schemas.JobState(rawValue: job.state.rawValue)!,
            createdAt: job.createdAt, expiresAt: job.expiresAt)
        var headers = HTTPFields()
        headers[.location] = Route.jobPath(body.jobId)
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .accepted, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try APIJSON.encoder.encode(body))))
    }

    private static func idempotencyKey(_ request: Request) throws -> String? {
        guard let name = HTTPField.Name("Idempotency-Key"), let key = request.headers[name] else { return nil }
        let trimmed = key.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 255 else {
            throw APIError(.badRequest, code: "invalid_request", message: "Idempotency-Key must be 1 to 255 bytes")
        }
        return trimmed
    }

    // MARK: - Streaming the body

    /// Bytes of multipart framing and small fields allowed on top of the file itself.
    static let formOverhead: Int64 = 1 << 20

    private func tooLarge() -> APIError {
        APIError(.contentTooLarge, code: "upload_too_large", message: "the upload exceeds the limit of \(maxUploadBytes) bytes")
    }

    /// A new temporary file for an upload, created exclusively. A name that exists already (it cannot, with
    /// random names, but a clash must never become an error or a shared file) is retried with another; other
    /// failures are a `StorageFailure` (out of descriptors: a 503, since the next try may well work).
    private static func createUploadFile(_ blobs: any BlobStore) throws -> (URL, Int32) {
        for _ in 0..<8 {
            let file = blobs.temporaryFile()
            let descriptor = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 { return (file, descriptor) }
            let code = errno
            guard code == EEXIST || code == EINTR else { throw StorageFailure(code: code) }
        }
        throw StorageFailure(code: EEXIST)
    }

    /// Reads the body into the form and the file, racing a watchdog: when no bytes come for `stallTimeout`,
    /// the read is cancelled (which ends the connection's request stream) and the upload fails `408`.
    private func receive(_ body: RequestBody, boundary: String, into descriptor: Int32) async throws -> ReceivedForm {
        let lastProgress = Locked(ContinuousClock.now)
        let stallTimeout = Duration.milliseconds(Int64(settings.stallTimeout * 1000))
        return try await withThrowingTaskGroup(of: ReceivedForm?.self) { group in
            group.addTask { try await self.read(body, boundary: boundary, into: descriptor, progress: lastProgress) }
            group.addTask {
                while true {
                    let deadline = lastProgress.current + stallTimeout
                    if deadline <= .now { throw UploadStalled() }
                    try await Task.sleep(until: deadline, clock: .continuous)
                }
            }
            defer { group.cancelAll() }
            do {
                guard let form = try await group.next() ?? nil else { throw CancellationError() }
                return form
            } catch is UploadStalled {
                logger.warning("upload stalled; cut off", metadata: ["seconds": "\(settings.stallTimeout)"])
                throw APIError(.requestTimeout, code: "upload_stalled",
                               message: "no data came for \(Int(settings.stallTimeout)) s; the upload was cut off",
                               headers: [.connection: "close"])
            }
        }
    }

    private struct UploadStalled: Error {}

    private func read(_ body: RequestBody, boundary: String, into descriptor: Int32, progress: Locked<ContinuousClock.Instant>) async throws -> ReceivedForm {
        let form = ReceivedForm()
        let parser = MultipartParser(boundary: boundary)
        // Bytes given to the parser since it last reported anything: all of them sit in a part's headers (or
        // the preamble), which the parser accumulates and rescans, so they are capped.
        var unreported = 0
        parser.onHeader = { name, value in unreported = 0; form.header(name: name, value: value) }
        parser.onBody = { buffer in unreported = 0; form.body(&buffer, descriptor: descriptor) }
        parser.onPartComplete = { unreported = 0; form.partComplete() }

        // Whether the first delimiter has come: past it, unreported bytes are a part's headers; before it, a
        // preamble that no client sends (a wrong boundary, most likely).
        let delimiter = Array("--\(boundary)".utf8)
        var boundarySeen = false
        var boundaryCarry: [UInt8] = []
        var received: Int64 = 0
        for try await chunk in body {
            progress.withLock { $0 = .now }
            received += Int64(chunk.readableBytes)
            if received > maxUploadBytes + Self.formOverhead { throw tooLarge() }
            // Fed in small slices so that an endless header is caught after a slice, not after the whole chunk.
            var rest = chunk
            while let slice = rest.readSlice(length: min(rest.readableBytes, FormLimits.parserSliceBytes)) {
                unreported += slice.readableBytes
                do {
                    try parser.execute(slice)
                } catch {
                    throw APIError(.badRequest, code: "invalid_request", message: "the body is not valid multipart/form-data")
                }
                if let failure = form.failure { throw failure }
                if !boundarySeen {
                    // The slice and the end of the one before, so a delimiter split between them is found too.
                    let window = boundaryCarry + Array(slice.readableBytesView)
                    boundarySeen = window.firstRange(of: delimiter) != nil
                    boundaryCarry = Array(window.suffix(delimiter.count - 1))
                }
                if unreported > FormLimits.maxPartHeaderBytes {
                    guard boundarySeen else {
                        throw APIError(.badRequest, code: "invalid_request",
                                       message: "no multipart part starts in the first \(FormLimits.maxPartHeaderBytes) bytes; is the boundary right?")
                    }
                    throw FormLimits.tooLarge("a part's headers exceed \(FormLimits.maxPartHeaderBytes) bytes")
                }
                if rest.readableBytes == 0 { break }
            }
            if form.fileBytes > maxUploadBytes { throw tooLarge() }
        }
        try Task.checkCancellation()
        return form
    }

    private static func boundary(of contentType: String?) -> String? {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    // MARK: - Fields

    private func jobOptions(_ fields: [String: String]) throws -> JobOptions {
        try JobOptionsForm(models: settings.models).options(fields)
    }

    /// The `delete_after_seconds` field; nil for the default retention.
    private func deleteAfter(_ field: String?) throws -> TimeInterval? {
        let maxRetention = jobs.settings.maxRetention
        guard let field = field?.trimmingCharacters(in: .whitespaces), !field.isEmpty else { return nil }
        guard let seconds = Int(field), seconds >= 1, TimeInterval(seconds) <= maxRetention else {
            throw APIError(.unprocessableContent, code: "invalid_option",
                           message: "delete_after_seconds must be a whole number from 1 to \(Int(maxRetention)), not '\(field)'")
        }
        return TimeInterval(seconds)
    }
}
