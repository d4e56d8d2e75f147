import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import NIOCore
import StenoServer
import Testing

/// The holes a hostile client found (issue 9), each shut and kept shut: unbounded form fields and part headers,
/// decoder wording in client errors, a damaged job table behind a ready server, secrets in the log, and ids
/// that depend on a file descriptor.
@Suite struct HostileInputTests {
    static let audio = Data("RIFF fake audio".utf8)

    /// A form with `count` text fields of `size` bytes before the file.
    static func formWithFields(count: Int, size: Int) -> MultipartForm {
        var form = MultipartForm()
        for index in 0..<count { form.parts.append(("field\(index)", nil, Data(repeating: UInt8(ascii: "a"), count: size))) }
        form.parts.append(("file", "audio.wav", audio))
        return form
    }

    @Test func formFieldsAreBoundedInCountAndBytes() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            // 65 small fields: one more than a form may have.
            let many = try await client.upload(Self.formWithFields(count: 65, size: 10))
            #expect(many.status == .contentTooLarge)
            #expect(try client.errorCode(many) == "form_too_large")
            // Six fields of 60 KB: each allowed alone, 360 KB together is not.
            let heavy = try await client.upload(Self.formWithFields(count: 6, size: 60 << 10))
            #expect(heavy.status == .contentTooLarge)
            #expect(try client.errorCode(heavy) == "form_too_large")
            // Within both bounds the upload is taken.
            let fine = try await client.upload(Self.formWithFields(count: 3, size: 60 << 10))
            #expect(fine.status == .accepted, "\(String(buffer: fine.body))")
            // Exactly that one job exists (the refused forms created none).
            #expect(try await server.service.store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 10).count == 1)
        }
    }

    @Test func endlessPartHeadersAreCutShort() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let boundary = "hostile"
            var body = ByteBuffer(string: "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"")
            body.writeBytes([UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20))
            body.writeString("\"\r\n\r\nabc\r\n--\(boundary)--\r\n")
            let response = try await client.execute(
                uri: "/transcribe", method: .post, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"], body: body)
            #expect(response.status == .contentTooLarge)
            // Refused once the header passed 16 KiB, not after parsing all of it (quadratic in the parser: a
            // 64 MB line took 24 s of CPU; `hostile.sh form_fields` times that one against a live server).
            let error = try TestJSON.decode(Components.Schemas.ErrorResponse.self, response.body).error
            #expect(error.code == "form_too_large")
            #expect(error.message.contains("headers exceed \(16 << 10) bytes"), "\(error.message)")
            #expect(try await server.service.store.count(state: .pending) == 0)
        }
    }

    @Test(arguments: ["/transcribe?limit=abc", "/transcribe/6f1c1c3e-8f7e-4e0e-9a52-0a1b2c3d4e5f?format=xml", "/transcribe?status=nope"])
    func parameterErrorsAreInOurWords(_ uri: String) async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let response = try await client.execute(uri: uri, method: .get)
            #expect(response.status == .badRequest)
            let error = try TestJSON.decode(Components.Schemas.ErrorResponse.self, response.body).error
            #expect(error.code == "invalid_parameter")
            // It names the parameter and what it takes.
            let name = uri.contains("limit") ? "limit" : uri.contains("format") ? "format" : "status"
            #expect(error.message.contains("valid \(name): it must be"), "\(error.message)")
            for leak in ["DecodingError", "codingPath", "Swift", "Context(", "debugDescription"] {
                #expect(!error.message.contains(leak), "\(error.message)")
            }
        }
    }

    /// Pages of the job table overwritten: uploads and listings fail, and so must `/readyz`.
    @Test func readinessReadsTheJobTable() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.url.appendingPathComponent("steno.sqlite")
        do {
            let store = try SQLiteJobStore(path: path)
            #expect(await store.checkWritable())
            for _ in 0..<200 {
                _ = try await store.insert(Job(
                    id: SystemRandom.uuid(), options: JobOptions(), createdAt: Date(), expiresAt: Date().addingTimeInterval(3600),
                    maxAttempts: 3, audioPath: "audio/x", audioBytes: 1))
            }
        }
        // Find the job table's pages and overwrite all but the root with garbage.
        let queue = try DatabaseQueue(path: path.path)
        let (root, pageSize, pages): (Int, Int, Int) = try await queue.read { db in
            (try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'job'")!,
             try Int.fetchOne(db, sql: "PRAGMA page_size")!, try Int.fetchOne(db, sql: "PRAGMA page_count")!)
        }
        try await queue.close()
        let handle = try FileHandle(forUpdating: path)
        for page in (root + 1)...pages {
            try handle.seek(toOffset: UInt64((page - 1) * pageSize))
            try handle.write(contentsOf: Data(repeating: 0xA5, count: pageSize))
        }
        try handle.close()
        let damaged = try SQLiteJobStore(path: path)
        #expect(await damaged.checkWritable() == false)
    }

    @Test func idsComeFromTheKernelsRandomSource() {
        let ids = (0..<10_000).map { _ in SystemRandom.uuid() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            let text = id.uuidString
            // Version 4, RFC 4122 variant.
            #expect(Array(text)[14] == "4")
            #expect("89AB".contains(Array(text)[19]))
        }
        #expect(SystemRandom.token() != SystemRandom.token())
    }
}

/// The log redaction point: secrets, bearer tokens and authorization headers never reach a log line.
@Suite struct LogRedactionTests {
    @Test func redactsSecretsAndCredentials() {
        let key = "tenant-key-\(SystemRandom.token())"
        LogRedaction.register(secret: key)
        let text = "request failed: headers [authorization: Bearer \(key), x: y] body \(key) Authorization: Basic dXNlcjpwYXNz"
        let redacted = LogRedaction.redact(text)
        #expect(!redacted.contains(key))
        #expect(!redacted.contains("dXNlcjpwYXNz"))
        #expect(redacted.contains("x: y"))
        // A bearer token that was never registered (a digest-only key, or a wrong one) goes too.
        #expect(LogRedaction.redact("Bearer guess-1234567890abcdef") == "Bearer <redacted>")
        // Ordinary words stay.
        #expect(LogRedaction.redact("steno_jobs table is locked") == "steno_jobs table is locked")
    }
}
