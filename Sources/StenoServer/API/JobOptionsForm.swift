import Foundation
import StenoEngine

/// The transcription options among `POST /transcribe`'s form fields: each field's parsing and its error in
/// one place (`422 invalid_option`, `model_not_found` or `unsupported_language`, naming the field and the value).
/// The model is resolved first: the language and task checks are those of the model the job will run on.
struct JobOptionsForm {
    let models: ModelCatalog

    func options(_ fields: [String: String]) throws -> JobOptions {
        var options = JobOptions()
        let model: ModelCatalog.Entry
        do {
            model = try models.entry(named: fields["model"])
        } catch let unknown as ModelNotServed {
            throw APIError(.unprocessableContent, code: "model_not_found", message: unknown.description)
        }
        options.model = model.name
        if let language = fields["language"]?.trimmingCharacters(in: .whitespaces).lowercased(), !language.isEmpty {
            guard model.languages.contains(language) else {
                throw APIError(.unprocessableContent, code: "unsupported_language",
                               message: "language '\(language)' is not supported by model '\(model.name)'; supported: \(model.languages.sorted().joined(separator: ", "))")
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
        if let temperature = try Self.number("temperature", fields) {
            guard (0...1).contains(temperature) else {
                throw APIError(.unprocessableContent, code: "invalid_option", message: "temperature must be from 0 to 1, not \(temperature)")
            }
            // 0 is the default: greedy first, falling back to higher temperatures on failure.
            options.temperature = temperature > 0 ? temperature : nil
        }
        if let beam = fields["beam_size"]?.trimmingCharacters(in: .whitespaces), !beam.isEmpty {
            guard let width = Int(beam), Self.beamSizes.contains(width) else {
                throw APIError(.unprocessableContent, code: "invalid_option",
                               message: "beam_size must be a whole number from \(Self.beamSizes.lowerBound) to \(Self.beamSizes.upperBound), not '\(beam)'")
            }
            options.beamSize = width
        }
        options.speakers = try speakerOptions(fields)
        if let flag = try Self.flag("multichannel", fields) { options.multichannel = flag }
        // An English-only model has one language: it can neither translate nor tell languages apart.
        if !model.isMultilingual {
            let served = models.entries.filter(\.isMultilingual).map(\.name)
            let hint = served.isEmpty ? "" : " (multilingual models here: \(served.joined(separator: ", ")))"
            if options.task == .translate {
                throw APIError(.unprocessableContent, code: "unsupported_task",
                               message: "task=translate needs a multilingual model; model '\(model.name)' is English-only\(hint)")
            }
            if options.multilingual {
                throw APIError(.unprocessableContent, code: "unsupported_task",
                               message: "multilingual=true needs a multilingual model; model '\(model.name)' is English-only\(hint)")
            }
        }
        return options
    }

    /// Beam widths a job may ask for: 1 (greedy) up to a width whose cost stays within a few times the default's.
    static let beamSizes = 1...16

    /// faster-whisper's `vad_parameters`, by their names and units, over its defaults. (Ignored with `vad=false`.)
    private func speechDetection(_ fields: [String: String]) throws -> SpeechDetection {
        var values: [String: Double] = [:]
        for parameter in SpeechDetection.parameters { values[parameter.name] = try Self.number(parameter.name, fields) }
        let detection = JobOptions.defaultVAD.setting(values)
        if let problem = detection.problem { throw APIError(.unprocessableContent, code: "invalid_option", message: "voice-activity detection: \(problem)") }
        return detection
    }

    /// `speaker_labels` and the speaker counts (which need it).
    private func speakerOptions(_ fields: [String: String]) throws -> SpeakerOptions? {
        let counts = try ["speakers_expected", "min_speakers", "max_speakers"].map { name -> Int? in
            guard let value = fields[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            guard let count = Int(value) else {
                throw APIError(.unprocessableContent, code: "invalid_option", message: "\(name) must be a whole number, not '\(value)'")
            }
            return count
        }
        guard try Self.flag("speaker_labels", fields) == true else {
            if counts.contains(where: { $0 != nil }) {
                throw APIError(.unprocessableContent, code: "invalid_option",
                               message: "speakers_expected, min_speakers and max_speakers need speaker_labels=true")
            }
            return nil
        }
        let options = SpeakerOptions(expected: counts[0], minimum: counts[1], maximum: counts[2])
        if let problem = options.problem { throw APIError(.unprocessableContent, code: "invalid_option", message: problem) }
        return options
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
