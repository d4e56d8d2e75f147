public import Logging
import OpenAPIRuntime
import Synchronization

/// The one place that keeps secrets out of the log. `steno serve` sends every log line through
/// `RedactingLogHandler`, which passes the message, the metadata and any attached error through `redact`:
/// - the configured secrets (plaintext API keys, the webhook signing secret), wherever they appear;
/// - anything shaped like a credential: the token after `Bearer` and the value of an `authorization` header
///   (keys stored only as digests are known to the server only when a client presents them, in that header).
/// Errors of the OpenAPI runtime describe the whole request, headers included: `describe(_:)` keeps only
/// the error underneath.
public enum LogRedaction {
    private static let secrets = Mutex<Set<String>>([])
    static let replacement = "<redacted>"

    /// Adds a value never to be logged. Short values are ignored (they would blank out ordinary words).
    public static func register(secret: String) {
        guard secret.utf8.count >= 8 else { return }
        secrets.withLock { _ = $0.insert(secret) }
    }

    /// `text` with every secret and credential-shaped value replaced by `<redacted>`.
    public static func redact(_ text: String) -> String {
        var result = text
        for secret in secrets.withLock({ $0 }) where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: replacement)
        }
        result = replacingValues(after: "bearer ", in: result, stoppingAt: tokenEnd)
        // A header's whole value (`Basic …` has a space in it), up to the next field of the printed list.
        result = replacingValues(after: "authorization: ", in: result, stoppingAt: fieldEnd)
        result = replacingValues(after: "authorization=", in: result, stoppingAt: fieldEnd)
        return result
    }

    /// An error as the log may show it: for the OpenAPI runtime's errors, the operation and the underlying
    /// error only (its own description lists the request's headers); always redacted.
    public static func describe(_ error: any Error) -> String {
        if let server = error as? ServerError {
            return redact("\(server.operationID): \(describe(server.underlyingError))")
        }
        return redact(String(describing: error))
    }

    /// Replaces the run of value characters after each case-insensitive `marker`.
    private static func replacingValues(after marker: String, in text: String, stoppingAt terminators: Set<Character>) -> String {
        guard text.range(of: marker, options: .caseInsensitive) != nil else { return text }
        var output = ""
        var rest = Substring(text)
        while let found = rest.range(of: marker, options: .caseInsensitive) {
            output += rest[..<found.lowerBound]
            output += rest[found]
            var end = found.upperBound
            while end < rest.endIndex, !terminators.contains(rest[end]) { end = rest.index(after: end) }
            // A value already redacted (by a rule before this one) is left as it is.
            let value = rest[found.upperBound..<end]
            output += value.isEmpty || value == Substring(replacement) ? String(value) : replacement
            rest = rest[end...]
        }
        return output + rest
    }

    /// Characters that end a token, and a header value, in the texts errors and headers are printed as.
    private static let tokenEnd: Set<Character> = [" ", "\t", "\n", "\r", "\"", "'", ",", ";", "]", ")", "}", ">"]
    private static let fieldEnd: Set<Character> = ["\n", "\r", "\"", "'", ",", ";", "]", ")", "}"]
}

/// Wraps the process's log handler so that nothing it writes carries a secret (see `LogRedaction`).
public struct RedactingLogHandler: LogHandler {
    private var base: any LogHandler

    public init(_ base: any LogHandler) {
        self.base = base
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = Logger.Message(stringLiteral: LogRedaction.redact(event.message.description))
        var metadata = event.metadata ?? [:]
        if let error = event.error {
            metadata["error"] = .string(LogRedaction.describe(error))
            event.error = nil
        }
        event.metadata = metadata.isEmpty ? nil : metadata.mapValues(Self.redact)
        base.log(event: event)
    }

    private static func redact(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(LogRedaction.redact(text))
        case .stringConvertible(let convertible): .string(LogRedaction.redact(convertible.description))
        case .array(let values): .array(values.map(redact))
        case .dictionary(let values): .dictionary(values.mapValues(redact))
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue.map(Self.redact) }
    }

    public var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue.mapValues(Self.redact) }
    }

    public var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }
}
