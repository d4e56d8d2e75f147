import AsyncHTTPClient
import Foundation
package import Logging
import NIOCore
public import ServiceLifecycle

/// Delivers webhooks: claims the due deliveries of finished jobs (under a lease, so that of several dispatchers,
/// on one node or many, only one sends each), POSTs the signed payload, and records the outcome. Retries network
/// errors, 5xx, 408 and 429 with exponential backoff and jitter (a longer `Retry-After` wins); gives up on other
/// answers and after `maxAttempts`. Woken when a job finishes in this process; polls for the rest (jobs finished
/// on other nodes, retries coming due).
public final class WebhookDispatcher: Service {
    package struct Settings: Sendable {
        var maxAttempts: Int
        /// First retry delay; doubles with each attempt, ±25 % jitter.
        var backoff: TimeInterval
        var maxBackoff: TimeInterval = 3600
        /// Whole-request deadline (connect, send, answer head); the connect timeout is at most 5 s of it.
        var timeout: TimeInterval
        var pollInterval: TimeInterval
        var concurrency = 4
        /// Base of `result_url` in payloads.
        var publicURL: String?

        package init(_ configuration: ServerConfiguration) {
            maxAttempts = max(1, configuration.webhookMaxAttempts)
            backoff = configuration.webhookBackoff
            timeout = configuration.webhookTimeout
            pollInterval = configuration.webhookPollInterval
            publicURL = configuration.publicURL
        }

        /// A claim outlives any attempt by a wide margin: a delivery still in flight is never taken over.
        var leaseDuration: TimeInterval { timeout + 60 }
    }

    private let store: any WebhookStore
    private let policy: CallbackPolicy
    private let signer: WebhookSigner
    private let clock: any WallClock
    private let metrics: StenoMetrics
    private let settings: Settings
    private let logger: Logger
    private let wake: WakeSignal
    /// Opens once the store can be used (PostgreSQL migrated); nothing is claimed before.
    private let ready: StartGate
    package let instanceID = "steno-webhooks-" + SystemRandom.token().prefix(8)
    private let stopping = Locked(false)

    package init(
        store: any WebhookStore, policy: CallbackPolicy, signer: WebhookSigner, clock: any WallClock,
        metrics: StenoMetrics, settings: Settings, wake: WakeSignal, ready: StartGate = StartGate(open: true), logger: Logger
    ) {
        self.ready = ready
        self.store = store
        self.policy = policy
        self.signer = signer
        self.clock = clock
        self.metrics = metrics
        self.settings = settings
        self.wake = wake
        self.logger = logger
    }

    public func run() async throws {
        guard await ready.waitUnlessShuttingDown() else { return }
        await withGracefulShutdownHandler {
            while !stopping.current && !Task.isCancelled {
                let delivered = await pass()
                // A full batch may have more behind it: go on at once. Otherwise sleep until a job finishes here
                // or the poll interval is over.
                if delivered < settings.concurrency {
                    await wake.wait(timeout: .seconds(settings.pollInterval))
                }
            }
        } onGracefulShutdown: {
            // Attempts in flight finish (each within its timeout); no new claims.
            self.stopping.withLock { $0 = true }
            self.wake.signal()
        }
    }

    /// Claims one batch and attempts it, concurrently. Returns how many were claimed.
    @discardableResult
    package func pass() async -> Int {
        let claimed: [WebhookLease]
        do {
            claimed = try await store.claimWebhooks(
                owner: instanceID, limit: settings.concurrency, maxAttempts: settings.maxAttempts,
                leaseDuration: settings.leaseDuration, now: clock.now())
        } catch {
            logger.error("could not claim webhook deliveries", metadata: ["error": "\(error)"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for lease in claimed {
                group.addTask { await self.deliver(lease) }
            }
        }
        return claimed.count
    }

    // MARK: - One attempt

    private func deliver(_ lease: WebhookLease) async {
        let delivery = lease.delivery
        var log = logger
        log[metadataKey: "job_id"] = "\(delivery.jobID.uuidString.lowercased())"
        log[metadataKey: "attempt"] = "\(delivery.attempts)"
        let started = ContinuousClock.now
        let answer: Answer
        do {
            guard let job = try await store.job(id: delivery.jobID) else { return }
            let body = try WebhookPayload(job: job, publicURL: settings.publicURL).encoded()
            answer = await post(body, to: delivery.request)
        } catch {
            log.error("could not prepare the webhook", metadata: ["error": "\(error)"])
            return
        }
        // Cut short by a hard shutdown: the lease expires and the attempt is made again, by this node or another.
        if Task.isCancelled { return }

        let outcome = decide(answer, attempt: delivery.attempts)
        metrics.webhookAttempt(result: answer.metricLabel, seconds: started.duration(to: .now).seconds)
        do {
            guard try await store.recordWebhookAttempt(lease, outcome: outcome, now: clock.now()) else {
                log.warning("webhook outcome dropped: the delivery was taken over")
                return
            }
        } catch {
            log.error("could not record the webhook attempt", metadata: ["error": "\(error)"])
            return
        }
        switch outcome {
        case .delivered(let status):
            metrics.webhookFinished(.delivered)
            log.info("webhook delivered", metadata: ["status": "\(status)"])
        case .retry(let at, _, let error):
            log.notice("webhook attempt failed; retrying",
                       metadata: ["error": "\(error ?? "")", "delay": "\(at.timeIntervalSince(clock.now()))"])
        case .failed(_, let error):
            metrics.webhookFinished(.failed)
            log.warning("webhook delivery failed for good", metadata: ["error": "\(error ?? "")"])
        }
    }

    /// What one POST gave.
    struct Answer {
        var status: Int?
        var error: String?
        /// The error cannot pass on another attempt (a refused address).
        var isPermanent = false
        var retryAfter: TimeInterval?
        var location: String?

        var metricLabel: String {
            if let status { return "\(status / 100)xx" }
            return isPermanent ? "refused" : "error"
        }
    }

    /// One attempt: the host's addresses are checked now, then tried in turn (IPv4 first: the likelier route),
    /// each connection pinned to the address checked. An address that cannot be connected to (refused,
    /// unreachable, timed out) passes the request to the next; any other outcome, an HTTP answer above all, ends
    /// the attempt, so a receiver never gets the payload from one attempt twice. All addresses share the
    /// attempt's deadline.
    private func post(_ body: Data, to request: WebhookRequest) async -> Answer {
        let callback: CallbackURL
        let addresses: [IPAddress]
        do {
            callback = try policy.parse(request.url)
            addresses = try await policy.allowedAddresses(for: callback)
        } catch let refusal as CallbackRefusal {
            return Answer(error: refusal.reason, isPermanent: !refusal.isTransient)
        } catch {
            return Answer(error: "\(error)")
        }
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = .POST
        outgoing.headers.add(name: "Content-Type", value: "application/json")
        outgoing.headers.add(name: "User-Agent", value: "steno-webhooks")
        outgoing.headers.add(name: WebhookSigner.header, value: signer.signature(timestamp: Int(clock.now().timeIntervalSince1970), body: body))
        if let name = request.headerName, let value = request.headerValue {
            outgoing.headers.add(name: name, value: value)
        }
        outgoing.body = .bytes(ByteBuffer(bytes: body))

        // A literal address in the URL is connected to as it is; a name, through each of its checked addresses.
        let isLiteral = IPAddress(callback.host) != nil
        let ordered = addresses.filter(\.isIPv4) + addresses.filter { !$0.isIPv4 }
        let deadline = ContinuousClock.now + .milliseconds(Int64(settings.timeout * 1000))
        var unreachable: [String] = []
        for address in ordered {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, !Task.isCancelled else { break }
            let outcome = await send(outgoing, pinnedTo: isLiteral ? nil : address, callback: callback, timeout: remaining)
            switch outcome {
            case .success(let response):
                let status = Int(response.status.code)
                return Answer(
                    status: status,
                    error: (200..<300).contains(status) ? nil : "the receiver answered \(status)",
                    retryAfter: response.headers.first(name: "Retry-After").flatMap(Self.retryAfter(_:)),
                    location: response.headers.first(name: "Location"))
            case .failure(let error):
                guard let failure = ConnectionFailure.describe(error) else { return Answer(error: Self.describe(error)) }
                unreachable.append(isLiteral ? failure : "\(address): \(failure)")
            }
        }
        if unreachable.isEmpty { return Answer(error: "the receiver did not answer in time") }
        return Answer(error: "could not connect to \(callback.host) (\(unreachable.joined(separator: "; ")))")
    }

    /// Sends `outgoing` over a connection to `address` (nil: to the URL's own host, a literal address); the
    /// response head, or the error.
    private func send(
        _ outgoing: HTTPClientRequest, pinnedTo address: IPAddress?, callback: CallbackURL, timeout: Duration
    ) async -> Result<HTTPClientResponse, any Error> {
        let timeoutMilliseconds = max(1, Int64(timeout.seconds * 1000))
        let client = PinnedHTTPClient.make(
            for: callback, pinnedTo: address, connectMilliseconds: min(5000, timeoutMilliseconds), readMilliseconds: timeoutMilliseconds)
        let result: Result<HTTPClientResponse, any Error>
        do {
            result = .success(try await client.execute(outgoing, timeout: .milliseconds(timeoutMilliseconds)))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return result
    }

    /// Delivered on 2xx; retried on network errors, 5xx, 408 and 429 while attempts remain; failed otherwise.
    func decide(_ answer: Answer, attempt: Int) -> WebhookOutcome {
        let now = clock.now()
        if let status = answer.status {
            if (200..<300).contains(status) { return .delivered(statusCode: status) }
            let transient = status == 408 || status == 429 || (500..<600).contains(status)
            if !transient {
                let reason = (300..<400).contains(status)
                    ? "the receiver answered \(status) (redirects are not followed\(answer.location.map { "; Location: \($0)" } ?? ""))"
                    : "the receiver answered \(status)"
                return .failed(statusCode: status, error: reason)
            }
        } else if answer.isPermanent {
            return .failed(statusCode: nil, error: answer.error)
        }
        guard attempt < settings.maxAttempts else {
            return .failed(statusCode: answer.status, error: "\(answer.error ?? "failed"); gave up after \(attempt) attempts")
        }
        var delay = backoff(attempt: attempt)
        if let asked = answer.retryAfter { delay = max(delay, min(asked, settings.maxBackoff)) }
        return .retry(at: now.addingTimeInterval(delay), statusCode: answer.status, error: answer.error)
    }

    /// base × 2^(attempt-1), ±25 %, capped.
    private func backoff(attempt: Int) -> TimeInterval {
        let base = settings.backoff * pow(2, Double(max(0, attempt - 1)))
        return min(settings.maxBackoff, base * Double.random(in: 0.75...1.25))
    }

    /// `Retry-After` as seconds or as an HTTP date.
    static func retryAfter(_ value: String) -> TimeInterval? {
        let value = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(value) { return seconds >= 0 ? TimeInterval(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .readTimeout, .deadlineExceeded: return "the receiver did not answer in time"
            case .remoteConnectionClosed: return "the receiver closed the connection"
            default: return "request failed: \(error)"
            }
        }
        return "request failed: \(error)"
    }
}
