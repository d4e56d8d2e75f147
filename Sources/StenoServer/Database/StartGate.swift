import Foundation
import ServiceLifecycle

/// Opens once and stays open: what waits for it (the HTTP server, the workers, the cleaner) starts when the
/// database is migrated, not before.
package final class StartGate: Sendable {
    private let state = Locked<(open: Bool, waiters: [UUID: CheckedContinuation<Void, Never>])>((false, [:]))

    package init(open: Bool = false) {
        state.withLock { $0.open = open }
    }

    package var isOpen: Bool { state.current.open }

    package func open() {
        let waiters = state.withLock { state in
            defer { state = (true, [:]) }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the gate is open (at once if it is), or when the task is cancelled.
    package func wait() async {
        let id = SystemRandom.uuid()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// For services: waits for the gate unless a graceful shutdown comes first. True when the gate opened.
    package func waitUnlessShuttingDown() async -> Bool {
        await cancelWhenGracefulShutdown { await self.wait() }
        return isOpen
    }
}
