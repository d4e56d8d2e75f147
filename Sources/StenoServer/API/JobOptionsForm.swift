import Foundation
import StenoEngine

/// The transcription options among `POST /transcribe`'s form fields: each field's parsing and its error in
/// one place (`422 invalid_option`, or `unsupported_language`, naming the field and the value).
struct JobOptionsForm {
    let supportedLanguages: Set<String>

    func options(_ fields: [String: String]) throws -> JobOptions {
        var options = JobOptions()
        if let language = fields["language"]?.trimmingCharacters(in: .whitespaces).lowercased(), !language.isEmpty {
            guard supportedLanguages.contains(language) else {
                throw APIError(.unprocessableContent, code: "unsupported_language",
                               message: "language '\(language)' is not supported by this model; supported: \(supportedLanguages.sorted().joined(separator: ", "))")
            }
            options.language = language
        }
        if let prompt = fields["prompt"], !prompt.isEmpty { options.prompt = prompt }
        if let flag = try Self.flag("word_timestamps", fields) { options.wordTimestamps = flag }
        options.vad = try Self.flag("vad", fields) == false ? nil : try speechDetection(fields)
        if let task = fields["task"]?.trimmingCharacters(in: .whitespaces).lowercased(), !task.isEmpty {
            guard let parsed = WhisperTask(rawValue: task) else {
                throw APIError(.unprocessableContent, code: "invalid_option", message: "task must be transcribe or translate, not '\(task)'")
            }
            options.task = parsed
        }
        if let flag = try Self.flag("multilingual", fields) { options.multilingual = flag }
        // An English-only model has one language: it can neither translate nor tell languages apart.
        if supportedLanguages == ["en"] {
            if options.task == .translate {
                throw APIError(.unprocessableContent, code: "unsupported_task",
                               message: "task=translate needs a multilingual model; this server's model is English-only")
            }
            if options.multilingual {
                throw APIError(.unprocessableContent, code: "unsupported_task",
                               message: "multilingual=true needs a multilingual model; this server's model is English-only")
            }
        }
        return options
    }

    /// faster-whisper's `vad_parameters`, by their names and units, over its defaults. (Ignored with `vad=false`.)
    private func speechDetection(_ fields: [String: String]) throws -> SpeechDetection {
        var values: [String: Double] = [:]
        for parameter in SpeechDetection.parameters { values[parameter.name] = try Self.number(parameter.name, fields) }
        let detection = JobOptions.defaultVAD.setting(values)
        if let problem = detection.problem { throw APIError(.unprocessableContent, code: "invalid_option", message: "voice-activity detection: \(problem)") }
        return detection
    }

    /// A boolean field (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`); nil when absent or empty.
    static func flag(_ name: String, _ fields: [String: String]) throws -> Bool? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespaces).lowercased(), !value.isEmpty else { return nil }
        switch value {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw APIError(.unprocessableContent, code: "invalid_option", message: "\(name) must be true or false, not '\(value)'")
        }
    }

    /// A finite number field; nil when absent or empty.
    static func number(_ name: String, _ fields: [String: String]) throws -> Double? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        guard let number = Double(value), number.isFinite else {
            throw APIError(.unprocessableContent, code: "invalid_option", message: "\(name) must be a number, not '\(value)'")
        }
        return number
    }
}
