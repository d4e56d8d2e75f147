import Foundation

extension ServerConfiguration {
    /// The webhook settings, read by `init(settings:)` with its parsers.
    mutating func readWebhookSettings(
        _ settings: [String: String], seconds: (String) throws -> Double?, integer: (String) throws -> Int?
    ) throws {
        if let secret = settings["STENO_WEBHOOK_SECRET"] {
            guard secret.utf8.count >= 16 else {
                throw ConfigurationError(description: "\(Self.describe("STENO_WEBHOOK_SECRET")) must be at least 16 bytes")
            }
            webhookSecret = secret
        }
        if let allow = settings["STENO_WEBHOOK_ALLOW"] {
            do {
                webhookAllow = CallbackPolicy.entries(allow)
                _ = try CallbackPolicy(allowlist: webhookAllow)
            } catch let refusal as CallbackRefusal {
                throw ConfigurationError(description: "\(Self.describe("STENO_WEBHOOK_ALLOW")): \(refusal.reason)")
            }
        }
        if let timeout = try seconds("STENO_WEBHOOK_TIMEOUT") { webhookTimeout = timeout }
        if let attempts = try integer("STENO_WEBHOOK_MAX_ATTEMPTS") { webhookMaxAttempts = attempts }
        if let backoff = try seconds("STENO_WEBHOOK_BACKOFF") { webhookBackoff = backoff }
        if let url = settings["STENO_PUBLIC_URL"] {
            guard let parsed = URLComponents(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                  parsed.host?.isEmpty == false else {
                throw ConfigurationError(description: "\(Self.describe("STENO_PUBLIC_URL"))=\(url) is not an http(s) URL")
            }
            publicURL = url
        }
        guard webhookTimeout > 0 else { throw ConfigurationError(description: "webhook timeout must be above 0") }
        guard webhookMaxAttempts >= 1 else { throw ConfigurationError(description: "webhook max attempts must be at least 1") }
    }
}
