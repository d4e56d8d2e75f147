import Foundation
import StenoEngine

/// The models in memory, by name: each is loaded when a job first needs it and kept while the memory budget
/// allows. Loading one that does not fit unloads the least recently used model no job is using; when every
/// loaded model is in use, the caller waits until one is released. A model is never unloaded while a job uses
/// it, and two jobs needing the same model share one copy.
///
/// Callers block (workers call from inference threads of their own). Generic over the model so that the
/// policy is tested without weights.
package final class LoadedModels<Model: Sendable>: @unchecked Sendable {
    private enum State {
        case unloaded
        /// One caller is loading it; the others wait for the outcome.
        case loading
        case loaded(Model)
    }

    private struct Slot {
        var state = State.unloaded
        /// Memory the model takes once loaded (an estimate the owner gives).
        var bytes: Int64
        var users = 0
        var lastUse: UInt64 = 0
    }

    /// Bytes of models kept at most; nil for no bound.
    package let budget: Int64?
    private let load: @Sendable (String) throws -> Model
    private let condition = NSCondition()
    private var slots: [String: Slot]
    private var uses: UInt64 = 0

    /// `bytes` names every model and its size; a model larger than the budget alone is refused here.
    package init(bytes: [String: Int64], budget: Int64?, load: @escaping @Sendable (String) throws -> Model) throws {
        if let budget, let (name, size) = bytes.first(where: { $0.value > budget }) {
            throw ConfigurationError(description: "--model-memory/STENO_MODEL_MEMORY=\(budget) is less than model '\(name)' needs (about \(size) bytes)")
        }
        self.budget = budget
        self.load = load
        slots = bytes.mapValues { Slot(bytes: $0) }
    }

    /// Runs `body` with the model, loading it (and making room for it) first if needed. `isCancelled` is asked
    /// while waiting for room, so a cancelled job stops waiting.
    package func withModel<Value>(_ name: String, isCancelled: () -> Bool = { false }, _ body: (Model) throws -> Value) throws -> Value {
        let model = try acquire(name, isCancelled: isCancelled)
        defer { release(name) }
        return try body(model)
    }

    /// Names of the models in memory, in name order.
    package var loadedNames: [String] {
        condition.withLock {
            slots.filter { if case .loaded = $0.value.state { true } else { false } }.keys.sorted()
        }
    }

    private func acquire(_ name: String, isCancelled: () -> Bool) throws -> Model {
        condition.lock()
        defer { condition.unlock() }
        guard slots[name] != nil else { throw ModelNotServed(requested: name, served: slots.keys.sorted()) }
        while true {
            switch slots[name]!.state {
            case .loaded(let model):
                uses += 1
                slots[name]!.users += 1
                slots[name]!.lastUse = uses
                return model
            case .loading:
                condition.wait(until: Date().addingTimeInterval(0.5))
            case .unloaded:
                if fits(name) {
                    slots[name]!.state = .loading
                    condition.unlock()
                    let outcome = Result { try load(name) }
                    condition.lock()
                    defer { condition.broadcast() }
                    switch outcome {
                    case .success(let model): slots[name]!.state = .loaded(model)
                    case .failure(let error):
                        slots[name]!.state = .unloaded
                        throw error
                    }
                } else if let victim = leastRecentlyUsedIdle() {
                    slots[victim]!.state = .unloaded
                    // The weights were freed, but the allocator keeps freed pages for reuse unless asked: give
                    // them back, so that the process's resident size follows the budget.
                    Self.returnFreedMemory()
                } else {
                    // Every loaded model is in use: wait for a release (or a cancellation).
                    condition.wait(until: Date().addingTimeInterval(0.5))
                }
            }
            if isCancelled() { throw EngineError.cancelled }
        }
    }

    private func release(_ name: String) {
        condition.withLock {
            slots[name]!.users -= 1
            condition.broadcast()
        }
    }

    /// Whether `name` fits beside what is loaded or being loaded. Holds the lock.
    private func fits(_ name: String) -> Bool {
        guard let budget else { return true }
        let held = slots.values.reduce(Int64(0)) { total, slot in
            if case .unloaded = slot.state { return total }
            return total + slot.bytes
        }
        return held + slots[name]!.bytes <= budget
    }

    /// The loaded model no one uses that was used longest ago. Holds the lock.
    private func leastRecentlyUsedIdle() -> String? {
        slots.filter { slot in
            guard case .loaded = slot.value.state else { return false }
            return slot.value.users == 0
        }.min { $0.value.lastUse < $1.value.lastUse }?.key
    }

    private static func returnFreedMemory() {
        WhisperEngine.releaseFreedMemory()
    }
}
