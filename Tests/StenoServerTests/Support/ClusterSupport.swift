import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PostgresNIO
import StenoServer
import Testing

extension StenoService {
    /// The filesystem blob store of a server built without a database URL (the in-process tests).
    var fileBlobs: FileBlobStore { blobs as! FileBlobStore }
}

extension ServeProcess {
    /// One `steno serve --role … --database …` process of a cluster test, on a data directory of its own, its
    /// log in that directory.
    static func node(role: String, database: String, extra: [String: String] = [:]) throws -> ServeProcess {
        let directory = try TemporaryDirectory()
        // Short leases and one engine thread: several nodes share two cores in CI.
        return try ServeProcess(
            arguments: ["--role", role, "--database", database],
            environment: [
                "STENO_DATA_DIR": directory.url.path, "STENO_WORKERS": "1", "STENO_THREADS": "1", "STENO_LEASE": "6s",
                "STENO_RETRIEVAL_GRACE": "0", "STENO_CLEANUP_INTERVAL": "2s", "STENO_DATABASE_TIMEOUT": "2s",
            ].merging(extra) { $1 },
            log: directory.url.appendingPathComponent("steno.log"), owning: directory)
    }
}

/// Short real recordings with their reference transcripts: the five LibriVox clips (3–7 s) and the five
/// `cards` clips (1–3.5 s) of pocketsphinx's test data.
enum ShortClips {
    struct Clip: Sendable {
        let file: URL
        let reference: String
    }

    static let cards = URL(fileURLWithPath: "/usr/share/pocketsphinx/test/data/cards")

    /// The fraction of the reference's words in a transcript, with digits read as words (Whisper writes
    /// "4. Queen of clubs" for "four queen of clubs").
    static func recall(_ text: String, reference: String) -> Double {
        let numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
        var spoken = text
        for (value, word) in numbers.enumerated().reversed() {
            spoken = spoken.replacingOccurrences(of: "\\b\(value)\\b", with: " \(word) ", options: .regularExpression)
        }
        return Fixtures.recall(spoken, reference: reference)
    }

    static func all() throws -> [Clip] {
        var clips = try ["0870", "0880", "0890", "0920", "0930"].map { Clip(file: Fixtures.recording($0), reference: try Fixtures.reference($0)) }
        let lines = try String(contentsOf: cards.appendingPathComponent("cards.transcription"), encoding: .utf8).split(separator: "\n")
        for number in ["001", "002", "003", "004", "005"] {
            let line = try #require(lines.first { $0.contains("(\(number))") })
            let text = line.replacingOccurrences(of: "<s>", with: "").replacingOccurrences(of: "</s>", with: "")
                .components(separatedBy: "(").first!.trimmingCharacters(in: .whitespaces)
            clips.append(Clip(file: cards.appendingPathComponent("\(number).wav"), reference: text))
        }
        return clips
    }
}

/// Reads of the shared database, for what the API does not show (lease owners, blob rows).
extension PostgresClient {
    func count(_ query: PostgresQuery) async throws -> Int {
        try await self.query(query).collect().first!.decode(Int.self)
    }

    /// Polls until `condition` holds; records an issue after `timeout` seconds.
    func waitUntil(timeout: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out after \(timeout) s waiting for: \(what)")
        throw CancellationError()
    }
}
