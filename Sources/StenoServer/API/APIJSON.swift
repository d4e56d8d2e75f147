import Foundation
import OpenAPIRuntime

/// One JSON representation for hand-written and generated responses: ISO 8601 times with milliseconds.
enum APIJSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISO8601DateTranscoder.iso8601WithFractionalSeconds.encode(date))
        }
        return encoder
    }()

    static let runtimeConfiguration = Configuration(
        dateTranscoder: .iso8601WithFractionalSeconds, jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes])
}
