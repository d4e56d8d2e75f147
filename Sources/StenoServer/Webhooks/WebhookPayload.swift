import Foundation

/// The JSON body of a webhook: what a receiver needs to act on a finished job without asking first. The same
/// job gives the same body at every attempt (receivers deduplicate on `job_id`).
struct WebhookPayload: Encodable {
    struct Failure: Encodable {
        var code: String
        var message: String
    }

    var jobID: String
    var status: String
    var createdAt: Date
    var completedAt: Date?
    /// Audio seconds, for completed jobs.
    var duration: Double?
    var language: String?
    /// Speakers found, for completed jobs with speaker labels or multichannel.
    var speakers: Int?
    var error: Failure?
    /// Where the result is fetched (`GET`); absolute when the server knows its public URL.
    var resultURL: String

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", status, createdAt = "created_at", completedAt = "completed_at", duration, language,
             speakers = "speaker_count", error, resultURL = "result_url"
    }

    init(job: Job, publicURL: String?) {
        let id = job.id.uuidString.lowercased()
        jobID = id
        status = job.state.rawValue
        createdAt = job.createdAt
        completedAt = job.completedAt
        duration = job.duration
        language = job.detectedLanguage ?? job.options.language
        speakers = job.speakerCount
        if job.state == .failed, let code = job.errorCode {
            error = Failure(code: code, message: job.errorMessage ?? "")
        }
        var base = publicURL ?? ""
        while base.hasSuffix("/") { base.removeLast() }
        resultURL = base + Route.jobPath(id)
    }

    func encoded() throws -> Data { try APIJSON.encoder.encode(self) }
}
