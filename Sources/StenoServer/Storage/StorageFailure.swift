import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A local file (an upload being received) could not be created or written, with the system's reason. Carries
/// no HTTP: `ErrorMap` decides what a client is told (full disk, no descriptors left, anything else).
struct StorageFailure: Error, CustomStringConvertible {
    /// The `errno` of the failed call.
    var code: Int32

    var isOutOfSpace: Bool { OutOfSpace.errnos.contains(code) }
    /// The process or the system has no file descriptor left: a moment later the same call may work.
    var isOutOfDescriptors: Bool { code == EMFILE || code == ENFILE }

    var description: String { "storage failure: \(String(cString: strerror(code)))" }
}
