import Foundation
import HTTPTypes
import Hummingbird

/// Finds the request's tenant from its bearer key (401 without a valid one), applies the tenant's request rate,
/// and runs the route with `Tenant.current` set. With no keys configured (open mode) every request is the
/// anonymous tenant's. Which paths stay open is the route table's `Route.isOpen`.
///
/// The key is only hashed and compared here: it is never stored, logged, or quoted in an answer.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: APIKeyRing
    /// The tenants' request budgets: this process's, or the database's when nodes share one.
    let rateLimiter: (any RateLimiter)?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Route(path: request.uri.path)?.isOpen == true { return try await next(request, context) }
        let tenant: String
        if keys.isEmpty {
            tenant = Tenant.anonymous
        } else {
            guard let key = Self.bearerToken(request.headers[.authorization]) else {
                throw APIError(.unauthorized, code: "unauthorized",
                               message: "this server needs an API key: send 'Authorization: Bearer <key>'",
                               headers: [.wwwAuthenticate: "Bearer realm=\"steno\""])
            }
            guard let owner = keys.tenant(forKey: key) else {
                throw APIError(.unauthorized, code: "unauthorized", message: "the API key is not valid",
                               headers: [.wwwAuthenticate: "Bearer realm=\"steno\", error=\"invalid_token\""])
            }
            tenant = owner
        }
        // A shared budget that cannot be reached fails the request with `DatabaseUnavailable` (503, as every
        // route that needs the database would answer): letting requests through unchecked would lift the limit.
        if let rateLimiter, let wait = try await rateLimiter.acquire(tenant: tenant) {
            throw APIError(.tooManyRequests, code: "rate_limited",
                           message: "more than \(rateLimiter.limit) requests; retry after the Retry-After seconds",
                           headers: [.retryAfter: String(max(1, Int(wait.rounded(.up))))])
        }
        return try await Tenant.$current.withValue(tenant) { try await next(request, context) }
    }

    /// The token of `Bearer <token>` (the scheme is case-insensitive), or nil.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
