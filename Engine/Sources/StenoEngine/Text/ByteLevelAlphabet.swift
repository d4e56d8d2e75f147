/// GPT-2's byte-level alphabet: every byte has a printable stand-in character, so that a BPE vocabulary of
/// strings can cover arbitrary bytes. Bytes that are already printable (33–126, 161–172, 174–255) stand for
/// themselves; the remaining 68 bytes, in increasing order, take U+0100, U+0101, … (so space is `Ġ`, U+0120).
enum ByteLevelAlphabet {
    /// The stand-in scalar of each byte.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isSelfRepresented(UInt8(byte)) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte behind each stand-in scalar, indexed by scalar value (0..<324); -1 where no byte maps there.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 256 + 68)
        for (byte, scalar) in scalarForByte.enumerated() {
            table[Int(scalar.value)] = Int16(byte)
        }
        return table
    }()

    private static func isSelfRepresented(_ byte: UInt8) -> Bool {
        (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
    }

    /// The vocabulary spelling of raw bytes.
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var result = String.UnicodeScalarView()
        for byte in bytes { result.append(scalarForByte[Int(byte)]) }
        return String(result)
    }

    /// Appends the raw bytes a vocabulary string spells. Returns false (appending the string's own UTF-8
    /// instead) when it is not spelled in the byte alphabet, as special tokens like `<|en|>` are not.
    @discardableResult
    static func appendBytes(of token: String, to bytes: inout [UInt8]) -> Bool {
        let start = bytes.count
        for scalar in token.unicodeScalars {
            let value = Int(scalar.value)
            guard value < byteForScalar.count, byteForScalar[value] >= 0 else {
                bytes.removeSubrange(start...)
                bytes.append(contentsOf: token.utf8)
                return false
            }
            bytes.append(UInt8(byteForScalar[value]))
        }
        return true
    }
}
