import Hummingbird
import HTTPTypes
import OpenAPIRuntime

/// Registers only the generated operations that the node's role serves (`Route.isServed(by:)`): a worker node
/// serves the health checks of the document, not the job operations.
struct OperationFilter: ServerTransport {
    let base: any ServerTransport
    let role: NodeRole

    func register(
        _ handler: @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method,
        path: String
    ) throws {
        if Route(template: path)?.isServed(by: role) ?? false { try base.register(handler, method: method, path: path) }
    }
}

/// On a worker node, job requests get a clear 404 (rather than the 405 a known path asked with an unregistered
/// method would get): they belong to an API node.
struct WorkerNodeMiddleware<Context: RequestContext>: RouterMiddleware {
    let role: NodeRole

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let route = Route(path: request.uri.path), !route.isServed(by: role) {
            throw APIError(.notFound, code: "not_found", message: "this node runs workers only (--role worker); send job requests to an API node")
        }
        return try await next(request, context)
    }
}
