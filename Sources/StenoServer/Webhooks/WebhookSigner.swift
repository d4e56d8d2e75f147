import Crypto
package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Signs webhook bodies so that receivers can tell Steno's calls from forgeries and replays:
/// `Steno-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the UTF-8 bytes of the
/// secret. Receivers recompute the HMAC over the raw body, compare in constant time, and refuse old timestamps.
package struct WebhookSigner: Sendable {
    package static let header = "Steno-Signature"
    private let key: SymmetricKey

    package init(secret: String) {
        key = SymmetricKey(data: Data(secret.utf8))
    }

    /// The header's value for `body` sent at `timestamp`.
    package func signature(timestamp: Int, body: Data) -> String {
        var message = Data("\(timestamp).".utf8)
        message.append(body)
        let code = HMAC<SHA256>.authenticationCode(for: message, using: key)
        return "t=\(timestamp),v1=" + code.map { String(format: "%02x", $0) }.joined()
    }

    /// Checks a header's value against `body` (for the tests and for anyone embedding Steno's receiver side).
    package func verify(_ header: String, body: Data) -> Bool {
        var timestamp: Int?
        var given: [UInt8]?
        for field in header.split(separator: ",") {
            let pair = field.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int(pair[1]) }
            if pair[0] == "v1" { given = Self.bytes(hex: pair[1]) }
        }
        guard let timestamp, let given else { return false }
        var message = Data("\(timestamp).".utf8)
        message.append(body)
        return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: message, using: key)
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

extension WebhookSigner {
    /// The file in the data directory that holds the secret when none is configured.
    package static let secretFileName = "webhook-secret"

    /// The configured secret or, for a single node, the one kept in `<data>/webhook-secret`: 32 random bytes as
    /// hex, made at the first start (mode 0600) and kept across restarts, so receivers configure it once.
    /// Created with a link from a complete temporary file, so a crash or a concurrent start never leaves a
    /// partial secret.
    /// Nodes sharing a database (`sharedDatabase`) must be given the secret, since each would make its own: nil
    /// then, and the node takes and delivers no webhooks.
    package static func secret(configured: String?, dataDirectory: URL, sharedDatabase: Bool = false) throws -> String? {
        if let configured, !configured.isEmpty { return configured }
        if sharedDatabase { return nil }
        let file = dataDirectory.appendingPathComponent(secretFileName)
        if let existing = try? readSecret(file) { return existing }
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { bytes in bytes.map { String(format: "%02x", $0) }.joined() }
        let temporary = dataDirectory.appendingPathComponent(".\(secretFileName).\(SystemRandom.token())")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data((secret + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        defer { unlink(temporary.path) }
        if link(temporary.path, file.path) != 0 && errno != EEXIST {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        return try readSecret(file) as String
    }

    private static func readSecret(_ file: URL) throws -> String {
        let text = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: file.path]) }
        return text
    }
}
