public import Foundation

/// Where audio uploads and transcription results live, by name (`audio/<job id>`, `results/<job id>-<n>.json`);
/// job rows point at blobs by these names. `FileBlobStore` keeps them in the data directory (one machine),
/// `PostgresBlobStore` in the database, shared by every node. Either way a blob appears whole or not at all, and
/// blobs no row points at (a crash between writing one and recording it) are orphans that `sweepOrphans` removes.
public protocol BlobStore: Sendable {
    /// A fresh path for a local file being written (an upload streamed in from a client). The caller deletes it
    /// unless it hands it to `commitAudio`.
    func temporaryFile() -> URL
    /// Makes a finished local file the audio of `jobID` and consumes the file. Returns the blob's name.
    func commitAudio(_ temporary: URL, jobID: UUID) async throws -> String
    /// Stores a result. Every call writes a new name, so a late write of a stale worker never replaces (and its
    /// clean-up never deletes) the result of the worker that owns the job.
    func writeResult(_ data: Data, jobID: UUID) async throws -> String
    /// A whole blob (results: small).
    func read(_ name: String) async throws -> Data
    /// Runs `body` with the blob as a local file (audio for the decoder), which exists only during `body`.
    func withLocalFile<Value: Sendable>(_ name: String, _ body: (URL) async throws -> Value) async throws -> Value
    /// Deletes a blob; a missing one is not an error. Best effort: what fails to go is an orphan for the sweep.
    func remove(_ name: String) async
    func exists(_ name: String) async throws -> Bool
    /// Deletes blobs (and local temporary files) that no name in `referenced` points at and that are older than
    /// `cutoff` (the age guards an upload between its commit and its insert). Returns their names.
    func sweepOrphans(referenced: Set<String>, olderThan cutoff: Date) async throws -> [String]
    /// Free bytes where this node spools uploads (for `/readyz`).
    func freeBytes() -> Int64?
}

extension BlobStore {
    /// A new result name for a job: unique per write (see `writeResult`).
    static func resultName(jobID: UUID) -> String {
        "results/" + jobID.uuidString.lowercased() + "-" + SystemRandom.token().prefix(8) + ".json"
    }
}
