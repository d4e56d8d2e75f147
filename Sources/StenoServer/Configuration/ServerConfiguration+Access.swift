import Foundation

/// Who may use the server and how much: API keys, open mode, per-tenant limits, and connection timeouts.
extension ServerConfiguration {
    static let accessVariables = [
        "STENO_API_KEYS_FILE", "STENO_API_KEYS", "STENO_OPEN", "STENO_MAX_JOBS_PER_KEY", "STENO_RATE_LIMIT",
        "STENO_IDLE_TIMEOUT", "STENO_UPLOAD_STALL_TIMEOUT", "STENO_MAX_CONNECTIONS", "STENO_HEADER_TIMEOUT",
        "STENO_MIN_UPLOAD_RATE",
    ]

    /// Reads the access settings of `settings` (already without empty values).
    mutating func readAccessSettings(_ settings: [String: String]) throws {
        if let path = settings["STENO_API_KEYS_FILE"] {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigurationError(description: "\(Self.describe("STENO_API_KEYS_FILE")): cannot read \(path)")
            }
            try apiKeys.add(fileText: text, source: path)
        }
        if let list = settings["STENO_API_KEYS"] {
            try apiKeys.add(list: list, source: "STENO_API_KEYS")
        }
        if let open = settings["STENO_OPEN"] {
            switch open.lowercased() {
            case "1", "true", "yes", "on": allowOpen = true
            case "0", "false", "no", "off": allowOpen = false
            default: throw ConfigurationError(description: "--open/STENO_OPEN=\(open) is not true or false")
            }
        }
        if let text = settings["STENO_MAX_JOBS_PER_KEY"] {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw ConfigurationError(description: "\(Self.describe("STENO_MAX_JOBS_PER_KEY"))=\(text) is not a whole number (0 = no limit)")
            }
            maxJobsPerKey = value == 0 ? nil : value
        }
        if let text = settings["STENO_RATE_LIMIT"] {
            if ["0", "off", "none"].contains(text.lowercased()) {
                rateLimit = nil
            } else {
                guard let limit = RateLimit(parsing: text) else {
                    throw ConfigurationError(description: "\(Self.describe("STENO_RATE_LIMIT"))=\(text) is not a rate like 20/s, 600/m or 5000/h")
                }
                rateLimit = limit
            }
        }
        func timeout(_ name: String) throws -> Double? {
            guard let text = settings[name] else { return nil }
            guard let value = ValueParser.seconds(text), value > 0 else {
                throw ConfigurationError(description: "\(Self.describe(name))=\(text) is not a positive duration (like 30s, 2m)")
            }
            return value
        }
        if let value = try timeout("STENO_IDLE_TIMEOUT") { idleTimeout = value }
        if let value = try timeout("STENO_UPLOAD_STALL_TIMEOUT") { uploadStallTimeout = value }
        if let value = try timeout("STENO_HEADER_TIMEOUT") { headerTimeout = value }
        if let text = settings["STENO_MAX_CONNECTIONS"] {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 1 else {
                throw ConfigurationError(description: "\(Self.describe("STENO_MAX_CONNECTIONS"))=\(text) is not a whole number of at least 1")
            }
            maxConnections = value
        }
        if let text = settings["STENO_MIN_UPLOAD_RATE"] {
            let rate = text.lowercased().hasSuffix("/s") ? String(text.dropLast(2)) : text
            guard let value = ValueParser.bytes(rate), value >= 0 else {
                throw ConfigurationError(description: "\(Self.describe("STENO_MIN_UPLOAD_RATE"))=\(text) is not a rate in bytes per second (like 1K, 512, 0 for none)")
            }
            minUploadRate = value
        }
    }

    /// Open mode (no keys) serves only this machine unless told to run open: anyone who can reach a public
    /// address could otherwise read every job.
    public func checkExposure() throws {
        guard apiKeys.isEmpty, !allowOpen, !Self.isLoopback(host) else { return }
        throw ConfigurationError(description: """
            refusing to listen on \(host) without API keys: anyone who reaches it could read every job. \
            Give keys (--api-keys-file/STENO_API_KEYS_FILE or STENO_API_KEYS; `steno keys generate NAME` makes one), \
            listen on 127.0.0.1, or pass --open/STENO_OPEN=true to run without keys on purpose
            """)
    }

    /// `localhost`, `127.0.0.0/8` and `::1`.
    public static func isLoopback(_ host: String) -> Bool {
        let host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
