import Foundation
import Hummingbird
import StenoEngine

/// A finished job's result in the shape OpenAI's audio API answers with: `json` (`{text}`), plain `text`,
/// `srt` and `vtt` (the engine's renderings), and `verbose_json` with segments and words as the
/// `timestamp_granularities` asked (no granularity or `segment`: segments; `word`: words and `segments: null`;
/// both: both).
enum OpenAIResponses {
    static func response(_ result: TranscriptionResult, task: WhisperTask, request: OpenAIRequest) throws -> Response {
        switch request.format {
        case .json:
            return try json(Plain(text: result.text, usage: Usage(seconds: result.duration)))
        case .text: return plainText(result.rendered(as: .text))
        case .srt: return plainText(result.rendered(as: .srt))
        case .vtt: return plainText(result.rendered(as: .vtt))
        case .verboseJSON:
            let wantsWords = request.granularities.contains(.word)
            let wantsSegments = !wantsWords || request.granularities.contains(.segment)
            let verbose = Verbose(
                // A translation's language is its output's, as OpenAI reports it (the spoken one is in the job API).
                task: task.rawValue, language: task == .translate ? "english" : WhisperLanguageNames.name(of: result.language),
                duration: result.duration,
                text: result.text,
                segments: wantsSegments ? result.segments.map(Segment.init) : nil,
                words: wantsWords ? result.segments.flatMap { $0.words ?? [] }.map(Word.init) : nil,
                usage: Usage(seconds: result.duration))
            return try json(verbose)
        }
    }

    /// `/v1/models`: the served models, then `whisper-1` (the default model under OpenAI's name).
    static func modelList(_ models: ModelCatalog, created: Int) throws -> Response {
        try json(ModelList(data: modelObjects(models, created: created)))
    }

    static func modelObjects(_ models: ModelCatalog, created: Int) -> [Model] {
        models.entries.map { Model(id: $0.name, created: created) } + [Model(id: OpenAIRequest.defaultModelAlias, created: created)]
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func json(_ value: some Encodable) throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    // MARK: - Stream events

    struct Delta: Encodable {
        let type = "transcript.text.delta"
        let delta: String
    }

    struct Done: Encodable {
        let type = "transcript.text.done"
        let text: String
        let usage: Usage
    }

    /// An error inside a stream: OpenAI's error body as the event's data (the SDK raises it).
    struct StreamError: Encodable {
        struct Detail: Encodable {
            let message: String
            let type: String
            let code: String
        }
        let error: Detail
    }

    /// OpenAI answers `text`, `srt` and `vtt` as plain text; the SDK returns the body as a string.
    private static func plainText(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: - The shapes

    struct Usage: Encodable {
        let type = "duration"
        let seconds: Int
        /// Billed seconds, as OpenAI reports them: whole seconds, rounded up.
        init(seconds: Double) { self.seconds = Int(seconds.rounded(.up)) }
    }

    struct Plain: Encodable {
        let text: String
        let usage: Usage
    }

    struct Verbose: Encodable {
        let task: String
        let language: String
        let duration: Double
        let text: String
        let segments: [Segment]?
        let words: [Word]?
        let usage: Usage

        enum CodingKeys: String, CodingKey { case task, language, duration, text, segments, words, usage }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(task, forKey: .task)
            try container.encode(language, forKey: .language)
            try container.encode(duration, forKey: .duration)
            try container.encode(text, forKey: .text)
            // `segments` is null (not absent) when only words were asked for; `words` is absent unless asked.
            try container.encode(segments, forKey: .segments)
            try container.encodeIfPresent(words, forKey: .words)
            try container.encode(usage, forKey: .usage)
        }
    }

    struct Segment: Encodable {
        let id: Int
        let seek: Int
        let start: Double
        let end: Double
        let text: String
        let tokens: [Int]
        let temperature: Double
        let avgLogprob: Double
        let compressionRatio: Double
        let noSpeechProb: Double

        init(_ segment: TranscribedSegment) {
            id = segment.id
            seek = segment.seek
            start = segment.start
            end = segment.end
            text = segment.text
            tokens = segment.tokens
            temperature = segment.temperature
            // A window decoded to nothing has a log-probability of -infinity, which JSON cannot carry.
            avgLogprob = segment.avgLogprob.isFinite ? segment.avgLogprob : -1e9
            compressionRatio = segment.compressionRatio.isFinite ? segment.compressionRatio : 0
            noSpeechProb = segment.noSpeechProb.isFinite ? segment.noSpeechProb : 0
        }

        enum CodingKeys: String, CodingKey {
            case id, seek, start, end, text, tokens, temperature
            case avgLogprob = "avg_logprob"
            case compressionRatio = "compression_ratio"
            case noSpeechProb = "no_speech_prob"
        }
    }

    struct Word: Encodable {
        let word: String
        let start: Double
        let end: Double

        /// OpenAI's words carry no leading space.
        init(_ word: TranscribedWord) {
            self.word = word.word.trimmingCharacters(in: .whitespaces)
            start = word.start
            end = word.end
        }
    }

    struct Model: Encodable {
        let id: String
        let object = "model"
        let created: Int
        let ownedBy = "steno"

        enum CodingKeys: String, CodingKey {
            case id, object, created
            case ownedBy = "owned_by"
        }
    }

    struct ModelList: Encodable {
        let object = "list"
        let data: [Model]
    }
}
