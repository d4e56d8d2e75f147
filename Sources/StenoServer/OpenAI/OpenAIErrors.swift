import Foundation
import Hummingbird

/// Which error body a request gets: Steno's `{"error": {"code", "message"}}`, or under `/v1/` OpenAI's
/// `{"error": {"message", "type", "param", "code"}}`, so that OpenAI's SDKs raise their own exception types
/// with a readable message. Set per request by `ErrorDialectMiddleware`; `APIError.jsonResponse()` reads it,
/// so every error of a `/v1/` request (authentication, limits, the form, a failed job) takes that shape.
enum ErrorDialect: Sendable {
    case steno, openAI

    @TaskLocal static var current = ErrorDialect.steno

    static func of(path: String) -> ErrorDialect { path.hasPrefix("/v1/") || path == "/v1" ? .openAI : .steno }
}

/// Runs each request under its path's `ErrorDialect`. Outside the error middleware, so the answers it builds
/// are rendered in the dialect too.
struct ErrorDialectMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await ErrorDialect.$current.withValue(ErrorDialect.of(path: request.uri.path)) {
            try await next(request, context)
        }
    }
}

extension APIError {
    /// The error as OpenAI's API answers it. OpenAI says 400 where Steno says 422 (the SDK then raises
    /// `BadRequestError`), 404 for a model it does not have, and `invalid_api_key` for a refused key.
    func openAIResponse() -> Response {
        var status = self.status
        var code = self.code
        switch (status, code) {
        case (_, "model_not_found"): status = .notFound
        case (.unprocessableContent, _): status = .badRequest
        case (.unauthorized, _): code = "invalid_api_key"
        default: break
        }
        let type: String = switch status.code {
        case 401: "invalid_request_error"
        case 429: "rate_limit_error"
        case 500...: "server_error"
        default: "invalid_request_error"
        }
        struct Detail: Encodable {
            let message: String
            let type: String
            let param: String?
            let code: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)  // null, not absent, as OpenAI sends it
                try container.encode(code, forKey: .code)
            }
            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        struct Body: Encodable { let error: Detail }
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        let body = Body(error: Detail(message: message, type: type, param: param ?? Self.inferredParam(code: self.code, message: message), code: code))
        let data = (try? APIJSON.encoder.encode(body)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The field at fault for the job form's errors, which name it first in their message.
    private static func inferredParam(code: String, message: String) -> String? {
        switch code {
        case "missing_file", "empty_file", "upload_too_large": return "file"
        case "unsupported_language": return "language"
        case "model_not_found": return "model"
        case "unsupported_task": return "model"
        case "invalid_option":
            let first = message.prefix { $0.isLetter || $0 == "_" }
            return ["temperature", "prompt", "language", "model"].contains(String(first)) ? String(first) : nil
        default: return nil
        }
    }
}
