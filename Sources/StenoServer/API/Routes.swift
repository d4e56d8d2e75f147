import HTTPTypes

/// Every path the server answers, declared once. The router, authentication (which paths need a key), node
/// roles (which paths a worker node serves), the generated operations' filter and the `405` answer all read
/// this table; a new route is a new case here.
enum Route: CaseIterable, Sendable {
    /// `GET` lists the tenant's jobs, `POST` uploads a recording.
    case jobs
    /// `GET` a job's status and result, `DELETE` cancels or deletes it.
    case job
    /// The removed synchronous endpoint: `410` pointing at the job API.
    case legacyTranscribe
    case health
    case readiness
    case metrics
    case openAPIDocument
    /// OpenAI's audio API (`OpenAIRoutes`).
    case openAITranscriptions
    case openAITranslations
    case openAIModels
    case openAIModel
    /// The page to try the service (`/`).
    case webPage
    /// Swagger UI over the document (or the static reference when its files are not installed).
    case docs
    /// The document as one static page.
    case docsReference
    /// Swagger UI's files.
    case docsAsset

    /// The path as the OpenAPI document writes it, `{job_id}` for the parameter.
    var template: String {
        switch self {
        case .jobs: "/transcribe"
        case .job: "/transcribe/{job_id}"
        case .legacyTranscribe: "/api/transcribe"
        case .health: "/healthz"
        case .readiness: "/readyz"
        case .metrics: "/metrics"
        case .openAPIDocument: "/openapi.yaml"
        case .openAITranscriptions: "/v1/audio/transcriptions"
        case .openAITranslations: "/v1/audio/translations"
        case .openAIModels: "/v1/models"
        case .openAIModel: "/v1/models/{model}"
        case .webPage: "/"
        case .docs: "/docs"
        case .docsReference: "/docs/reference"
        case .docsAsset: "/docs/swagger-ui/{file}"
        }
    }

    var methods: [HTTPRequest.Method] {
        switch self {
        case .jobs: [.get, .post]
        case .job: [.get, .delete]
        case .legacyTranscribe, .openAITranscriptions, .openAITranslations: [.post]
        case .openAIModels, .openAIModel: [.get]
        case .health, .readiness, .metrics, .openAPIDocument, .webPage, .docs, .docsReference, .docsAsset: [.get]
        }
    }

    /// Answered without an API key: probes, the documentation of the API and the web page (whose requests to
    /// the API carry the key the person enters). `/metrics` needs a key.
    var isOpen: Bool {
        switch self {
        case .health, .readiness, .openAPIDocument, .webPage, .docs, .docsReference, .docsAsset: true
        case .jobs, .job, .legacyTranscribe, .metrics, .openAITranscriptions, .openAITranslations, .openAIModels, .openAIModel: false
        }
    }

    /// Job routes belong to API nodes; every node answers the probes, the metrics and the documentation.
    func isServed(by role: NodeRole) -> Bool {
        switch self {
        case .jobs, .job, .legacyTranscribe, .openAITranscriptions, .openAITranslations, .openAIModels, .openAIModel: role.servesAPI
        case .health, .readiness, .metrics, .openAPIDocument, .docs, .docsReference, .docsAsset: true
        // The page is for submitting jobs.
        case .webPage: role.servesAPI
        }
    }

    /// The route of a request path (`/transcribe/4f1c…` is `.job`), or nil for a path the server does not know.
    init?(path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        let match = Route.allCases.first { route in
            let template = route.template.split(separator: "/", omittingEmptySubsequences: true)
            return template.count == parts.count
                && zip(template, parts).allSatisfy { pattern, part in pattern.hasPrefix("{") || pattern == part }
        }
        guard let match else { return nil }
        self = match
    }

    /// The route of an OpenAPI path template, as the generated code registers it.
    init?(template: String) {
        guard let match = Route.allCases.first(where: { $0.template == template }) else { return nil }
        self = match
    }

    /// The `Allow` header of the route: its methods.
    var allowHeader: String { methods.map(\.rawValue).joined(separator: ", ") }

    /// The status URL of a job (the `Location` of its `202`, the `result_url` of its webhook).
    static func jobPath(_ id: String) -> String { "/transcribe/" + id }
}
