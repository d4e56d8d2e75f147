import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// fsync for files and directories: what makes a write survive a power loss, not only a crash of the process.
/// A file's data needs its own fsync; its name (a create or a rename) needs an fsync of its directory.
enum Durability {
    /// Syncs the data of the file at `url`.
    static func syncFile(at url: URL) throws {
        try syncing(url.path, flags: O_RDONLY | O_CLOEXEC)
    }

    /// Syncs the entries of a directory (names created, renamed or removed in it).
    static func syncDirectory(_ url: URL) throws {
        try syncing(url.path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    private static func syncing(_ path: String, flags: Int32) throws {
        let descriptor = open(path, flags)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(descriptor) }
        while fsync(descriptor) != 0 {
            // ENOSPC here is a delayed allocation failing: the write did not happen, and OutOfSpace says so.
            guard errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
    }
}
