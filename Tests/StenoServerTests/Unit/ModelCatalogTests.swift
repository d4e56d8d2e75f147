import Foundation
import StenoEngine
import StenoServer
import Testing

/// The `--model` setting's list, the catalog's lookups, and the loading policy of `LoadedModels` (with a
/// counting loader instead of weights).
@Suite struct ModelCatalogTests {
    @Test func theModelSettingTakesPairsDirectoriesAndFoldersOfModels() throws {
        let folder = try TemporaryDirectory()
        for name in ["small", "base"] {
            let model = folder.url.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
            try Data().write(to: model.appendingPathComponent("model.bin"))
        }
        let pairs = try ModelSource.parseList("en=models/tiny.en, multi=/srv/whisper-base")
        #expect(pairs.map(\.name) == ["en", "multi"])
        #expect(pairs[1].directory.path == "/srv/whisper-base")
        #expect(try ModelSource.parseList("models/tiny.en").map(\.name) == ["tiny.en"])
        // A folder holding model folders serves each, in name order.
        #expect(try ModelSource.parseList(folder.url.path).map(\.name) == ["base", "small"])

        #expect(throws: (any Error).self) { try ModelSource.parseList("a=models/x,a=models/y") }
        #expect(throws: (any Error).self) { try ModelSource.parseList("bad name=models/x") }
        #expect(throws: (any Error).self) { try ModelSource.parseList("x=") }
        #expect(throws: (any Error).self) { try ModelSource.parseList(" , ") }

        let configuration = try ServerConfiguration(settings: [
            "STENO_MODEL": "en=models/tiny.en,multi=models/whisper-base", "STENO_DEFAULT_MODEL": "multi", "STENO_MODEL_MEMORY": "1G",
        ])
        #expect(configuration.models.map(\.name) == ["en", "multi"])
        #expect(configuration.defaultModel == "multi")
        #expect(configuration.modelMemoryBytes == 1 << 30)
        #expect(configuration.modelDirectory.path.hasSuffix("models/whisper-base"))
        #expect(throws: (any Error).self) { try ServerConfiguration(settings: ["STENO_MODEL_MEMORY": "lots"]) }
    }

    @Test func theCatalogResolvesNamesAndTheDefault() throws {
        let catalog = try ModelCatalog(entries: [.init(name: "tiny.en", languages: ["en"]), .init(name: "base", languages: ["en", "es"])])
        #expect(catalog.defaultName == "tiny.en")
        #expect(try catalog.entry(named: nil).name == "tiny.en")
        #expect(try catalog.entry(named: " ").name == "tiny.en")
        #expect(try catalog.entry(named: "base").isMultilingual)
        #expect(!catalog.defaultEntry.isMultilingual)
        #expect(throws: ModelNotServed.self) { try catalog.entry(named: "large") }
        #expect(throws: ModelNotServed.self) { try ModelCatalog(entries: catalog.entries, defaultName: "large") }
        #expect(try ModelCatalog(entries: catalog.entries, defaultName: "base").defaultName == "base")
    }

    /// Counts loads per name; what it "loads" is the name.
    final class CountingLoader: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [String: Int] = [:]
        func load(_ name: String) -> String {
            lock.withLock { counts[name, default: 0] += 1 }
            return name
        }
        func loads(_ name: String) -> Int { lock.withLock { counts[name] ?? 0 } }
    }

    final class Events: @unchecked Sendable {
        private let lock = NSLock()
        private var events: [String] = []
        func append(_ event: String) { lock.withLock { events.append(event) } }
        var all: [String] { lock.withLock { events } }
    }

    @Test func aBudgetForOneModelSwapsThemAndSharesALoadedOne() throws {
        let loader = CountingLoader()
        let models = try LoadedModels<String>(bytes: ["a": 100, "b": 100], budget: 150) { loader.load($0) }
        #expect(try models.withModel("a") { $0 } == "a")
        #expect(try models.withModel("a") { $0 } == "a")
        #expect(loader.loads("a") == 1)
        #expect(models.loadedNames == ["a"])
        // b does not fit beside a: a, idle, is unloaded for it.
        #expect(try models.withModel("b") { $0 } == "b")
        #expect(models.loadedNames == ["b"])
        #expect(try models.withModel("a") { $0 } == "a")
        #expect(loader.loads("a") == 2)
        #expect(throws: ModelNotServed.self) { try models.withModel("c") { $0 } }
    }

    @Test func noBudgetKeepsEveryModel() throws {
        let loader = CountingLoader()
        let models = try LoadedModels<String>(bytes: ["a": 100, "b": 100], budget: nil) { loader.load($0) }
        _ = try models.withModel("a") { $0 }
        _ = try models.withModel("b") { $0 }
        #expect(models.loadedNames == ["a", "b"])
    }

    @Test func aModelInUseIsNeverUnloadedTheOtherWaits() throws {
        let loader = CountingLoader()
        let models = try LoadedModels<String>(bytes: ["a": 100, "b": 100], budget: 150) { loader.load($0) }
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let order = Events()
        let first = Thread {
            _ = try? models.withModel("a") { _ in
                holding.signal()
                release.wait()
                order.append("a done")
            }
        }
        first.start()
        holding.wait()
        let second = Thread {
            _ = try? models.withModel("b") { _ in order.append("b ran") }
            holding.signal()
        }
        second.start()
        // b cannot load while a is in use.
        Thread.sleep(forTimeInterval: 0.3)
        #expect(order.all.isEmpty)
        #expect(loader.loads("b") == 0)
        release.signal()
        #expect(holding.wait(timeout: .now() + 5) == .success)
        #expect(order.all == ["a done", "b ran"])
        // A cancelled wait gives up.
        let busy = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread { _ = try? models.withModel("a") { _ in busy.signal(); done.wait() } }.start()
        busy.wait()
        #expect(throws: EngineError.cancelled) { try models.withModel("b", isCancelled: { true }) { $0 } }
        done.signal()
    }

    @Test func aModelLargerThanTheBudgetIsRefusedAtStart() {
        #expect(throws: (any Error).self) { try LoadedModels<String>(bytes: ["big": 500], budget: 100) { $0 } }
    }
}
