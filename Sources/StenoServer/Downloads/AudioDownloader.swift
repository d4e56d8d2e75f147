import AsyncHTTPClient
package import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import StenoEngine
#if canImport(Glibc)
import Glibc
#endif

/// Fetches a job's `audio_url` for the worker, under the rules webhooks follow against server-side request
/// forgery (`CallbackPolicy`: http or https, no credentials, every address of the host public unless the
/// allowlist names it, and the connection pinned to the address checked, so DNS rebinding cannot redirect it).
/// Redirects are followed only to URLs that pass the same checks, at most `maxRedirects`. The body streams to a
/// file under the size limit and two clocks: no byte for `stallTimeout`, or the whole download over `timeout`,
/// is too slow. Transient failures (connection errors, 5xx, 408, 429) are retried; every other outcome fails the
/// job with a code of its own.
package struct AudioDownloader: Sendable {
    package struct Settings: Sendable {
        package var maxBytes: Int64
        /// The whole download, every attempt and redirect included.
        package var timeout: TimeInterval
        /// Longest time without a byte.
        package var stallTimeout: TimeInterval = 30
        package var maxRedirects = 5
        /// Tries per download for transient failures, with `backoff` doubling between them.
        package var attempts = 3
        package var backoff: TimeInterval = 1

        package init(maxBytes: Int64, timeout: TimeInterval) {
            self.maxBytes = maxBytes
            self.timeout = timeout
        }
    }

    package let policy: CallbackPolicy
    package let settings: Settings

    /// `policy`'s allowlist decides which private addresses may be fetched; its refusals speak of the audio URL.
    package init(policy: CallbackPolicy, settings: Settings) {
        var policy = policy
        policy.subject = "audio"
        self.policy = policy
        self.settings = settings
    }

    /// The URL checks a submission gets, before any worker sees it: the syntax only (the addresses are checked
    /// by the worker that fetches it, on its network).
    package static let syntaxPolicy: CallbackPolicy = {
        var policy = CallbackPolicy()
        policy.subject = "audio"
        return policy
    }()

    /// The failure codes a download can end a job with.
    enum Code {
        /// The address (or a redirect's) is not one Steno may fetch.
        static let refused = "download_refused"
        static let tooLarge = "download_too_large"
        static let timeout = "download_timeout"
        /// The source answered an error, or could not be reached on any try.
        static let failed = "download_failed"
    }

    /// Downloads `text` into `file` (created or truncated); returns the byte count. Throws `JobFailure`, or
    /// `EngineError.cancelled` when `isCancelled` says so.
    package func download(_ text: String, to file: URL, isCancelled: @escaping @Sendable () -> Bool) async throws -> Int64 {
        let deadline = ContinuousClock.now + .milliseconds(Int64(settings.timeout * 1000))
        var lastProblem = ""
        for attempt in 1...max(1, settings.attempts) {
            if isCancelled() { throw EngineError.cancelled }
            do {
                return try await fetch(text, to: file, deadline: deadline, isCancelled: isCancelled)
            } catch let transient as TransientProblem {
                lastProblem = transient.reason
                guard attempt < settings.attempts else { break }
                let pause = Duration.milliseconds(Int64(settings.backoff * pow(2, Double(attempt - 1)) * 1000))
                guard ContinuousClock.now + pause < deadline else { break }
                try? await Task.sleep(for: pause)
            }
        }
        throw JobFailure(code: Code.failed, message: "the audio_url could not be fetched: \(lastProblem)")
    }

    private struct TransientProblem: Error {
        let reason: String
    }

    /// One try: follows allowed redirects, streams the body.
    private func fetch(_ text: String, to file: URL, deadline: ContinuousClock.Instant, isCancelled: @escaping @Sendable () -> Bool) async throws -> Int64 {
        var current = text
        for _ in 0...settings.maxRedirects {
            let target: CallbackURL
            let addresses: [IPAddress]
            do {
                target = try policy.parse(current)
                addresses = try await policy.allowedAddresses(for: target)
            } catch let refusal as CallbackRefusal {
                let reason = refusal.reason
                if refusal.isTransient { throw TransientProblem(reason: reason) }
                let message = current == text ? reason : "a redirect went to \(Self.safe(current)): \(reason)"
                // Only an address Steno may not call is a refusal; a name that does not exist is a failed fetch.
                throw JobFailure(code: refusal.isBlockedAddress ? Code.refused : Code.failed, message: message)
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw slow() }
            let isLiteral = IPAddress(target.host) != nil
            let ordered = addresses.filter(\.isIPv4) + addresses.filter { !$0.isIPv4 }
            switch try await get(target, pinnedTo: isLiteral ? nil : ordered.first, to: file, deadline: deadline, isCancelled: isCancelled) {
            case .body(let bytes): return bytes
            case .redirect(let location):
                guard let next = URL(string: location, relativeTo: target.url)?.absoluteURL.absoluteString else {
                    throw JobFailure(code: Code.failed, message: "the audio_url redirected to an invalid location")
                }
                current = next
            }
        }
        throw JobFailure(code: Code.failed, message: "the audio_url redirected more than \(settings.maxRedirects) times")
    }

    private enum Outcome {
        case body(Int64)
        case redirect(String)
    }

    private func get(
        _ target: CallbackURL, pinnedTo address: IPAddress?, to file: URL, deadline: ContinuousClock.Instant,
        isCancelled: @escaping @Sendable () -> Bool
    ) async throws -> Outcome {
        let stall = Int64(min(settings.stallTimeout, max(0.001, ContinuousClock.now.duration(to: deadline).seconds)) * 1000)
        let client = PinnedHTTPClient.make(
            for: target, pinnedTo: address, connectMilliseconds: min(10_000, stall), readMilliseconds: stall)
        defer { _ = client.shutdown() }
        var request = HTTPClientRequest(url: target.url.absoluteString)
        request.headers.add(name: "User-Agent", value: "steno-audio-fetch")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: NIODeadline.now() + .milliseconds(Int64(ContinuousClock.now.duration(to: deadline).seconds * 1000)))
        } catch {
            throw classify(error)
        }
        let status = Int(response.status.code)
        if (300..<400).contains(status), let location = response.headers.first(name: "Location") {
            return .redirect(location)
        }
        guard (200..<300).contains(status) else {
            let reason = "the source answered \(status)"
            if status == 408 || status == 429 || status >= 500 { throw TransientProblem(reason: reason) }
            throw JobFailure(code: Code.failed, message: "the audio_url could not be fetched: \(reason)")
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int64.init), length > settings.maxBytes {
            throw tooLarge()
        }
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: file) else {
            throw StorageFailure(code: errno)
        }
        defer { try? handle.close() }
        var bytes: Int64 = 0
        do {
            for try await chunk in response.body {
                bytes += Int64(chunk.readableBytes)
                if bytes > settings.maxBytes { throw tooLarge() }
                if ContinuousClock.now > deadline { throw slow() }
                if isCancelled() { throw EngineError.cancelled }
                try handle.write(contentsOf: chunk.readableBytesView)
            }
        } catch let failure as JobFailure {
            throw failure
        } catch let cancelled as EngineError {
            throw cancelled
        } catch {
            throw classify(error)
        }
        return .body(bytes)
    }

    private func tooLarge() -> JobFailure {
        JobFailure(code: Code.tooLarge, message: "the audio_url's content is larger than the limit of \(settings.maxBytes) bytes")
    }

    private func slow() -> JobFailure {
        JobFailure(code: Code.timeout, message: "the audio_url's content did not arrive within \(Int(settings.timeout)) s")
    }

    /// Timeouts are the source's slowness (final); connection failures may pass (retried).
    private func classify(_ error: any Error) -> any Error {
        if let error = error as? HTTPClientError {
            switch error {
            case .readTimeout, .deadlineExceeded:
                return JobFailure(code: Code.timeout, message: "the audio_url sent nothing for \(Int(settings.stallTimeout)) s, or did not finish within \(Int(settings.timeout)) s")
            default: break
            }
        }
        if let failure = ConnectionFailure.describe(error) { return TransientProblem(reason: failure) }
        if error is StorageFailure { return error }
        return TransientProblem(reason: "\(error)")
    }

    /// A URL as it may appear in a message: without its query, which may carry a signature.
    static func safe(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "an invalid URL" }
        components.query = nil
        components.fragment = nil
        return components.string ?? "an invalid URL"
    }
}
