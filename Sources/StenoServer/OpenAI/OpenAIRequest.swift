import Foundation
import StenoEngine

/// One request to `POST /v1/audio/transcriptions` or `/v1/audio/translations`, read from OpenAI's multipart
/// fields: the job it becomes (through the job form's own checks, so a language or option is accepted or
/// refused exactly as `POST /transcribe` would) and the shape of the answer the client asked for.
struct OpenAIRequest: Sendable {
    enum ResponseFormat: String, Sendable, CaseIterable {
        case json, text, srt, vtt
        case verboseJSON = "verbose_json"
    }

    enum Granularity: String, Sendable, CaseIterable {
        case word, segment
    }

    var options: JobOptions
    var format: ResponseFormat
    /// `timestamp_granularities[]`; only meaningful with `verbose_json`.
    var granularities: Set<Granularity>
    /// `stream=true`: server-sent events as windows are decoded instead of one answer.
    var stream: Bool

    /// The OpenAI model name that clients send by default; it means the server's default model.
    static let defaultModelAlias = "whisper-1"

    init(_ fields: UploadController.FormFields, task: WhisperTask, models: ModelCatalog) throws {
        let values = fields.values
        func field(_ name: String) -> String? {
            guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }

        let formatText = field("response_format")?.lowercased() ?? ResponseFormat.json.rawValue
        guard let format = ResponseFormat(rawValue: formatText) else {
            throw APIError(.badRequest, code: "invalid_value", param: "response_format",
                           message: "response_format must be one of \(ResponseFormat.allCases.map(\.rawValue).joined(separator: ", ")), not '\(formatText)'")
        }
        self.format = format

        // The SDK sends arrays as repeated `name[]` parts; a plain `name` is taken too.
        let granularityTexts = (fields.repeated["timestamp_granularities[]"] ?? []) + (fields.repeated["timestamp_granularities"] ?? [])
        var granularities = Set<Granularity>()
        for text in granularityTexts.flatMap({ $0.split(separator: ",") }).map({ $0.trimmingCharacters(in: .whitespaces).lowercased() })
        where !text.isEmpty {
            guard let granularity = Granularity(rawValue: text) else {
                throw APIError(.badRequest, code: "invalid_value", param: "timestamp_granularities",
                               message: "timestamp_granularities[] takes word and segment, not '\(text)'")
            }
            granularities.insert(granularity)
        }
        // OpenAI's rule: timings are only in verbose_json, so asking for words in another format is an error.
        if granularities.contains(.word), format != .verboseJSON {
            throw APIError(.badRequest, code: "invalid_value", param: "timestamp_granularities",
                           message: "timestamp_granularities[]=word needs response_format=verbose_json")
        }
        self.granularities = granularities

        let streamText = field("stream")?.lowercased()
        guard streamText == nil || ["true", "false", "1", "0"].contains(streamText!) else {
            throw APIError(.badRequest, code: "invalid_value", param: "stream", message: "stream must be true or false, not '\(streamText!)'")
        }
        stream = streamText == "true" || streamText == "1"
        // OpenAI streams transcriptions only, as text: no subtitles or timings in the events.
        if stream, task == .translate || !(format == .json || format == .text) {
            throw APIError(.badRequest, code: "invalid_value", param: "stream",
                           message: "stream=true is for transcriptions with response_format json or text")
        }

        if task == .translate, field("language") != nil {
            // OpenAI's translations take no language: the spoken one is detected, the output is English.
            throw APIError(.badRequest, code: "invalid_value", param: "language",
                           message: "translations take no language: the language spoken is detected and the text is English")
        }
        var jobFields: [String: String] = [:]
        if let model = field("model"), model != Self.defaultModelAlias { jobFields["model"] = model }
        jobFields["language"] = field("language")
        jobFields["prompt"] = values["prompt"]
        jobFields["temperature"] = field("temperature")
        jobFields["task"] = task.rawValue
        jobFields["word_timestamps"] = granularities.contains(.word) ? "true" : "false"
        options = try JobOptionsForm(models: models).options(jobFields)
    }
}
