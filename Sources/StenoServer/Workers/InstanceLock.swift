package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Tells a `steno serve` on SQLite whether it is the only live server on its data directory, so that it may
/// put the jobs left `processing` back in the queue at start (they can then only be a dead run's). Every server
/// holds a shared `flock` on `<data>/steno.lock` for its whole life; a starting server first asks for the lock
/// exclusively, which it gets only when no other server holds it. The kernel drops a killed process's lock, so
/// a crash never leaves a stale lock behind. Without the lock, two servers on one directory (one server per
/// SQLite data directory is the rule, but nothing enforced it) reset each other's running jobs at start.
package final class InstanceLock: Sendable {
    /// True when no other server held the lock at start.
    package let isSoleInstance: Bool
    private let descriptor: Int32

    /// Takes the lock; an unusable lock file counts as "not alone" (the safe answer: jobs wait for their lease).
    package init(path: URL) {
        descriptor = open(path.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            isSoleInstance = false
            return
        }
        isSoleInstance = flock(descriptor, LOCK_EX | LOCK_NB) == 0
    }

    /// Lets the next servers start beside this one (they will then see it): exclusive becomes shared, and a
    /// server that was not alone takes its shared lock now. Call after the start-up reset.
    package func share() {
        guard descriptor >= 0 else { return }
        _ = flock(descriptor, LOCK_SH)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }
}
