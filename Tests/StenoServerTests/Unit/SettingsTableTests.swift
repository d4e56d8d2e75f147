import Foundation
import StenoServer
import Testing

/// The settings table: the docs' configuration table is the one the code declares, every default is a value the
/// setting accepts, and the command line and the environment reach the same settings.
@Suite struct SettingsTableTests {
    static let configurationDoc = Repository.root.appendingPathComponent("docs/configuration.md")

    @Test func theDocsTableIsTheSettingsTable() throws {
        let text = try String(contentsOf: Self.configurationDoc, encoding: .utf8)
        let begin = "<!-- settings-table:begin -->\n", end = "<!-- settings-table:end -->"
        let start = try #require(text.range(of: begin), "docs/configuration.md lost its settings-table markers")
        let stop = try #require(text.range(of: end, range: start.upperBound..<text.endIndex))
        let documented = String(text[start.upperBound..<stop.lowerBound])
        #expect(documented == ServerConfiguration.settingsMarkdown,
                "docs/configuration.md's table differs from SettingsTable.swift: run `make settings-table` and commit")
    }

    @Test func namesAreUniqueAndEveryDocumentedDefaultIsAccepted() throws {
        let rows = ServerConfiguration.settingsMarkdown.split(separator: "\n").dropFirst(2)
        let variables = rows.map { $0.split(separator: "|")[1].trimmingCharacters(in: .whitespaces) }
        #expect(Set(variables).count == variables.count)
        #expect(variables.count == ServerConfiguration.variables.count)
        // A default shown as a value (`24h`, `1G`, `info`) reads back as the same configuration.
        for row in rows {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells[2].hasPrefix("`"), cells[2].hasSuffix("`") else { continue }
            let variable = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let value = cells[2].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            #expect(throws: Never.self, "\(variable)=\(value)") { try ServerConfiguration(settings: [variable: value]) }
        }
        // STENO_FFMPEG was once read without a flag or a row: every variable now has both.
        #expect(ServerConfiguration.variables.contains("STENO_FFMPEG"))
        #expect(try ServerConfiguration(settings: ServerConfiguration.overriding([:], withArguments: ["--ffmpeg", "/opt/ffmpeg"])).ffmpegPath == "/opt/ffmpeg")
    }

    @Test func aFlagWinsOverItsVariable() throws {
        let settings = try ServerConfiguration.overriding(
            ["STENO_PORT": "9000", "STENO_WORKERS": "3"], withArguments: ["--port", "9100", "--open", "--retention=2h"])
        let configuration = try ServerConfiguration(settings: settings)
        #expect(configuration.port == 9100)
        #expect(configuration.workers == 3)
        #expect(configuration.allowOpen)
        #expect(configuration.retention == 7200)
    }

    @Test(arguments: [
        (["--prot", "1"], "unknown option '--prot'"),
        (["--port"], "--port needs a value"),
        (["stray"], "unexpected argument 'stray'"),
    ])
    func badArgumentsNameTheProblem(_ arguments: [String], _ expected: String) {
        #expect {
            _ = try ServerConfiguration.overriding([:], withArguments: arguments)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test(arguments: [
        ("STENO_LEASE", "0.5", "--lease/STENO_LEASE=0.5 must be at least 1s"),
        ("STENO_DECODER_MEMORY", "10M", "--decoder-memory/STENO_DECODER_MEMORY=10M must be at least 64M"),
        ("STENO_ROLE", "boss", "--role/STENO_ROLE=boss is not one of all, api, worker"),
        ("STENO_WEBHOOK_SECRET", "short", "--webhook-secret/STENO_WEBHOOK_SECRET=… must be at least 16 bytes"),
        ("STENO_MAX_JOBS_PER_KEY", "-1", "--max-jobs-per-key/STENO_MAX_JOBS_PER_KEY=-1 must be at least 0"),
    ])
    func badValuesNameTheSetting(_ variable: String, _ value: String, _ expected: String) {
        #expect {
            _ = try ServerConfiguration(settings: [variable: value])
        } throws: { error in
            "\(error)".contains(expected)
        }
    }
}
