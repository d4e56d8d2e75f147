import Foundation
import Hummingbird

/// The pages for people: `/` (a page to try the service: upload or record, follow the job, read and play the
/// transcript), `/docs` (Swagger UI over `/openapi.yaml`, with try-it-out) and `/docs/reference` (the same
/// contract as one static page, no scripts). Everything is served from the binary's resources, read once at
/// start-up; nothing is fetched from elsewhere, by the server or by the browser.
///
/// Swagger UI's files are installed by the setup (`scripts/install-swagger-ui.sh`, from PyPI) into the
/// resources before the build; a build without them serves the static page at `/docs` too.
struct WebRoutes: Sendable {
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
    }

    let page: Asset
    let docs: Asset
    let reference: Asset
    /// Swagger UI's files by name; only these names are served under `/docs/swagger-ui/`.
    let swaggerUI: [String: Asset]

    /// The files of Swagger UI's distribution the docs page loads.
    static let swaggerFiles = ["swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js", "favicon-32x32.png"]

    init(openAPIDocument: String) throws {
        let html = "text/html; charset=utf-8"
        page = Asset(body: ByteBuffer(data: try Self.resource("web/index.html")), contentType: html)
        reference = Asset(body: ByteBuffer(string: DocsPage.render(yaml: openAPIDocument)), contentType: html)
        var files: [String: Asset] = [:]
        for name in Self.swaggerFiles {
            if let data = try? Self.resource("swagger-ui/" + name) {
                files[name] = Asset(body: ByteBuffer(data: data), contentType: Self.contentType(of: name))
            }
        }
        swaggerUI = files
        docs = files["swagger-ui-bundle.js"] == nil
            ? reference : Asset(body: ByteBuffer(data: try Self.resource("web/docs.html")), contentType: html)
    }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get(RouterPath(Route.webPage.template)) { _, _ in Self.response(page) }
        router.get(RouterPath(Route.docs.template)) { _, _ in Self.response(docs) }
        router.get(RouterPath(Route.docsReference.template)) { _, _ in Self.response(reference) }
        router.get(RouterPath(Route.docsAsset.template)) { _, context in
            guard let name = context.parameters.get("file"), let asset = swaggerUI[name] else {
                throw APIError(.notFound, code: "not_found", message: "no such file of the API docs page")
            }
            return Self.response(asset, cache: "public, max-age=86400")
        }
    }

    private static func response(_ asset: Asset, cache: String = "no-cache") -> Response {
        Response(
            status: .ok, headers: [.contentType: asset.contentType, .cacheControl: cache],
            body: .init(byteBuffer: asset.body))
    }

    /// A file under the bundle's `Resources/` folder.
    private static func resource(_ relativePath: String) throws -> Data {
        guard let root = Bundle.module.resourceURL else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: relativePath])
        }
        let direct = root.appendingPathComponent("Resources").appendingPathComponent(relativePath)
        let url = FileManager.default.fileExists(atPath: direct.path) ? direct : root.appendingPathComponent(relativePath)
        return try Data(contentsOf: url)
    }

    private static func contentType(of name: String) -> String {
        switch (name as NSString).pathExtension {
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "png": "image/png"
        default: "application/octet-stream"
        }
    }
}
