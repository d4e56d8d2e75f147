package import Foundation
public import Hummingbird
import Logging

/// An error a client sees: an HTTP status, a stable code and a message, sent as `{"error": {"code", "message"}}`.
/// Internal errors become `500 internal_error` without their details.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields = [:]
    /// The request field at fault, where one is (shown by the OpenAI dialect's `param`).
    public var param: String?

    public init(_ status: HTTPResponse.Status, code: String, param: String? = nil, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.param = param
        self.message = message
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse()
    }

    package func jsonResponse() -> Response {
        if ErrorDialect.current == .openAI { return openAIResponse() }
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Self.body(code: code, message: message))))
    }

    package static func body(code: String, message: String) -> Data {
        struct Detail: Encodable { let code: String; let message: String }
        struct Body: Encodable { let error: Detail }
        return (try? APIJSON.encoder.encode(Body(error: Detail(code: code, message: message)))) ?? Data()
    }
}

extension APIError {
    static func jobNotFound(_ id: String) -> APIError {
        APIError(.notFound, code: "job_not_found", message: "no job \(id): it never existed or its deadline has passed")
    }

    static func invalidJobID(_ id: String) -> APIError {
        APIError(.badRequest, code: "invalid_job_id", message: "'\(id)' is not a job id (a UUID)")
    }
}

/// Turns every error that escapes a route into the JSON error body, and answers unknown routes the same way.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            // The router's own errors: an unknown path, or a known one asked with a method it does not take.
            if error.status == .notFound, let route = Route(path: request.uri.path) {
                return APIError(
                    .methodNotAllowed, code: "method_not_allowed",
                    message: "\(request.method.rawValue) is not allowed on \(request.uri.path); use \(route.allowHeader)",
                    headers: [.allow: route.allowHeader]
                ).jsonResponse()
            }
            let code = error.status == .notFound ? "not_found" : "http_\(error.status.code)"
            return APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase).jsonResponse()
        } catch {
            return ErrorMap.answer(for: error, logger: logger, "request", metadata: ["path": "\(request.uri.path)"]).jsonResponse()
        }
    }
}
