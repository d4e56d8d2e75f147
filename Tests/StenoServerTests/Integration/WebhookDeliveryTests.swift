import Foundation
import HTTPTypes
import StenoServer
import Testing

/// Deliveries to a real receiver on 127.0.0.1 (allowlisted), from dispatchers on a real SQLite store.
@Suite struct WebhookDeliveryTests {
    private func store(_ directory: TemporaryDirectory) throws -> SQLiteJobStore {
        try SQLiteJobStore(path: directory.url.appendingPathComponent("steno.sqlite"))
    }

    @Test func deliversASignedPayloadWithTheCustomHeader() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: receiver.url("/hook"), header: ("Authorization", "Bearer t0ken"))
            #expect(try await WebhookTesting.dispatcher(store).pass() == 1)

            let request = try #require(receiver.received(on: "/hook").first)
            let timestamp = try WebhookTesting.verifiedTimestamp(request)
            #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 60)
            #expect(request.headers[.authorization] == "Bearer t0ken")
            #expect(request.headers[.contentType] == "application/json")
            // A changed body or another secret does not verify.
            let header = try #require(request.headers[HTTPField.Name("Steno-Signature")!])
            #expect(WebhookSigner(secret: WebhookTesting.secret).verify(header, body: request.body))
            #expect(!WebhookSigner(secret: WebhookTesting.secret).verify(header, body: request.body + Data(" ".utf8)))
            #expect(!WebhookSigner(secret: "another-secret-0123456789").verify(header, body: request.body))

            let payload = try WebhookTesting.payload(request)
            let id = job.id.uuidString.lowercased()
            #expect(payload["job_id"] as? String == id)
            #expect(payload["status"] as? String == "completed")
            #expect(payload["result_url"] as? String == "/transcribe/\(id)")
            #expect(payload["duration"] as? Double == 1)
            #expect(payload["language"] as? String == "en")
            #expect(payload["created_at"] is String && payload["completed_at"] is String)
            #expect(payload["error"] == nil)

            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(delivery.state == .delivered)
            #expect(delivery.attempts == 1)
            #expect(delivery.lastStatusCode == 200)
            #expect(delivery.deliveredAt != nil)
        }
    }

    /// 500, 500, 200: three attempts, with growing waits. With a 0.1 s base and ±25 % jitter the first retry is due
    /// 0.075–0.125 s after the first attempt and the second 0.15–0.25 s after the second: a load-proof check of
    /// growth is that the second wait is at least 0.15 s, longer than the first could have been scheduled.
    @Test func retriesServerErrorsWithGrowingDelays() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run(script: ["/flaky": [500, 500]]) { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: receiver.url("/flaky"))
            let requests = try await WebhookTesting.running([try WebhookTesting.dispatcher(store)]) {
                _ = try await WebhookTesting.settled(store, job.id)
                return receiver.received(on: "/flaky")
            }
            #expect(requests.count == 3)
            guard requests.count == 3 else { return }
            let first = (requests[1].at - requests[0].at).seconds
            let second = (requests[2].at - requests[1].at).seconds
            #expect(first >= 0.075, "first retry after \(first) s")
            #expect(second >= 0.15, "second retry after \(second) s")
            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(delivery.state == .delivered)
            #expect(delivery.attempts == 3)
            #expect(delivery.lastStatusCode == 200)
            // Every attempt is signed afresh, over the same body.
            for request in requests { _ = try WebhookTesting.verifiedTimestamp(request) }
            #expect(Set(requests.map(\.body)).count == 1)
        }
    }

    /// 429 with `Retry-After: 1` waits the second, not the 0.1 s backoff.
    @Test func honoursRetryAfter() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run(script: ["/busy": [429]]) { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: receiver.url("/busy"))
            let requests = try await WebhookTesting.running([try WebhookTesting.dispatcher(store)]) {
                _ = try await WebhookTesting.settled(store, job.id)
                return receiver.received(on: "/busy")
            }
            #expect(requests.count == 2)
            if requests.count == 2 { #expect((requests[1].at - requests[0].at).seconds >= 0.95) }
            #expect(try await store.webhook(jobID: job.id)?.state == .delivered)
        }
    }

    @Test func aClientErrorStopsRetries() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run(script: ["/gone": [400]]) { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: receiver.url("/gone"))
            let delivery = try await WebhookTesting.running([try WebhookTesting.dispatcher(store)]) {
                let settled = try await WebhookTesting.settled(store, job.id)
                try await Task.sleep(for: .milliseconds(400))  // several backoff periods: nothing more comes
                return settled
            }
            #expect(receiver.received(on: "/gone").count == 1)
            #expect(delivery.state == .failed)
            #expect(delivery.attempts == 1)
            #expect(delivery.lastStatusCode == 400)
        }
    }

    @Test func givesUpAfterTheLastAttempt() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run(script: ["/down": [503, 503, 503, 503]]) { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: receiver.url("/down"))
            let dispatcher = try WebhookTesting.dispatcher(store) {
                $0.webhookMaxAttempts = 3
                $0.webhookBackoff = 0.02
            }
            let delivery = try await WebhookTesting.running([dispatcher]) { try await WebhookTesting.settled(store, job.id) }
            #expect(receiver.received(on: "/down").count == 3)
            #expect(delivery.state == .failed)
            #expect(delivery.attempts == 3)
            #expect(delivery.lastStatusCode == 503)
            #expect(delivery.lastError?.contains("gave up after 3 attempts") == true)
        }
    }

    @Test func redirectsAreNotFollowed() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run(script: ["/moved": [302]]) { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: receiver.url("/moved"))
            let delivery = try await WebhookTesting.running([try WebhookTesting.dispatcher(store)]) {
                try await WebhookTesting.settled(store, job.id)
            }
            #expect(receiver.received(on: "/moved").count == 1)
            #expect(receiver.received(on: "/redirected").isEmpty)
            #expect(delivery.state == .failed)
            #expect(delivery.lastStatusCode == 302)
            #expect(delivery.lastError?.contains("redirects are not followed") == true)
        }
    }

    /// The address is checked again at delivery: a callback accepted once (here: stored directly) to a host that
    /// now resolves to loopback is refused without a request, for good.
    @Test func deliveryTimeCheckRefusesPrivateAddresses() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run { receiver in
            let job = try await WebhookTesting.finishedJob(store, url: "http://localhost:\(receiver.port)/hook")
            #expect(try await WebhookTesting.dispatcher(store, allow: []).pass() == 1)
            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(receiver.received.isEmpty)
            #expect(delivery.state == .failed)
            #expect(delivery.lastStatusCode == nil)
            #expect(delivery.lastError?.contains("loopback") == true)
        }
    }

    /// The attempt connects to the address that was checked, with no lookup of its own: a name only the policy's
    /// resolver knows (the system's does not) is reached, and the receiver sees the name in `Host`.
    @Test func theConnectionGoesToTheCheckedAddress() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run { receiver in
            let dispatcher = try WebhookTesting.dispatcher(store, names: ["hooks.steno-test.invalid": ["127.0.0.1"]])
            let job = try await WebhookTesting.finishedJob(store, url: "http://hooks.steno-test.invalid:\(receiver.port)/pinned")
            #expect(try await dispatcher.pass() == 1)
            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(delivery.state == .delivered, "\(delivery.lastError ?? "")")
            #expect(receiver.received(on: "/pinned").first?.authority == "hooks.steno-test.invalid:\(receiver.port)")
        }
    }

    /// A name with several allowed addresses: one attempt tries them in turn. The first refuses connections
    /// (nothing listens on 127.0.0.2), so the request goes to the second, where the receiver is: delivered on
    /// the first attempt.
    @Test func aRefusedAddressPassesTheAttemptToTheNext() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run { receiver in
            let dispatcher = try WebhookTesting.dispatcher(
                store, allow: ["127.0.0.0/8"], names: ["hooks.steno-test.invalid": ["127.0.0.2", "127.0.0.1"]])
            let job = try await WebhookTesting.finishedJob(store, url: "http://hooks.steno-test.invalid:\(receiver.port)/second")
            #expect(try await dispatcher.pass() == 1)
            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(delivery.state == .delivered, "\(delivery.lastError ?? "")")
            #expect(delivery.attempts == 1)
            #expect(receiver.received(on: "/second").count == 1)
        }
    }

    /// An HTTP answer ends the attempt, whatever it is: a 503 from the first address is the attempt's outcome
    /// (retried later as a whole), and the second address is not tried (it would refuse, and the attempt would
    /// then be recorded as a connection failure).
    @Test func anAnswerEndsTheAttempt() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run(script: ["/busy": [503]]) { receiver in
            let dispatcher = try WebhookTesting.dispatcher(
                store, allow: ["127.0.0.0/8"], names: ["hooks.steno-test.invalid": ["127.0.0.1", "127.0.0.2"]])
            let job = try await WebhookTesting.finishedJob(store, url: "http://hooks.steno-test.invalid:\(receiver.port)/busy")
            #expect(try await dispatcher.pass() == 1)
            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(delivery.state == .pending)
            #expect(delivery.attempts == 1)
            #expect(delivery.lastStatusCode == 503)
            #expect(delivery.lastError == "the receiver answered 503")
            #expect(receiver.received(on: "/busy").count == 1)
        }
    }

    /// No address connects: one failed attempt naming each address, retried later (a connection failure is
    /// transient); IPv4 addresses are tried before IPv6 ones.
    @Test func noAddressConnectingIsOneFailedAttempt() async throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try await WebhookReceiver.run { receiver in
            let dispatcher = try WebhookTesting.dispatcher(
                store, allow: ["127.0.0.0/8", "::1"], names: ["hooks.steno-test.invalid": ["::1", "127.0.0.2", "127.0.0.3"]])
            let job = try await WebhookTesting.finishedJob(store, url: "http://hooks.steno-test.invalid:\(receiver.port)/none")
            #expect(try await dispatcher.pass() == 1)
            let delivery = try #require(try await store.webhook(jobID: job.id))
            #expect(delivery.state == .pending)
            #expect(delivery.attempts == 1)
            #expect(delivery.lastStatusCode == nil)
            let error = try #require(delivery.lastError)
            let tried = ["127.0.0.2", "127.0.0.3", "::1"].map { error.range(of: "\($0): ")?.lowerBound }
            #expect(tried.allSatisfy { $0 != nil }, "\(error)")
            #expect(tried.compactMap { $0 } == tried.compactMap { $0 }.sorted(), "tried in order: \(error)")
            #expect(error.hasPrefix("could not connect to hooks.steno-test.invalid"), "\(error)")
            #expect(receiver.received.isEmpty)
        }
    }

    /// A delivery due while the server was down is sent by the next run.
    @Test func aPendingDeliverySurvivesARestart() async throws {
        let directory = try TemporaryDirectory()
        try await WebhookReceiver.run(script: ["/later": [503]]) { receiver in
            let id: UUID
            do {
                let before = try store(directory)
                id = try await WebhookTesting.finishedJob(before, url: receiver.url("/later")).id
                // The first run gets a 503 and stops before the retry.
                #expect(try await WebhookTesting.dispatcher(before).pass() == 1)
                #expect(try await before.webhook(jobID: id)?.state == .pending)
            }
            let after = try store(directory)
            let delivery = try await WebhookTesting.running([try WebhookTesting.dispatcher(after)]) {
                try await WebhookTesting.settled(after, id)
            }
            #expect(delivery.state == .delivered)
            #expect(delivery.attempts == 2)
            #expect(receiver.received(on: "/later").count == 2)
        }
    }

    /// Two dispatchers (two connections to one database file, as two processes) deliver 20 webhooks once each.
    @Test func twoDispatchersDeliverOnce() async throws {
        let directory = try TemporaryDirectory()
        let stores = [try store(directory), try store(directory)]
        try await WebhookReceiver.run { receiver in
            var ids = Set<String>()
            for _ in 0..<20 {
                ids.insert(try await WebhookTesting.finishedJob(stores[0], url: receiver.url("/once")).id.uuidString.lowercased())
            }
            // Once per delivery is the leases' promise. An attempt that times out on a starved machine is retried
            // (at least once, by design) and would count twice here, so the attempts get all the time they need.
            let dispatchers = try stores.map { try WebhookTesting.dispatcher($0) { $0.webhookTimeout = 60 } }
            let delivered = try await WebhookTesting.deliveredJobIDs(by: dispatchers, to: receiver, on: "/once", count: 20)
            #expect(delivered.count == 20)
            #expect(Set(delivered.compactMap { $0 }) == ids)
        }
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
