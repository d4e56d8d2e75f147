import Foundation

/// One setting of `steno serve`, declared once in `SettingsTable`: its flag and environment variable, what its
/// value looks like, its default as the docs show it, its help, and how its text becomes a typed value of
/// `ServerConfiguration` (with the checks that name the setting when the text is wrong).
struct Setting: Sendable {
    /// The flag without its dashes (`max-upload-bytes`).
    let name: String
    /// `STENO_` + the name in capitals (`STENO_MAX_UPLOAD_BYTES`), unless declared otherwise.
    let variable: String
    /// What the value looks like (`<duration>`); nil for a flag that takes none (`--open`).
    let valueName: String?
    /// The default, as help and the docs show it.
    let defaultText: String
    /// Whether `defaultText` is a value one could give (`24h`, shown as code) rather than a description.
    let defaultIsValue: Bool
    let help: String
    /// Reads the text into the configuration, or throws `Setting.Problem` saying what is wrong with it.
    let apply: @Sendable (inout ServerConfiguration, String) throws -> Void

    init(
        _ name: String, variable: String? = nil, valueName: String?, defaultText: String, defaultIsValue: Bool = false,
        help: String, apply: @escaping @Sendable (inout ServerConfiguration, String) throws -> Void
    ) {
        self.name = name
        self.variable = variable ?? "STENO_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
        self.valueName = valueName
        self.defaultText = defaultText
        self.defaultIsValue = defaultIsValue
        self.help = help
        self.apply = apply
    }

    var flag: String { "--" + name }
    var takesValue: Bool { valueName != nil }

    /// What is wrong with a setting's text, in words that follow "--name/VARIABLE=text ".
    struct Problem: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// The default of a typed setting, read off `ServerConfiguration()` so that docs and code cannot drift.
    private static func shown<Value>(_ keyPath: KeyPath<ServerConfiguration, Value>, _ render: (Value) -> String) -> String {
        render(ServerConfiguration()[keyPath: keyPath])
    }
}

// MARK: - Kinds of setting

extension Setting {
    typealias Path<Value> = WritableKeyPath<ServerConfiguration, Value> & Sendable

    /// Free text, taken as given.
    static func text(_ name: String, _ keyPath: any Path<String>, help: String) -> Setting {
        Setting(name, valueName: "<text>", defaultText: shown(keyPath) { $0 }, defaultIsValue: true, help: help) { configuration, text in
            configuration[keyPath: keyPath] = text
        }
    }

    /// A file or directory; relative paths are relative to the working directory.
    static func path(_ name: String, _ keyPath: any Path<URL>, help: String) -> Setting {
        Setting(name, valueName: "<path>", defaultText: shown(keyPath) { "./" + $0.relativePath }, defaultIsValue: true, help: help) { configuration, text in
            configuration[keyPath: keyPath] = URL(fileURLWithPath: text)
        }
    }

    /// A whole number in `range`.
    static func integer(_ name: String, _ keyPath: any Path<Int>, range: ClosedRange<Int>, help: String) -> Setting {
        Setting(name, valueName: "<n>", defaultText: shown(keyPath) { String($0) }, defaultIsValue: true, help: help) { configuration, text in
            configuration[keyPath: keyPath] = try wholeNumber(text, in: range)
        }
    }

    /// A whole number in `range`, or none: unset by default, and `0` means none where `zeroIsNone`.
    static func optionalInteger(
        _ name: String, _ keyPath: any Path<Int?>, range: ClosedRange<Int>, zeroIsNone: Bool = false, defaultText: String, help: String
    ) -> Setting {
        Setting(name, valueName: "<n>", defaultText: defaultText, help: help) { configuration, text in
            let value = try wholeNumber(text, in: zeroIsNone ? 0...range.upperBound : range)
            configuration[keyPath: keyPath] = zeroIsNone && value == 0 ? nil : value
        }
    }

    /// A duration: `90`, `90s`, `500ms`, `10m`, `24h`, `7d`, `1h30m`; at least `minimum` (above it when
    /// `aboveMinimum`).
    static func duration(
        _ name: String, _ keyPath: any Path<TimeInterval>, minimum: TimeInterval = 0, aboveMinimum: Bool = false, help: String
    ) -> Setting {
        Setting(name, valueName: "<duration>", defaultText: shown(keyPath, ValueFormat.duration), defaultIsValue: true, help: help) { configuration, text in
            configuration[keyPath: keyPath] = try parseDuration(text, minimum: minimum, aboveMinimum: aboveMinimum)
        }
    }

    /// A size in bytes: `1048576`, `512K`, `500M`, `1G` (powers of 1024); at least `minimum`.
    static func bytes(_ name: String, _ keyPath: any Path<Int64>, minimum: Int64 = 0, help: String) -> Setting {
        Setting(name, valueName: "<size>", defaultText: shown(keyPath, ValueFormat.bytes), defaultIsValue: true, help: help) { configuration, text in
            guard let value = ValueParser.bytes(text) else { throw Problem("is not a size (like 1048576, 500M, 1G)") }
            guard value >= minimum else { throw Problem("must be at least \(ValueFormat.bytes(minimum))") }
            configuration[keyPath: keyPath] = value
        }
    }

    /// On or off: the flag alone turns it on; the variable takes `true`/`false` (`1`/`0`, `yes`/`no`, `on`/`off`).
    static func flag(_ name: String, _ keyPath: any Path<Bool>, help: String) -> Setting {
        Setting(name, valueName: nil, defaultText: shown(keyPath) { String($0) }, defaultIsValue: true, help: help) { configuration, text in
            switch text.lowercased() {
            case "1", "true", "yes", "on": configuration[keyPath: keyPath] = true
            case "0", "false", "no", "off": configuration[keyPath: keyPath] = false
            default: throw Problem("is not true or false")
            }
        }
    }

    /// Private host names and address blocks that `CallbackPolicy` may reach, separated by commas or spaces.
    static func allowlist(_ name: String, _ keyPath: any Path<[String]>, help: String) -> Setting {
        Setting(name, valueName: "<hosts,cidrs>", defaultText: "none", help: help) { configuration, text in
            do {
                let entries = CallbackPolicy.entries(text)
                _ = try CallbackPolicy(allowlist: entries)
                configuration[keyPath: keyPath] = entries
            } catch let refusal as CallbackRefusal {
                throw Problem(refusal.reason)
            }
        }
    }

    /// One of a closed set of words.
    static func choice<Value: RawRepresentable<String> & CaseIterable & Sendable>(_ name: String, _ keyPath: any Path<Value>, help: String) -> Setting {
        let words = Value.allCases.map(\.rawValue)
        let values = Dictionary(uniqueKeysWithValues: Value.allCases.map { ($0.rawValue, $0) })
        return Setting(name, valueName: "<" + words.joined(separator: "|") + ">", defaultText: shown(keyPath) { $0.rawValue }, defaultIsValue: true, help: help) { configuration, text in
            guard let value = values[text.lowercased()] else { throw Problem("is not one of \(words.joined(separator: ", "))") }
            configuration[keyPath: keyPath] = value
        }
    }

    // MARK: Parsers shared by the kinds

    static func wholeNumber(_ text: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else { throw Problem("is not a whole number") }
        guard range.contains(value) else {
            throw Problem(range.upperBound == .max ? "must be at least \(range.lowerBound)" : "must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    static func parseDuration(_ text: String, minimum: TimeInterval, aboveMinimum: Bool) throws -> TimeInterval {
        guard let value = ValueParser.seconds(text) else { throw Problem("is not a duration (like 90, 90s, 10m, 24h)") }
        if aboveMinimum {
            guard value > minimum else { throw Problem("must be more than \(ValueFormat.duration(minimum))") }
        } else {
            guard value >= minimum else { throw Problem("must be at least \(ValueFormat.duration(minimum))") }
        }
        return value
    }
}

/// Durations and sizes written the way the settings take them (`24h`, `512M`), for help and docs.
enum ValueFormat {
    static func duration(_ seconds: TimeInterval) -> String {
        if seconds == 0 { return "0" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        let whole = Int(seconds)
        guard Double(whole) == seconds else { return "\(seconds)s" }
        // Days only past one (a day reads better as 24h).
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where whole % size == 0 && (unit != "d" || whole > 86400) {
            return "\(whole / size)\(unit)"
        }
        return "\(whole)s"
    }

    static func bytes(_ bytes: Int64) -> String {
        for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] where bytes != 0 && bytes % (Int64(1) << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return String(bytes)
    }
}
