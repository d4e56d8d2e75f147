import Foundation
import HTTPTypes
import Logging
import OpenAPIRuntime

/// Gives errors raised inside generated operations (an unknown `format`, a handler that threw) the same JSON
/// error body as every other error: `400 invalid_parameter` for requests the document does not allow,
/// `500 internal_error` otherwise.
struct OpenAPIErrorMiddleware: ServerMiddleware {
    let logger: Logger

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        do {
            return try await next(request, body, metadata)
        } catch let error as ServerError where error.httpStatus.kind == .clientError && !(error.underlyingError is DatabaseUnavailable) {
            // In our words: the runtime's own text is a Swift decoding error, meaningless to a client.
            return Self.response(APIError(error.httpStatus, code: "invalid_parameter", message: Self.parameterMessage(error, request: request)))
        } catch {
            // A handler's own error, which the runtime wraps: mapped like every other route's.
            let cause = (error as? ServerError)?.underlyingError ?? error
            return Self.response(ErrorMap.answer(for: cause, logger: logger, "operation", metadata: ["operation": "\(operationID)"]))
        }
    }

    /// The document's query parameters with a closed set of values, checked again here only to name the one a
    /// refused request got wrong (the runtime does not say which).
    static let queryRules: [String: (accepts: @Sendable (String) -> Bool, expected: String)] = [
        "format": ({ ["json", "text", "srt", "vtt"].contains($0) }, "one of json, text, srt, vtt"),
        "status": ({ JobState(rawValue: $0) != nil }, "one of " + JobState.allCases.map(\.rawValue).joined(separator: ", ")),
        "limit": ({ Int($0) != nil }, "a whole number from 1 to 200"),
    ]

    /// Which parameter was refused and what it takes, in our words; never the decoder's.
    static func parameterMessage(_ error: ServerError, request: HTTPRequest) -> String {
        let query = request.path.flatMap { URLComponents(string: $0)?.queryItems } ?? []
        for item in query {
            if let rule = queryRules[item.name], let value = item.value, !rule.accepts(value) {
                return "'\(value)' is not a valid \(item.name): it must be \(rule.expected)"
            }
        }
        return parameterMessage(error)
    }

    /// Which parameter was refused, when the runtime says; never its decoder's wording.
    static func parameterMessage(_ error: ServerError) -> String {
        var names: [String] = []
        if case let .dataCorrupted(context)? = error.underlyingError as? DecodingError {
            names = context.codingPath.map(\.stringValue)
        } else if case let .typeMismatch(_, context)? = error.underlyingError as? DecodingError {
            names = context.codingPath.map(\.stringValue)
        } else if case let .valueNotFound(_, context)? = error.underlyingError as? DecodingError {
            names = context.codingPath.map(\.stringValue)
        } else if case let .keyNotFound(key, _)? = error.underlyingError as? DecodingError {
            names = [key.stringValue]
        }
        if let name = names.last(where: { !$0.isEmpty && Int($0) == nil }) {
            return "the value of '\(name)' is not one this operation accepts (see /openapi.yaml)"
        }
        return "a parameter of the request is missing or has a value this operation does not accept (see /openapi.yaml)"
    }

    private static func response(_ error: APIError) -> (HTTPResponse, HTTPBody?) {
        var fields = error.headers
        fields[.contentType] = "application/json; charset=utf-8"
        return (HTTPResponse(status: error.status, headerFields: fields), HTTPBody(APIError.body(code: error.code, message: error.message)))
    }
}
