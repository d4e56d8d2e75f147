public import Foundation

/// One served model: the name clients ask for and the CTranslate2 directory it is loaded from.
public struct ModelSource: Sendable, Hashable {
    public var name: String
    public var directory: URL

    public init(name: String, directory: URL) {
        self.name = name
        self.directory = directory
    }

    /// A directory served under its folder's name (`models/tiny.en` is `tiny.en`).
    public init(directory: URL) {
        self.init(name: directory.standardizedFileURL.lastPathComponent, directory: directory)
    }

    /// Names clients can type in a form field and a URL: letters, digits, `.`, `_` and `-`, at most 64.
    package static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }

    /// The `--model` setting: comma-separated `name=directory` pairs or plain directories (named by their
    /// folder); a directory that is no model itself (no `model.bin`) but holds model directories stands for all
    /// of them. Names must be unique.
    package static func parseList(_ text: String, fileManager: FileManager = .default) throws -> [ModelSource] {
        var sources: [ModelSource] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if let equals = item.firstIndex(of: "="), !item[..<equals].contains("/") {
                let name = String(item[..<equals]).trimmingCharacters(in: .whitespaces)
                let path = String(item[item.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
                guard !path.isEmpty else { throw Setting.Problem("names model '\(name)' without a directory") }
                sources.append(ModelSource(name: name, directory: URL(fileURLWithPath: path)))
            } else {
                sources += expand(URL(fileURLWithPath: item), fileManager: fileManager)
            }
        }
        guard !sources.isEmpty else { throw Setting.Problem("names no model") }
        for source in sources where !isValidName(source.name) {
            throw Setting.Problem("has the model name '\(source.name)'; use letters, digits, '.', '_' and '-' (at most 64)")
        }
        var seen = Set<String>()
        for source in sources where !seen.insert(source.name).inserted {
            throw Setting.Problem("names model '\(source.name)' twice")
        }
        return sources
    }

    /// A model directory, or a folder of model directories (in name order); anything else is taken as a
    /// model directory, so that loading it says what is missing.
    private static func expand(_ directory: URL, fileManager: FileManager) -> [ModelSource] {
        if fileManager.fileExists(atPath: directory.appendingPathComponent("model.bin").path) { return [ModelSource(directory: directory)] }
        let children = (try? fileManager.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        let models = children
            .filter { fileManager.fileExists(atPath: $0.appendingPathComponent("model.bin").path) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return models.isEmpty ? [ModelSource(directory: directory)] : models.map { ModelSource(directory: $0) }
    }
}

/// The models a server offers, by name, with what the upload checks need of each (its languages), and the
/// default one that a job naming none gets. Read at start-up without loading any weights.
public struct ModelCatalog: Sendable {
    public struct Entry: Sendable, Hashable {
        public var name: String
        /// `["en"]` for English-only models.
        public var languages: Set<String>
        public var isMultilingual: Bool { languages != ["en"] }

        public init(name: String, languages: Set<String>) {
            self.name = name
            self.languages = languages
        }
    }

    /// In the order the configuration gave them.
    public let entries: [Entry]
    public let defaultName: String

    /// `defaultName` nil: the first entry.
    public init(entries: [Entry], defaultName: String? = nil) throws {
        guard let first = entries.first else { throw ModelNotServed(requested: defaultName ?? "", served: []) }
        let name = defaultName ?? first.name
        guard entries.contains(where: { $0.name == name }) else { throw ModelNotServed(requested: name, served: entries.map(\.name)) }
        self.entries = entries
        self.defaultName = name
    }

    /// One model serving `languages`, named `name` (tests' engines).
    public static func single(name: String = "tiny.en", languages: Set<String>) -> ModelCatalog {
        // One entry, and the default is that entry: cannot fail.
        try! ModelCatalog(entries: [Entry(name: name, languages: languages)])
    }

    public var defaultEntry: Entry { entries.first { $0.name == defaultName }! }

    /// The model a job asked for (nil or empty: the default); throws `ModelNotServed` for an unknown name.
    public func entry(named name: String?) throws -> Entry {
        guard let name = name?.trimmingCharacters(in: .whitespaces), !name.isEmpty else { return defaultEntry }
        guard let entry = entries.first(where: { $0.name == name }) else { throw ModelNotServed(requested: name, served: entries.map(\.name)) }
        return entry
    }
}

/// A job or request named a model this server does not serve.
public struct ModelNotServed: Error, Sendable, CustomStringConvertible {
    public let requested: String
    public let served: [String]

    public var description: String {
        "model '\(requested)' is not served here; models: \(served.joined(separator: ", "))"
    }
}
