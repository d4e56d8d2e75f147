import Foundation
import Hummingbird

/// Hand-written operations of the document: `/metrics`, `/openapi.yaml` and `/docs`.
struct OperationsRoutes: Sendable {
    let store: any JobStore
    let metrics: StenoMetrics
    let document: String
    let docsPage: String

    init(store: any JobStore, metrics: StenoMetrics) throws {
        self.store = store
        self.metrics = metrics
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources")
            ?? Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw APIError(.internalServerError, code: "internal_error", message: "openapi.yaml is missing from the bundle")
        }
        document = try String(contentsOf: url, encoding: .utf8)
        docsPage = DocsPage.render(yaml: document)
    }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/metrics") { _, _ in
            var counts: [JobState: Int] = [:]
            for state in JobState.allCases { counts[state] = try await store.count(state: state) }
            metrics.jobs(counts)
            return Self.text(metrics.render(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/openapi.yaml") { _, _ in Self.text(document, type: "application/yaml; charset=utf-8") }
        router.get("/docs") { _, _ in Self.text(docsPage, type: "text/html; charset=utf-8") }
    }

    private static func text(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
