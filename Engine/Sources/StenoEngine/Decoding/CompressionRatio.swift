import CZlib

/// Whisper's repetition detector: UTF-8 length over zlib-compressed length (level 6, as Python's default).
/// Decodings above 2.4 are usually stuck in a loop and retried at a higher temperature.
package func compressionRatio(_ text: String) -> Double {
    let bytes = Array(text.utf8)
    guard !bytes.isEmpty else { return 0 }
    var destinationLength = compressBound(uLong(bytes.count))
    var destination = [UInt8](repeating: 0, count: Int(destinationLength))
    let status = compress2(&destination, &destinationLength, bytes, uLong(bytes.count), 6)
    guard status == Z_OK, destinationLength > 0 else { return 0 }
    return Double(bytes.count) / Double(destinationLength)
}
