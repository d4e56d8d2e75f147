public import Foundation
public import Logging
public import PostgresNIO

/// Audio and results in PostgreSQL, so that every node reads what any node stored: the distributed mode's blob
/// store (the schema is migration 3, "blobs", of `PostgresJobStore.migrations`).
///
/// A blob is a row of `steno_blobs` and its bytes are 1 MiB `bytea` rows of `steno_blob_chunks`, written in one
/// transaction (other nodes see the whole blob or nothing) and read one chunk per statement, so neither an
/// upload nor a download ever holds more than a chunk in memory. Uploads are spooled to a local file first
/// (`temporaryFile()`, in the node's data directory) and streamed in from there; audio is streamed out to a
/// local file for the decoder and deleted after it.
public struct PostgresBlobStore: BlobStore {
    let client: PostgresClient
    let logger: Logger
    /// Local spool for uploads and downloads: `<data dir>/tmp`.
    public let scratch: URL
    let timeout: Duration
    static let chunkSize = 1 << 20

    public init(client: PostgresClient, scratch: URL, timeout: Duration = .seconds(10), logger: Logger = Logger(label: "steno.blobs.postgres")) throws {
        self.client = client
        self.scratch = scratch
        self.timeout = timeout
        self.logger = logger
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    public func temporaryFile() -> URL {
        scratch.appendingPathComponent(SystemRandom.token() + ".part")
    }

    public func commitAudio(_ temporary: URL, jobID: UUID) async throws -> String {
        let name = "audio/" + jobID.uuidString.lowercased()
        let handle = try FileHandle(forReadingFrom: temporary)
        defer { try? handle.close() }
        let size = Int64(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        let reader = ChunkReader(handle: handle)
        try await store(name: name, bytes: size) { try reader.next() }
        try? FileManager.default.removeItem(at: temporary)
        return name
    }

    public func writeResult(_ data: Data, jobID: UUID) async throws -> String {
        let name = Self.resultName(jobID: jobID)
        let chunks = Locked(stride(from: 0, to: data.count, by: Self.chunkSize).map {
            data.subdata(in: $0..<min($0 + Self.chunkSize, data.count))
        }[...])
        try await store(name: name, bytes: Int64(data.count)) { chunks.withLock { $0.popFirst() } }
        return name
    }

    public func read(_ name: String) async throws -> Data {
        let count = try await chunkCount(name)
        var data = Data()
        for index in 0..<count { data.append(try await chunk(name, index)) }
        return data
    }

    public func withLocalFile<Value: Sendable>(_ name: String, _ body: (URL) async throws -> Value) async throws -> Value {
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file) }
        guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            let count = try await chunkCount(name)
            for index in 0..<count { try handle.write(contentsOf: try await chunk(name, index)) }
        }
        return try await body(file)
    }

    public func remove(_ name: String) async {
        do {
            _ = try await rows("DELETE FROM steno_blobs WHERE name = \(name)")
        } catch {
            logger.warning("could not delete a blob; the orphan sweep will", metadata: ["name": "\(name)", "error": "\(error)"])
        }
    }

    public func exists(_ name: String) async throws -> Bool {
        try await !rows("SELECT 1 FROM steno_blobs WHERE name = \(name)").isEmpty
    }

    public func sweepOrphans(referenced: Set<String>, olderThan cutoff: Date) async throws -> [String] {
        let names = Array(referenced)
        // One statement: a blob referenced by the time it runs is not deleted whatever this node read before.
        var removed = try await rows(
            "DELETE FROM steno_blobs WHERE created_at < \(cutoff) AND NOT (name = ANY(\(names))) RETURNING name"
        ).map { try $0.decode(String.self) }
        // This node's own spool: uploads and downloads left by a crash.
        let entries = (try? FileManager.default.contentsOfDirectory(at: scratch, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        for entry in entries {
            let modified = (try? entry.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate
            guard let modified, modified < cutoff else { continue }
            try? FileManager.default.removeItem(at: entry)
            removed.append("tmp/" + entry.lastPathComponent)
        }
        return removed
    }

    public func freeBytes() -> Int64? {
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: scratch.path)
        return (attributes?[.systemFreeSize] as? NSNumber)?.int64Value
    }

    // MARK: - Chunks

    /// Writes a blob in one transaction, one chunk per statement; `next` gives the chunks in order, nil at the end.
    /// The deadline grows with the size (a gigabyte at a few MiB/s must not be cut off).
    private func store(name: String, bytes: Int64, next: @escaping @Sendable () throws -> Data?) async throws {
        let deadline = timeout + .seconds(Double(bytes) / Double(4 << 20))
        let (client, logger) = (client, logger)
        try await withDatabaseDeadline(deadline) {
            try await client.withTransaction(logger: logger) { connection in
                _ = try await connection.query(
                    "INSERT INTO steno_blobs (name, bytes, chunks, created_at) VALUES (\(name), \(bytes), 0, \(Date()))",
                    logger: logger
                ).collect()
                var index = 0
                while let data = try next() {
                    _ = try await connection.query(
                        "INSERT INTO steno_blob_chunks (name, chunk, data) VALUES (\(name), \(index), \(ByteBuffer(bytes: data)))",
                        logger: logger
                    ).collect()
                    index += 1
                }
                _ = try await connection.query("UPDATE steno_blobs SET chunks = \(index) WHERE name = \(name)", logger: logger).collect()
            }
        }
    }

    private func chunkCount(_ name: String) async throws -> Int {
        guard let row = try await rows("SELECT chunks FROM steno_blobs WHERE name = \(name)").first else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: name])
        }
        return try row.decode(Int.self)
    }

    private func chunk(_ name: String, _ index: Int) async throws -> Data {
        guard let row = try await rows("SELECT data FROM steno_blob_chunks WHERE name = \(name) AND chunk = \(index)").first else {
            // Deleted while being read (the job was cancelled or deleted meanwhile).
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: name])
        }
        let buffer = try row.decode(ByteBuffer.self)
        return Data(buffer.readableBytesView)
    }

    private func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let (client, logger) = (client, logger)
        return try await withDatabaseDeadline(timeout) { try await client.query(query, logger: logger).collect() }
    }
}

/// Reads a file one chunk at a time (used by one upload's task only).
private final class ChunkReader: @unchecked Sendable {
    let handle: FileHandle
    init(handle: FileHandle) { self.handle = handle }

    func next() throws -> Data? {
        guard let data = try handle.read(upToCount: PostgresBlobStore.chunkSize), !data.isEmpty else { return nil }
        return data
    }
}
