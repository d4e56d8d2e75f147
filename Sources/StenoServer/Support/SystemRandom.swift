public import Foundation

/// Job ids, lease tokens and temporary names, from the kernel's random source.
///
/// Not Foundation's `UUID()`: on Linux it reads `/dev/urandom` through a file descriptor, and when the process
/// has none left it silently returns the same all-zero UUID every time, so two uploads could share an id.
/// Swift's `SystemRandomNumberGenerator` calls `getrandom(2)`, which needs no descriptor, and stops the process
/// rather than return anything guessable: no fallback.
public enum SystemRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A random (version 4) UUID.
    public static func uuid() -> UUID {
        var b = bytes(16)
        b[6] = (b[6] & 0x0F) | 0x40    // version 4
        b[8] = (b[8] & 0x3F) | 0x80    // RFC 4122 variant
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                           b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// A random UUID in lower case: lease tokens and temporary file names.
    public static func token() -> String {
        uuid().uuidString.lowercased()
    }
}
