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
/// crossed. The job is recorded before the answer, and nothing is decoded here: `202` comes in milliseconds.
struct UploadController: Sendable {
    let store: any JobStore
    let blobs: any BlobStore
    let clock: any WallClock
    let metrics: StenoMetrics
    let wake: WakeSignal
    let supportedLanguages: Set<String>
    let maxUploadBytes: Int64
    let maxQueuedJobs: Int
    let retention: TimeInterval
    let maxRetention: TimeInterval
    let maxAttempts: Int
    /// Per-tenant bound on pending and processing jobs; nil for none.
    let jobLimiter: TenantJobLimiter?
    /// An upload that sends nothing for this long is cut off (its file removed); slow clients cannot hold a
    /// connection and a temporary file forever.
    let stallTimeout: TimeInterval
    let logger: Logger
    /// Which callback URLs are accepted (SSRF checks and the allowlist).
    var callbacks = CallbackPolicy()

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post("/transcribe") { request, _ in try await self.create(request) }
    }

    func create(_ request: Request) async throws -> Response {
        let tenant = Tenant.current
        guard let boundary = Self.boundary(of: request.headers[.contentType]) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                           message: "send the recording as multipart/form-data with a 'file' field")
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > maxUploadBytes + Self.formOverhead {
            throw tooLarge()
        }
        // A retried upload with a known key gets the job its first attempt created, without storing the file again.
        let idempotencyKey = try Self.idempotencyKey(request)
        if let idempotencyKey, let existing = try await store.job(idempotencyKey: idempotencyKey, tenant: tenant) {
            return try Self.created(existing)
        }
        // Refused before the body is read when the queue is full already; the insert checks again, for uploads
        // arriving together (on any node).
        if try await store.count(state: .pending) >= maxQueuedJobs { throw queueFull() }
        // The tenant's place is held from before the body is read until its job is recorded.
        var reserved = false
        defer { if reserved { jobLimiter?.release(tenant: tenant) } }
        if let jobLimiter {
            reserved = try await jobLimiter.reserve(tenant: tenant, store: store)
            guard reserved else { throw jobLimiter.refusal() }
        }

        let (temporary, descriptor) = try Self.createUploadFile(blobs)
        var committed = false
        defer { if !committed { try? FileManager.default.removeItem(at: temporary) } }
        let form: ReceivedForm
        do {
            defer { close(descriptor) }
            form = try await receive(request, boundary: boundary, into: descriptor)
        }

        // Validate the fields before the job exists.
        guard form.sawFile else {
            throw APIError(.badRequest, code: "missing_file", message: "the form has no 'file' field")
        }
        guard form.fileComplete else {
            throw APIError(.badRequest, code: "invalid_request", message: "the multipart body ended before the file did")
        }
        guard form.fileBytes > 0 else {
            throw APIError(.unprocessableContent, code: "empty_file", message: "the uploaded file is empty")
        }
        let options = try jobOptions(form.fields)
        let lifetime = try deleteAfter(form.fields["delete_after_seconds"])
        let callback = try await webhook(form.fields)

        let id = SystemRandom.uuid()
        let now = clock.now()
        let audioPath = try await blobs.commitAudio(temporary, jobID: id)
        committed = true
        var record = Job(
            id: id, options: options, createdAt: now, expiresAt: now.addingTimeInterval(lifetime),
            maxAttempts: maxAttempts, audioPath: audioPath, audioBytes: form.fileBytes)
        record.idempotencyKey = idempotencyKey
        record.webhook = callback
        record.tenant = tenant
        let job: Job
        do {
            // The store keeps the bounds across nodes: the checks above only see what was there before the body.
            job = try await store.insert(
                record, limits: InsertLimits(maxActiveJobsPerTenant: jobLimiter?.maxJobs, maxPendingJobs: maxQueuedJobs))
        } catch {
            await blobs.remove(audioPath)
            if error is TenantJobLimitReached, let jobLimiter { throw jobLimiter.refusal() }
            if error is QueueFull { throw queueFull() }
            throw error
        }
        if job.id != id {
            // A concurrent upload with the same key won the race: answer with its job, drop this copy.
            await blobs.remove(audioPath)
        } else {
            metrics.accepted()
            wake.signal()
        }
        return try Self.created(job)
    }

    /// `503 queue_full`: the queue bound is reached; the client retries later.
    private func queueFull() -> APIError {
        APIError(.serviceUnavailable, code: "queue_full",
                 message: "\(maxQueuedJobs) jobs are waiting already; retry later", headers: [.retryAfter: "30"])
    }

    /// The `202` answer for a job: its id, state and times, and its status URL in `Location`.
    private static func created(_ job: Job) throws -> Response {
        let body = Components.Schemas.JobCreated(
            jobId: job.id.uuidString.lowercased(), status: Components.Schemas.JobState(rawValue: job.state.rawValue)!,
            createdAt: job.createdAt, expiresAt: job.expiresAt)
        var headers = HTTPFields()
        headers[.location] = "/transcribe/\(body.jobId)"
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
    /// random names, but a clash must never become an error or a shared file) is retried with another; a process
    /// out of descriptors answers 503, since the next try may well work.
    private static func createUploadFile(_ blobs: any BlobStore) throws -> (URL, Int32) {
        for _ in 0..<8 {
            let file = blobs.temporaryFile()
            let descriptor = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 { return (file, descriptor) }
            switch errno {
            case EEXIST, EINTR: continue
            case EMFILE, ENFILE:
                throw APIError(.serviceUnavailable, code: "server_busy",
                               message: "the server is out of resources for the moment; retry shortly", headers: [.retryAfter: "5"])
            case let code where OutOfSpace.errnos.contains(code):
                throw OutOfSpace.apiError
            default:
                throw APIError(.internalServerError, code: "storage_error", message: "the server could not store the upload")
            }
        }
        throw APIError(.internalServerError, code: "storage_error", message: "the server could not store the upload")
    }

    /// Reads the body into the form and the file, racing a watchdog: when no bytes come for `stallTimeout`,
    /// the read is cancelled (which ends the connection's request stream) and the upload fails `408`.
    private func receive(_ request: Request, boundary: String, into descriptor: Int32) async throws -> ReceivedForm {
        let lastProgress = Locked(ContinuousClock.now)
        let stallTimeout = Duration.milliseconds(Int64(self.stallTimeout * 1000))
        return try await withThrowingTaskGroup(of: ReceivedForm?.self) { group in
            group.addTask { try await self.read(request, boundary: boundary, into: descriptor, progress: lastProgress) }
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
                logger.warning("upload stalled; cut off", metadata: ["seconds": "\(self.stallTimeout)"])
                throw APIError(.requestTimeout, code: "upload_stalled",
                               message: "no data came for \(Int(self.stallTimeout)) s; the upload was cut off",
                               headers: [.connection: "close"])
            }
        }
    }

    private struct UploadStalled: Error {}

    private func read(_ request: Request, boundary: String, into descriptor: Int32, progress: Locked<ContinuousClock.Instant>) async throws -> ReceivedForm {
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
        for try await chunk in request.body {
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
        var options = JobOptions()
        if let language = fields["language"]?.trimmingCharacters(in: .whitespaces).lowercased(), !language.isEmpty {
            guard supportedLanguages.contains(language) else {
                throw APIError(.unprocessableContent, code: "unsupported_language",
                               message: "language '\(language)' is not supported by this model; supported: \(supportedLanguages.sorted().joined(separator: ", "))")
            }
            options.language = language
        }
        if let prompt = fields["prompt"], !prompt.isEmpty { options.prompt = prompt }
        if let flag = fields["word_timestamps"]?.trimmingCharacters(in: .whitespaces).lowercased() {
            switch flag {
            case "true", "1", "yes", "on": options.wordTimestamps = true
            case "false", "0", "no", "off", "": options.wordTimestamps = false
            default:
                throw APIError(.unprocessableContent, code: "invalid_option", message: "word_timestamps must be true or false, not '\(flag)'")
            }
        }
        return options
    }

    private func deleteAfter(_ field: String?) throws -> TimeInterval {
        guard let field = field?.trimmingCharacters(in: .whitespaces), !field.isEmpty else { return retention }
        guard let seconds = Int(field), seconds >= 1, TimeInterval(seconds) <= maxRetention else {
            throw APIError(.unprocessableContent, code: "invalid_option",
                           message: "delete_after_seconds must be a whole number from 1 to \(Int(maxRetention)), not '\(field)'")
        }
        return TimeInterval(seconds)
    }
}

/// What the parser has seen so far. Filled by one task, then handed to the request's task when that one ends.
private final class ReceivedForm: @unchecked Sendable {
    var fields: [String: String] = [:]
    var sawFile = false
    var fileComplete = false
    var fileBytes: Int64 = 0
    var failure: APIError?

    private var partHeaders: [String: String] = [:]
    private var partName: String?
    private var partIsFile = false
    private var fieldBytes: [UInt8] = []
    private var fieldCount = 0
    private var totalFieldBytes = 0

    func header(name: String, value: String) {
        guard partHeaders.count < FormLimits.maxPartHeaders else {
            failure = FormLimits.tooLarge("a part has more than \(FormLimits.maxPartHeaders) headers")
            return
        }
        partHeaders[name.lowercased()] = value
    }

    func body(_ buffer: inout ByteBuffer, descriptor: Int32) {
        if partName == nil { startPart() }
        if partIsFile {
            buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        let code = errno
                        if code == EINTR { continue }
                        failure = OutOfSpace.errnos.contains(code)
                            ? OutOfSpace.apiError
                            : APIError(.internalServerError, code: "storage_error", message: "the server could not store the upload")
                        return
                    }
                    offset += written
                }
            }
            fileBytes += Int64(buffer.readableBytes)
        } else if fieldBytes.count + buffer.readableBytes > FormLimits.maxFieldBytes {
            failure = APIError(.unprocessableContent, code: "invalid_option", message: "form field '\(partName ?? "")' is too long")
        } else if totalFieldBytes + buffer.readableBytes > FormLimits.maxTotalFieldBytes {
            failure = FormLimits.tooLarge("the form's fields exceed \(FormLimits.maxTotalFieldBytes) bytes together")
        } else {
            fieldBytes.append(contentsOf: buffer.readableBytesView)
            totalFieldBytes += buffer.readableBytes
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
    }

    func partComplete() {
        if partName == nil { startPart() }
        if partIsFile {
            fileComplete = true
        } else if let name = partName {
            fields[name] = String(decoding: fieldBytes, as: UTF8.self)
        }
        partHeaders = [:]
        partName = nil
        partIsFile = false
        fieldBytes = []
    }

    /// Headers are complete when the first body bytes (or the end of the part) arrive.
    private func startPart() {
        let disposition = partHeaders["content-disposition"] ?? ""
        partName = Self.parameter("name", in: disposition) ?? ""
        if partName == "file" {
            if sawFile {
                failure = APIError(.badRequest, code: "invalid_request", message: "the form has more than one 'file' field")
            }
            sawFile = true
            partIsFile = true
        } else {
            fieldCount += 1
            if fieldCount > FormLimits.maxFields {
                failure = FormLimits.tooLarge("the form has more than \(FormLimits.maxFields) fields")
            }
        }
    }

    private static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let pair = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == key {
                return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }
}

/// Bounds on what of a form is kept in memory (everything but the file, which streams to disk). Each is far
/// above what a real client sends; past one the upload is refused at once with `413 form_too_large`.
enum FormLimits {
    /// Non-file fields in one form.
    static let maxFields = 64
    /// Bytes of one field.
    static let maxFieldBytes = 64 << 10
    /// Bytes of all fields together.
    static let maxTotalFieldBytes = 256 << 10
    /// Bytes of one part's headers (and of the preamble before the first part).
    static let maxPartHeaderBytes = 16 << 10
    /// Headers of one part.
    static let maxPartHeaders = 16
    /// Bytes given to the multipart parser at once.
    static let parserSliceBytes = 4 << 10

    static func tooLarge(_ message: String) -> APIError {
        APIError(.contentTooLarge, code: "form_too_large", message: message)
    }
}
