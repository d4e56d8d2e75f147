import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import StenoServer
import Testing

/// With API keys and a webhook secret set, a real `steno serve` is driven through every error path a request
/// can take (a job table gone from under it makes uploads, status reads, listings, deletions and `/readyz`
/// fail), and its log, at debug level, must not contain a key, the secret or an `Authorization` value.
@Suite struct SecretsInLogTests {
    static func request(_ method: String, _ url: URL, key: String, body: Data? = nil, contentType: String? = nil) async throws -> Int {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        let answer: URLResponse
        if let body {
            (_, answer) = try await URLSession.shared.upload(for: request, from: body)
        } else {
            (_, answer) = try await URLSession.shared.data(for: request)
        }
        return (answer as? HTTPURLResponse)?.statusCode ?? 0
    }

    @Test func noErrorPathLogsAKeyOrSecret() async throws {
        let directory = try TemporaryDirectory()
        let key = "acme-key-" + SystemRandom.token()
        let otherKey = "rival-key-" + SystemRandom.token()
        let secret = "webhook-secret-" + SystemRandom.token()
        let server = try ServeProcess(
            environment: [
                "STENO_DATA_DIR": directory.url.appendingPathComponent("data").path, "STENO_LOG_LEVEL": "debug",
                "STENO_API_KEYS": "acme=\(key),rival=\(otherKey)", "STENO_WEBHOOK_SECRET": secret,
            ],
            log: directory.url.appendingPathComponent("server.log"), owning: directory)
        defer { server.terminate() }
        try await server.waitUntilHealthy()
        let base = server.base
        let boundary = "secrets"
        var form = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".utf8)
        form += try Data(contentsOf: Fixtures.recording("0870")) + Data("\r\n--\(boundary)--\r\n".utf8)
        let multipart = "multipart/form-data; boundary=\(boundary)"
        let upload = base.appendingPathComponent("transcribe")

        #expect(try await Self.request("POST", upload, key: key, body: form, contentType: multipart) == 202)
        #expect(try await Self.request("GET", upload, key: "wrong-" + key) == 401)

        // The job table disappears under the running server: every job operation now fails inside a handler.
        let queue = try DatabaseQueue(path: directory.url.appendingPathComponent("data/steno.sqlite").path)
        try await queue.write { db in try db.execute(sql: "DROP TABLE job") }
        try await queue.close()
        let job = base.appendingPathComponent("transcribe/6f1c1c3e-8f7e-4e0e-9a52-0a1b2c3d4e5f")
        let failures = [
            try await Self.request("GET", upload, key: key),
            try await Self.request("GET", job, key: key),
            try await Self.request("DELETE", job, key: otherKey),
            try await Self.request("POST", upload, key: key, body: form, contentType: multipart),
        ]
        #expect(failures.allSatisfy { $0 >= 500 }, "\(failures)")
        #expect(try await LiveHTTP.get(base.appendingPathComponent("readyz")).status == 503)
        server.terminate()

        let log = server.logText
        // The paths were taken (else the check below proves nothing)…
        #expect(log.contains("failed"), "\(log.suffix(2000))")
        // …and nothing secret came out of them.
        for value in [key, otherKey, secret] {
            #expect(!log.contains(value), "a secret is in the log")
        }
        #expect(!log.lowercased().contains("bearer acme"), "an Authorization value is in the log")
    }
}
