import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import StenoServer
import Testing

/// A real `steno serve` process, configured through the environment as a deployment would be, its standard
/// error in a log file. It listens on port 0 and the test reads the port the kernel gave it from the log: a port
/// chosen by the test could be taken by another test's server or by an outgoing connection in the meantime.
final class ServeProcess: @unchecked Sendable {
    /// The `steno` binary built beside this test bundle (`make test` builds it first).
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("steno")

    let process = Process()
    let log: URL
    /// Kept alive as long as the process (for servers that own a temporary directory).
    private let owned: TemporaryDirectory?
    private let lock = NSLock()
    private var listeningURL: URL?
    private var listening: URL? {
        get { lock.withLock { listeningURL } }
        set { lock.withLock { listeningURL = newValue } }
    }

    /// - Parameters:
    ///   - arguments: after `serve`.
    ///   - environment: `STENO_*` settings; the parent's `STENO_*` variables are not inherited.
    init(arguments: [String] = [], environment: [String: String], log: URL, owning owned: TemporaryDirectory? = nil) throws {
        self.log = log
        self.owned = owned
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = Self.binary
        process.arguments = ["serve"] + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STENO_") }.merging(
            [
                "STENO_PORT": "0", "STENO_MODEL": Fixtures.model.path, "STENO_VAD_MODEL": Fixtures.vadModel.path,
                "STENO_SPEAKER_MODEL": Fixtures.speakerModel.path, "STENO_LOG_LEVEL": "notice",
            ].merging(environment) { $1 }
        ) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
    }

    /// `http://127.0.0.1:<port>`, known once `waitUntilHealthy()` returned.
    var base: URL {
        guard let url = listening else { preconditionFailure("call waitUntilHealthy() first") }
        return url
    }

    /// Waits for the "listening on" line, then for `/healthz` to answer 200; records the log if the process
    /// exits or never becomes healthy.
    func waitUntilHealthy(timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, process.isRunning {
            if listening == nil, let url = Self.listeningAddress(in: logText) { listening = url }
            if let url = listening,
               let (_, response) = try? await URLSession.shared.data(from: url.appendingPathComponent("healthz")),
               (response as? HTTPURLResponse)?.statusCode == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("steno serve never became healthy (running: \(process.isRunning)): \(logText)")
        throw CancellationError()
    }

    /// The address of the server's "listening on http://…" log line.
    static func listeningAddress(in log: String) -> URL? {
        guard let range = log.range(of: "listening on http://") else { return nil }
        let address = log[range.lowerBound...].dropFirst("listening on ".count).prefix { !$0.isWhitespace }
        return URL(string: String(address))
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// The node id the process logged at start (`node=<id>`).
    var nodeID: String? {
        let text = logText
        guard let range = text.range(of: "node=") else { return nil }
        return String(text[range.upperBound...].prefix { !$0.isWhitespace })
    }

    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func terminate() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

/// Plain HTTP against live servers (`ServeProcess`).
enum LiveHTTP {
    static func get(_ url: URL) async throws -> (status: Int, body: Data) {
        let (data, response) = try await URLSession.shared.data(from: url)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    static func upload(_ file: URL, to base: URL) async throws -> (status: Int, body: Data) {
        let boundary = "live-test"
        var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".utf8)
        body += try Data(contentsOf: file)
        body += Data("\r\n--\(boundary)--\r\n".utf8)
        var request = URLRequest(url: base.appendingPathComponent("transcribe"))
        request.httpMethod = "POST"
        request.setValue("multipart/form-data; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.upload(for: request, from: body)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    static func errorCode(_ body: Data) -> String? {
        try? TestJSON.decoder.decode(Components.Schemas.ErrorResponse.self, from: body).error.code
    }
}
