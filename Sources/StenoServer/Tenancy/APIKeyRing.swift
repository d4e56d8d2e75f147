public import Foundation
import Crypto

/// The configured API keys, kept only as SHA-256 digests, each with its tenant.
///
/// Sources, merged: a keys file (`--api-keys-file`/`STENO_API_KEYS_FILE`) with one key per line,
///
///     # comment
///     alice  sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
///     bob    steno_Zm9vYmFyYmF6cXV4...        (a plaintext key: hashed when read)
///
/// and `STENO_API_KEYS`, the same entries as `tenant=key` separated by commas. A tenant may have several keys
/// (rotation). A presented key is hashed and compared with every digest in constant time.
public struct APIKeyRing: Sendable {
    struct Entry: Sendable {
        let tenant: String
        let digest: [UInt8]
    }

    private var entries: [Entry] = []

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    public var tenants: Set<String> { Set(entries.map(\.tenant)) }

    /// Shortest plaintext key accepted: guessing must be hopeless.
    public static let minimumKeyLength = 20

    /// Adds a key for `tenant`: plaintext, or `sha256:` and 64 hex digits. A key listed twice is refused: it
    /// could belong to only one tenant.
    public mutating func add(tenant: String, key: String) throws {
        let before = entries.count
        try addEntry(tenant: tenant, key: key)
        guard let added = entries.last, entries.count > before else { return }
        if entries.dropLast().contains(where: { Self.constantTimeEqual($0.digest, added.digest) }) {
            entries.removeLast()
            throw ConfigurationError(description: "a key of tenant '\(tenant)' is listed twice")
        }
    }

    private mutating func addEntry(tenant: String, key: String) throws {
        guard Tenant.isValidName(tenant) else {
            throw ConfigurationError(description: "'\(tenant)' is not a tenant name (letters, digits, '.', '_', '-'; at most 64)")
        }
        if key.hasPrefix("sha256:") {
            guard let digest = Self.hex(key.dropFirst("sha256:".count)), digest.count == SHA256.byteCount else {
                throw ConfigurationError(description: "the key of tenant '\(tenant)' is not sha256: followed by 64 hex digits")
            }
            entries.append(Entry(tenant: tenant, digest: digest))
        } else {
            // The key itself is never quoted in a message: only its owner and what is wrong with it.
            guard key.count >= Self.minimumKeyLength, key.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "," }) else {
                throw ConfigurationError(description: "the key of tenant '\(tenant)' must be at least \(Self.minimumKeyLength) printable ASCII characters without spaces or commas (use `steno keys generate`)")
            }
            entries.append(Entry(tenant: tenant, digest: Self.digest(key)))
            LogRedaction.register(secret: key)
        }
    }

    /// Adds the lines of a keys file: `tenant key`, blank lines and `#` comments ignored.
    public mutating func add(fileText: String, source: String) throws {
        for (index, rawLine) in fileText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard fields.count == 2 else {
                throw ConfigurationError(description: "\(source) line \(index + 1): expected 'tenant key' (two fields)")
            }
            do {
                try add(tenant: String(fields[0]), key: String(fields[1]))
            } catch let error as ConfigurationError {
                throw ConfigurationError(description: "\(source) line \(index + 1): \(error.description)")
            }
        }
    }

    /// Adds `tenant=key,tenant=key` (the form of `STENO_API_KEYS`).
    public mutating func add(list: String, source: String) throws {
        for item in list.split(separator: ",") {
            let item = item.trimmingCharacters(in: .whitespaces)
            if item.isEmpty { continue }
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else {
                throw ConfigurationError(description: "\(source): expected tenant=key entries separated by commas")
            }
            try add(tenant: pair[0].trimmingCharacters(in: .whitespaces), key: pair[1].trimmingCharacters(in: .whitespaces))
        }
    }

    /// The tenant of a presented key, or nil. Every digest is compared, in time independent of the contents.
    public func tenant(forKey key: String) -> String? {
        let presented = Self.digest(key)
        var match: String?
        for entry in entries where Self.constantTimeEqual(entry.digest, presented) {
            match = entry.tenant
        }
        return match
    }

    /// The line to put in a keys file for a key: its digest, so the file holds no secret.
    public static func fileLine(tenant: String, key: String) -> String {
        "\(tenant) sha256:" + digest(key).map { String(format: "%02x", $0) }.joined()
    }

    /// A new random key: `steno_` and 32 random bytes in URL-safe base64 (43 characters).
    public static func generateKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "steno_" + base64
    }

    static func digest(_ key: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(key.utf8)))
    }

    /// Equal lengths are compared byte by byte without an early exit.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    private static func hex(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
