import Crypto
import Foundation
import HTTPTypes
import Logging
import StenoServer
import Testing

/// Dispatchers with short timings, and the checks a receiver makes.
enum WebhookTesting {
    static let secret = "test-secret-0123456789abcdef"

    static let quiet: Logger = {
        var logger = Logger(label: "steno.tests.webhooks")
        logger.logLevel = .critical
        return logger
    }()

    /// A dispatcher on `store` with test timings: first retry after 0.1 s, polls every 20 ms. With `names`, its
    /// policy resolves exactly those host names, to those addresses, in that order (and no others).
    static func dispatcher(
        _ store: any WebhookStore, allow: [String] = ["127.0.0.1"], names: [String: [String]]? = nil,
        _ adjust: (inout ServerConfiguration) -> Void = { _ in }
    ) throws -> WebhookDispatcher {
        var configuration = ServerConfiguration()
        configuration.webhookBackoff = 0.1
        configuration.webhookTimeout = 5
        configuration.webhookPollInterval = 0.02
        configuration.webhookMaxAttempts = 5
        adjust(&configuration)
        var policy = try CallbackPolicy(allowlist: allow)
        if let names {
            let table = names.mapValues { $0.compactMap(IPAddress.init) }
            policy.resolver = { host in table[host] ?? [] }
        }
        return WebhookDispatcher(
            store: store, policy: policy, signer: WebhookSigner(secret: secret),
            clock: SystemClock(), metrics: StenoMetrics(), settings: .init(configuration), wake: WakeSignal(), logger: quiet)
    }

    /// Runs the dispatchers' service loops around `body`.
    static func running<T: Sendable>(_ dispatchers: [WebhookDispatcher], _ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            for dispatcher in dispatchers {
                group.addTask {
                    try await dispatcher.run()
                    return nil
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// A finished job whose webhook calls `url`, created now.
    @discardableResult
    static func finishedJob(_ store: any WebhookStore, url: String, header: (String, String)? = nil) async throws -> Job {
        try await WebhookStoreContract.job(
            store, at: Date(), webhook: WebhookRequest(url: url, headerName: header?.0, headerValue: header?.1))
    }

    /// Polls until the delivery leaves `pending`.
    static func settled(_ store: any WebhookStore, _ id: UUID, timeout: Double = 10) async throws -> WebhookDelivery {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if let delivery = try await store.webhook(jobID: id), delivery.state != .pending { return delivery }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try #require(try await store.webhook(jobID: id))
    }

    /// Checks `Steno-Signature` the way the README tells receivers to, with CryptoKit's HMAC rather than Steno's
    /// signer: `v1` = hex HMAC-SHA256 over "<t>.<body>". Returns `t`.
    static func verifiedTimestamp(_ request: WebhookReceiver.Received, secret: String = secret) throws -> Int {
        let header = try #require(request.headers[HTTPField.Name("Steno-Signature")!])
        var fields: [String: String] = [:]
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        let timestamp = try #require(fields["t"].flatMap(Int.init))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(timestamp).".utf8) + request.body, using: SymmetricKey(data: Data(secret.utf8)))
        #expect(fields["v1"] == mac.map { String(format: "%02x", $0) }.joined(), "signature does not verify")
        return timestamp
    }

    /// Runs `dispatchers` until `count` callbacks reached `path`, waits a moment longer for a duplicate, and
    /// returns the `job_id` of every callback received there.
    static func deliveredJobIDs(
        by dispatchers: [WebhookDispatcher], to receiver: WebhookReceiver, on path: String, count: Int
    ) async throws -> [String?] {
        let received = try await running(dispatchers) {
            _ = try await receiver.wait(for: count, on: path)
            try await Task.sleep(for: .milliseconds(300))
            return receiver.received(on: path)
        }
        return try received.map { try payload($0)["job_id"] as? String }
    }

    static func payload(_ request: WebhookReceiver.Received) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
    }
}
