import Foundation

/// Who may reach the server: open mode (no keys) only on loopback unless asked for.
extension ServerConfiguration {
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
