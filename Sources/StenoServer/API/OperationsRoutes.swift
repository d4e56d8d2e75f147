import Foundation
import Hummingbird

/// Hand-written operations of the document: `/metrics` and `/openapi.yaml` (the pages for people are
/// `WebRoutes`).
struct OperationsRoutes: Sendable {
    let jobs: JobService
    let metrics: StenoMetrics
    let document: String

    init(jobs: JobService, metrics: StenoMetrics) throws {
        self.jobs = jobs
        self.metrics = metrics
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources")
            ?? Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw APIError(.internalServerError, code: "internal_error", message: "openapi.yaml is missing from the bundle")
        }
        document = try String(contentsOf: url, encoding: .utf8)
    }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get(RouterPath(Route.metrics.template)) { _, _ in
            metrics.jobs(try await jobs.counts())
            return Self.text(metrics.render(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get(RouterPath(Route.openAPIDocument.template)) { _, _ in Self.text(document, type: "application/yaml; charset=utf-8") }
    }

    private static func text(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
