public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Audio uploads and transcription results on the filesystem, under the data directory (one machine):
/// `audio/<job id>`, `results/<job id>.json`, and `tmp/` for files being written. Every file appears under
/// its final name by an atomic rename, so a reader never sees half a file; the rows of the job store point at
/// files by name, and files no row points at (a crash between rename and insert) are orphans the cleaner sweeps.
public struct FileBlobStore: BlobStore {
    public let root: URL
    package var audioDirectory: URL { root.appendingPathComponent("audio", isDirectory: true) }
    package var resultsDirectory: URL { root.appendingPathComponent("results", isDirectory: true) }
    package var temporaryDirectory: URL { root.appendingPathComponent("tmp", isDirectory: true) }

    public init(root: URL) throws {
        self.root = root
        for directory in [audioDirectory, resultsDirectory, temporaryDirectory] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
    }

    /// A fresh path in `tmp/` for an upload or result being written.
    public func temporaryFile() -> URL {
        temporaryDirectory.appendingPathComponent(SystemRandom.token() + ".part")
    }

    /// Moves a finished temporary file to its final name, on stable storage: the file's data is synced, then
    /// the rename, then the directory entry, so that the row written next never points at a file a power loss
    /// could take away. Returns the name to store in the job row.
    public func commitAudio(_ temporary: URL, jobID: UUID) throws -> String {
        let name = "audio/" + jobID.uuidString.lowercased()
        try Durability.syncFile(at: temporary)
        try moveAtomically(temporary, to: url(for: name))
        try Durability.syncDirectory(audioDirectory)
        return name
    }

    /// Writes a result atomically (temporary file, fsync, rename). Returns the name to store in the job row.
    public func writeResult(_ data: Data, jobID: UUID) throws -> String {
        let name = Self.resultName(jobID: jobID)
        let temporary = temporaryFile()
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        let handle = try FileHandle(forWritingTo: temporary)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        do {
            try moveAtomically(temporary, to: url(for: name))
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        try Durability.syncDirectory(resultsDirectory)
        return name
    }

    public func read(_ name: String) throws -> Data {
        try Data(contentsOf: url(for: name))
    }

    package func url(for name: String) -> URL {
        root.appendingPathComponent(name)
    }

    /// The file itself: nothing to copy on one machine.
    public func withLocalFile<Value: Sendable>(_ name: String, _ body: (URL) async throws -> Value) async throws -> Value {
        try await body(url(for: name))
    }

    /// Deletes a file by name; a missing file is not an error (deletion is idempotent).
    public func remove(_ name: String) {
        try? FileManager.default.removeItem(at: url(for: name))
    }

    public func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: url(for: name).path)
    }

    /// Deletes files that no job points at and that were last modified before `olderThan` (the age guards an
    /// upload between its rename and its insert, and temporary files still being written). Returns their names.
    public func sweepOrphans(referenced: Set<String>, olderThan cutoff: Date) -> [String] {
        var removed: [String] = []
        for (folder, directory) in [("audio", audioDirectory), ("results", resultsDirectory), ("tmp", temporaryDirectory)] {
            let entries = (try? FileManager.default.contentsOfDirectory(
                at: directory, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
            for entry in entries {
                let name = folder + "/" + entry.lastPathComponent
                guard !referenced.contains(name) else { continue }
                let modified = (try? entry.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate
                guard let modified, modified < cutoff else { continue }
                try? FileManager.default.removeItem(at: entry)
                removed.append(name)
            }
        }
        return removed
    }

    /// Free bytes on the data directory's filesystem.
    public func freeBytes() -> Int64? {
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: root.path)
        return (attributes?[.systemFreeSize] as? NSNumber)?.int64Value
    }

    private func moveAtomically(_ source: URL, to destination: URL) throws {
        // rename(2) replaces the destination atomically, unlike FileManager.moveItem.
        guard rename(source.path, destination.path) == 0 else {
            let code = errno
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }
}
