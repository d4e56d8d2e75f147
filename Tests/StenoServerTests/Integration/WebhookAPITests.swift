import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StenoServer
import Testing

/// Callbacks through the API: refused at submission when they point inward, delivered and shown when allowed.
@Suite struct WebhookAPITests {
    let audio = Data("RIFF-pretend-wave-bytes".utf8)

    @Test func privateAndMalformedCallbacksAreRefusedAtSubmission() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let refused = [
                "http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.1.2.3/",
                "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
                "http://100.64.0.1/", "http://0.0.0.0/", "http://224.0.0.1/", "http://[fe80::1]/", "http://[fd00::1]/",
                "http://[::ffff:127.0.0.1]/", "ftp://example.com/hook", "file:///etc/passwd", "http://user:pw@example.com/",
                "not a url", "http:///nohost",
            ]
            for url in refused {
                let response = try await client.upload(MultipartForm(file: audio, fields: ["callback_url": url]))
                #expect(response.status == .badRequest, "\(url)")
                #expect(try client.errorCode(response) == "invalid_callback_url", "\(url)")
            }
            let headerWithoutURL = try await client.upload(MultipartForm(
                file: audio, fields: ["callback_header_name": "Authorization", "callback_header_value": "x"]))
            #expect(try client.errorCode(headerWithoutURL) == "invalid_callback_header")
            // Nothing was accepted.
            #expect(try await server.service.store.count(state: .pending) == 0)
        }
    }

    @Test func reservedHeadersAreRefused() async throws {
        let server = try TestServer { $0.webhookAllow = ["127.0.0.1"] }
        try await server.service.app.test(.router) { client in
            for (name, value) in [("Host", "evil"), ("Content-Length", "1"), ("Steno-Signature", "t=1,v1=00"),
                                  ("Content-Encoding", "gzip"), ("Content-Range", "bytes 0-1/2"), ("content-disposition", "x"),
                                  ("Bad Name", "x"), ("X-Token", "a\u{1}b"), ("X-Token", "")] {
                let response = try await client.upload(MultipartForm(file: audio, fields: [
                    "callback_url": "http://127.0.0.1:9/hook", "callback_header_name": name, "callback_header_value": value]))
                #expect(response.status == .badRequest, "\(name)")
                #expect(try client.errorCode(response) == "invalid_callback_header", "\(name)")
            }
        }
    }

    /// Submit with a callback to a live receiver: the job completes, the webhook arrives signed with the secret the
    /// server made in its data directory, and the job's status shows the delivery (never the header's value).
    @Test func endToEnd() async throws {
        try await WebhookReceiver.run { receiver in
            let server = try TestServer {
                $0.webhookAllow = ["127.0.0.1"]
                $0.webhookPollInterval = 0.02
            }
            try await server.service.app.test(.router) { client in
                let id = try await client.submit(audio, fields: [
                    "callback_url": receiver.url("/done"), "callback_header_name": "X-Receiver-Token", "callback_header_value": "s3cret"])
                let requests = try await receiver.wait(for: 1, on: "/done")
                let request = try #require(requests.first)
                let secret = try String(contentsOf: server.directory.url.appendingPathComponent("webhook-secret"), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(secret.count == 64)
                let timestamp = try WebhookTesting.verifiedTimestamp(request, secret: secret)
                #expect(timestamp == Int(server.clock.now().timeIntervalSince1970))
                #expect(request.headers[HTTPField.Name("X-Receiver-Token")!] == "s3cret")
                let payload = try WebhookTesting.payload(request)
                #expect(payload["job_id"] as? String == id)
                #expect(payload["status"] as? String == "completed")

                // The status answer reads the store after the delivery was recorded.
                var webhook: Components.Schemas.WebhookStatus?
                for _ in 0..<200 {
                    webhook = try await client.status(id).webhook
                    if webhook?.status != .pending { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                let shown = try #require(webhook)
                #expect(shown.status == .delivered)
                #expect(shown.url == receiver.url("/done"))
                #expect(shown.attempts == 1)
                #expect(shown.lastStatusCode == 200)
                #expect(shown.deliveredAt != nil)
                let raw = try await client.execute(uri: "/transcribe/\(id)", method: .get)
                #expect(!String(buffer: raw.body).contains("s3cret"))
            }
        }
    }

    /// Without a callback the status has no webhook object.
    @Test func jobsWithoutCallbackShowNoWebhook() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let id = try await client.submit(audio)
            #expect(try await client.status(id).webhook == nil)
        }
    }
}
