import Foundation

/// Parses the human forms of durations and sizes that flags and environment variables accept.
package enum ValueParser {
    /// `90` and `90s` are seconds; `500ms`, `10m`, `24h`, `7d` and combinations like `1h30m` also parse.
    package static func seconds(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !text.isEmpty else { return nil }
        if let plain = Double(text) { return plain >= 0 ? plain : nil }
        var total = 0.0
        var number = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = ""
            while index < text.endIndex, text[index].isLetter {
                unit.append(text[index])
                index = text.index(after: index)
            }
            guard let value = Double(number) else { return nil }
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86400
            default: return nil
            }
            total += value * scale
            number = ""
        }
        // A trailing bare number after a unit (`1h30`) is ambiguous: refuse it.
        return number.isEmpty ? total : nil
    }

    /// `1048576`, `512k`, `100MB`, `2GiB` (k/m/g are powers of 1024, like `ulimit`).
    package static func bytes(_ text: String) -> Int64? {
        var text = text.trimmingCharacters(in: .whitespaces).lowercased()
        for suffix in ["ib", "b"] where text.hasSuffix(suffix) && text.count > suffix.count {
            text.removeLast(suffix.count)
            break
        }
        let scales: [Character: Double] = ["k": 1024, "m": 1024 * 1024, "g": 1024 * 1024 * 1024, "t": 1024 * 1024 * 1024 * 1024]
        var scale = 1.0
        if let last = text.last, let unit = scales[last] {
            scale = unit
            text.removeLast()
        }
        guard let value = Double(text), value >= 0 else { return nil }
        return Int64(value * scale)
    }
}
