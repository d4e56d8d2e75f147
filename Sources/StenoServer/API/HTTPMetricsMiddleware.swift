import Foundation
import Hummingbird

/// Records every request's duration by method, route pattern and status.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: StenoMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.httpRequest(
            method: request.method.rawValue, route: context.endpointPath ?? "unknown",
            status: response.status.code, seconds: start.duration(to: .now).seconds)
        return response
    }
}
