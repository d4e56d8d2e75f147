import Foundation
import HTTPTypes
import Hummingbird

/// A small HTTP server on 127.0.0.1 that plays a webhook receiver: it records every request and answers each
/// path with the statuses scripted for it, in order (then 200). A 3xx answers with a `Location` to `/redirected`,
/// a 429 with `Retry-After: 1`.
final class WebhookReceiver: @unchecked Sendable {
    struct Received: Sendable {
        var path: String
        var headers: HTTPFields
        /// The `Host` the client sent.
        var authority: String?
        var body: Data
        var at: ContinuousClock.Instant
    }

    private let lock = NSLock()
    private var script: [String: [Int]]
    private var log: [Received] = []
    private(set) var port = 0

    private init(script: [String: [Int]]) { self.script = script }

    var received: [Received] { lock.withLock { log } }

    func received(on path: String) -> [Received] { received.filter { $0.path == path } }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Waits until `count` requests reached `path` (or `timeout` passes), and returns them.
    func wait(for count: Int, on path: String, timeout: Double = 10) async throws -> [Received] {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            let got = received(on: path)
            if got.count >= count { return got }
            try await Task.sleep(for: .milliseconds(10))
        }
        return received(on: path)
    }

    private func answer(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        let path = request.uri.path
        let status = lock.withLock { () -> Int in
            log.append(Received(path: path, headers: request.headers, authority: request.head.authority, body: Data(body.readableBytesView), at: .now))
            guard var queue = script[path], !queue.isEmpty else { return 200 }
            let next = queue.removeFirst()
            script[path] = queue
            return next
        }
        var headers = HTTPFields()
        if (300..<400).contains(status) { headers[.location] = url("/redirected") }
        if status == 429 { headers[.retryAfter] = "1" }
        return Response(status: .init(code: status), headers: headers)
    }

    /// Runs a receiver around `body`; it stops when `body` returns.
    static func run<T: Sendable>(
        script: [String: [Int]] = [:], _ body: @Sendable (WebhookReceiver) async throws -> T
    ) async throws -> T {
        let receiver = WebhookReceiver(script: script)
        let router = Router()
        router.post("**") { request, _ in try await receiver.answer(request) }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: WebhookTesting.quiet)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            for await port in ports {
                receiver.port = port
                break
            }
            defer { group.cancelAll() }
            return try await body(receiver)
        }
    }
}
