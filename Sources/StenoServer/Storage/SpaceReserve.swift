package import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Space held back on the data directory's filesystem for the writes that must not wait for a full disk to
/// clear: with SQLite, the database lives on the same disk as the results, so the row update that hands a job
/// back after its result could not be stored would fail too, and the job would wait for its lease to run out.
/// The reserve is a file with its blocks allocated (`posix_fallocate`, so even tmpfs and sparse-file
/// filesystems really hold them); when such a write finds the disk full, the worker gives the reserve back to
/// the filesystem and writes again. The reserve is taken again once the disk has room for it with a margin.
package final class SpaceReserve: Sendable {
    package let path: URL
    package let bytes: Int64
    /// Whether the file is believed allocated: saves a `statfs` per worker loop while it is.
    private let held = Locked(false)

    package init(path: URL, bytes: Int64 = 4 << 20) {
        self.path = path
        self.bytes = bytes
    }

    package var isHeld: Bool { held.current }

    /// Allocates the reserve when it is missing and the filesystem has at least four times its size free (so
    /// taking it back never fills a disk that has only just recovered). Returns whether it is in place.
    @discardableResult
    package func replenish() -> Bool {
        held.withLock { held in
            if held { return true }
            var status = statvfs()
            guard statvfs(path.deletingLastPathComponent().path, &status) == 0 else { return false }
            let free = Int64(status.f_bavail) * Int64(status.f_frsize)
            let already = Self.allocatedBytes(path)
            guard free + already >= 4 * bytes else { return false }
            let descriptor = open(path.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { return false }
            defer { close(descriptor) }
            guard posix_fallocate(descriptor, 0, off_t(bytes)) == 0 else {
                unlink(path.path)
                return false
            }
            held = true
            return true
        }
    }

    /// Gives the reserve's space back to the filesystem. False when there was none to give.
    package func release() -> Bool {
        held.withLock { held in
            guard held else { return false }
            held = false
            return unlink(path.path) == 0
        }
    }

    private static func allocatedBytes(_ path: URL) -> Int64 {
        var info = stat()
        guard stat(path.path, &info) == 0 else { return 0 }
        return Int64(info.st_blocks) * 512
    }
}
