import Foundation

/// A setting that could not be read, named by its flag and environment variable.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

extension ServerConfiguration {
    /// The settings as `steno serve --help` lists them.
    public static var settingsHelp: String { SettingsTable.helpText }

    /// The settings as the markdown table of docs/configuration.md.
    public static var settingsMarkdown: String { SettingsTable.markdown }

    /// Every setting's environment variable, from the settings table.
    public static var variables: [String] { SettingsTable.all.map(\.variable) }

    /// `STENO_*` names that are no setting of the server (a typo, most likely), for a warning at start-up.
    /// `STENO_URL` and `STENO_API_KEY` belong to the client commands.
    public static func unknownVariables(in settings: [String: String]) -> [String] {
        let known = Set(variables)
        return settings.keys.filter { $0.hasPrefix("STENO_") && !known.contains($0) && !["STENO_URL", "STENO_API_KEY"].contains($0) }.sorted()
    }

    /// The defaults, overridden by `settings` (environment variable → text, as in the environment), each read
    /// by its entry of `SettingsTable`. Empty values count as unset; unknown names are ignored here
    /// (`unknownVariables` reports them).
    public init(settings: [String: String]) throws {
        self.init()
        for setting in SettingsTable.all {
            guard let text = settings[setting.variable], !text.isEmpty else { continue }
            do {
                try setting.apply(&self, text)
            } catch let problem as Setting.Problem {
                let shown = setting.variable.contains("SECRET") || setting.variable == "STENO_API_KEYS" ? "…" : text
                throw ConfigurationError(description: "\(setting.flag)/\(setting.variable)=\(shown) \(problem.message)")
            }
        }
        try checkCombinations()
    }

    /// What no single setting can check alone.
    private mutating func checkCombinations() throws {
        // The default per-job maximum follows a longer default retention.
        if maxRetention < retention { maxRetention = retention }
        guard role == .all || databaseURL != nil else {
            throw ConfigurationError(description: "--role \(role.rawValue) needs a shared database: set --database/STENO_DATABASE_URL to a postgres:// URL")
        }
    }

    /// Reads `steno serve`'s arguments (`--name value`, `--name=value`, or `--name` alone for a flag) into
    /// `settings`, by environment variable, so that a flag wins over the variable. Unknown flags and missing
    /// values are errors naming them.
    public static func overriding(_ settings: [String: String], withArguments arguments: [String]) throws -> [String: String] {
        var settings = settings
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--") else {
                throw ConfigurationError(description: "unexpected argument '\(argument)' (settings are --name value; see steno serve --help)")
            }
            let option = argument.dropFirst(2)
            let name = String(option.prefix { $0 != "=" })
            let inline = option.firstIndex(of: "=").map { String(option[option.index(after: $0)...]) }
            guard let setting = SettingsTable.setting(flag: name) else {
                throw ConfigurationError(description: "unknown option '--\(name)' (see steno serve --help)")
            }
            if let inline {
                settings[setting.variable] = inline
            } else if !setting.takesValue {
                settings[setting.variable] = "true"
            } else if let value = rest.popFirst() {
                settings[setting.variable] = value
            } else {
                throw ConfigurationError(description: "\(setting.flag) needs a value \(setting.valueName ?? "")")
            }
        }
        return settings
    }
}
