import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import StenoServer

/// Where the client commands find the server.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL. [STENO_URL, default http://127.0.0.1:8080]")
    var server: String?

    var baseURL: URL {
        get throws {
            let text = server ?? ProcessInfo.processInfo.environment["STENO_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
                throw ValidationError("'\(text)' is not an http(s) URL")
            }
            return url
        }
    }

    @Option(help: "API key, sent as 'Authorization: Bearer <key>'. Prefer STENO_API_KEY: other users can see command lines. [STENO_API_KEY]")
    var apiKey: String?

    /// The key from the flag or the environment; nil when neither gives one.
    var resolvedAPIKey: String? {
        apiKey ?? ProcessInfo.processInfo.environment["STENO_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    var api: StenoClient {
        get throws { StenoClient(base: try baseURL, apiKey: resolvedAPIKey) }
    }
}

/// A failure the server reported, printed as its code and message.
struct ServerFailure: Error, CustomStringConvertible {
    let status: Int
    let code: String
    let message: String
    var description: String { "\(code) (HTTP \(status)): \(message)" }
}

/// A small HTTP client for the API, on URLSession.
struct StenoClient {
    let base: URL
    var apiKey: String?
    let session = URLSession(configuration: .ephemeral)

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = formatter.date(from: text) { return date }
            formatter.formatOptions = [.withInternetDateTime]
            if let date = formatter.date(from: text) { return date }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad date \(text)"))
        }
        return decoder
    }()

    func send(_ method: String, _ path: String, query: [URLQueryItem] = [], body: URL? = nil, contentType: String? = nil) async throws -> (Data, HTTPURLResponse) {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { components.queryItems = query }
        var request = URLRequest(url: components.url!)
        request.httpMethod = method
        request.timeoutInterval = 3600
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        let (data, response): (Data, URLResponse)
        do {
            if let body {
                (data, response) = try await session.upload(for: request, fromFile: body)
            } else {
                (data, response) = try await session.data(for: request)
            }
        } catch {
            throw ValidationError("cannot reach \(base.absoluteString): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else { throw ValidationError("not an HTTP response") }
        if http.statusCode >= 400 {
            let detail = try? Self.decoder.decode(Components.Schemas.ErrorResponse.self, from: data)
            throw ServerFailure(status: http.statusCode, code: detail?.error.code ?? "http_\(http.statusCode)",
                                message: detail?.error.message ?? String(decoding: data, as: UTF8.self))
        }
        return (data, http)
    }

    /// Uploads a file as `multipart/form-data`. The form is written to a temporary file around the audio, so a
    /// large recording is streamed from disk rather than held in memory.
    func submit(file: URL, fields: [String: String]) async throws -> Components.Schemas.JobCreated {
        let boundary = "steno-\(SystemRandom.token())"
        let form = FileManager.default.temporaryDirectory.appendingPathComponent("steno-upload-\(SystemRandom.token())")
        defer { try? FileManager.default.removeItem(at: form) }
        FileManager.default.createFile(atPath: form.path, contents: nil)
        let output = try FileHandle(forWritingTo: form)
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            output.write(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        let filename = file.lastPathComponent.replacingOccurrences(of: "\"", with: "")
        output.write(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8))
        let input = try FileHandle(forReadingFrom: file)
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty { output.write(chunk) }
        try input.close()
        output.write(Data("\r\n--\(boundary)--\r\n".utf8))
        try output.close()
        let (data, _) = try await send("POST", "transcribe", body: form, contentType: "multipart/form-data; boundary=\(boundary)")
        return try Self.decoder.decode(Components.Schemas.JobCreated.self, from: data)
    }

    func status(_ id: String) async throws -> (Components.Schemas.JobStatus, Data) {
        let (data, _) = try await send("GET", "transcribe/\(id)")
        return (try Self.decoder.decode(Components.Schemas.JobStatus.self, from: data), data)
    }

    func result(_ id: String, format: String) async throws -> Data {
        try await send("GET", "transcribe/\(id)", query: [URLQueryItem(name: "format", value: format)]).0
    }
}
