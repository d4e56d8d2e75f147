import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import StenoServer
import Testing

/// A real `steno serve` process, killed with SIGKILL while one job is processing and others wait, then started
/// again on the same data directory: every job completes exactly once, with the right transcript.
@Suite(.serialized) struct RestartTests {
    /// One `steno serve` with one worker on `directory/data`, its log in `directory/<name>.log`.
    static func server(in directory: TemporaryDirectory, log name: String, extra: [String: String] = [:]) throws -> ServeProcess {
        try ServeProcess(
            environment: ["STENO_DATA_DIR": data(in: directory).path, "STENO_WORKERS": "1", "STENO_RETRIEVAL_GRACE": "10m"]
                .merging(extra) { $1 },
            log: directory.url.appendingPathComponent("\(name).log"))
    }

    static func data(in directory: TemporaryDirectory) -> URL { directory.url.appendingPathComponent("data") }

    static func submit(_ file: URL, to base: URL) async throws -> String {
        let (status, body) = try await LiveHTTP.upload(file, to: base)
        #expect(status == 202)
        return try TestJSON.decoder.decode(Components.Schemas.JobCreated.self, from: body).jobId
    }

    /// Reads the job list (which never counts as a retrieval).
    static func jobs(at base: URL) async throws -> [Components.Schemas.JobStatus] {
        let (data, _) = try await URLSession.shared.data(from: base.appendingPathComponent("transcribe").appending(queryItems: [URLQueryItem(name: "limit", value: "200")]))
        return try TestJSON.decoder.decode(Components.Schemas.JobList.self, from: data).jobs
    }

    @Test func everyJobCompletesOnceAfterSIGKILL() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ServeProcess.binary.path), "build the steno product first (make test does)")
        let directory = try TemporaryDirectory()
        let recordings = ["0870", "0880", "0890", "0920", "0930"]

        let first = try Self.server(in: directory, log: "first")
        try await first.waitUntilHealthy()
        var ids: [String: String] = [:]
        for number in recordings { ids[number] = try await Self.submit(Fixtures.recording(number), to: first.base) }

        // Kill the server while the first job is processing and the others wait.
        var sawProcessing = false
        for _ in 0..<3000 {
            let states = Dictionary(uniqueKeysWithValues: try await Self.jobs(at: first.base).map { ($0.jobId, $0.status) })
            if states[ids["0870"]!] == .processing, states[ids["0930"]!] == .pending {
                sawProcessing = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(sawProcessing)
        first.kill()

        let second = try Self.server(in: directory, log: "second")
        defer { second.terminate() }
        try await second.waitUntilHealthy()
        var finished: [Components.Schemas.JobStatus] = []
        for _ in 0..<1200 {
            finished = try await Self.jobs(at: second.base)
            if finished.allSatisfy({ $0.status == .completed || $0.status == .failed }) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(finished.count == recordings.count, "no job lost, none duplicated")
        #expect(finished.allSatisfy { $0.status == .completed })
        // The interrupted job ran twice (one attempt lost with the process); the others once.
        #expect(finished.first { $0.jobId == ids["0870"] }?.attempts == 2)
        #expect(finished.filter { $0.jobId != ids["0870"] }.allSatisfy { $0.attempts == 1 })

        for number in recordings {
            let (data, _) = try await URLSession.shared.data(from: second.base.appendingPathComponent("transcribe/\(ids[number]!)"))
            let status = try TestJSON.decoder.decode(Components.Schemas.JobStatus.self, from: data)
            let text = status.result?.text ?? ""
            #expect(Fixtures.recall(text, reference: try Fixtures.reference(number)) >= 0.7, "\(number): \(text)")
        }
        // One result file per job: nothing was written twice.
        let results = try FileManager.default.contentsOfDirectory(atPath: Self.data(in: directory).appendingPathComponent("results").path)
        #expect(results.count == recordings.count)

        // The client commands against the same server.
        let (status, output) = try Self.run(["submit", Fixtures.recording("0890").path, "--wait", "--server", second.base.absoluteString])
        #expect(status == 0)
        #expect(Fixtures.recall(output, reference: try Fixtures.reference("0890")) >= 0.7, "\(output)")
        let (listStatus, listing) = try Self.run(["list", "--status", "completed"], environment: ["STENO_URL": second.base.absoluteString])
        #expect(listStatus == 0)
        #expect(listing.split(separator: "\n").count == recordings.count + 1)
        let (_, srt) = try Self.run(["result", ids["0920"]!, "--format", "srt", "--server", second.base.absoluteString])
        #expect(srt.hasPrefix("1\n00:00:00,000 --> "))
    }

    /// SIGTERM while a job runs and the shutdown grace is too short for it: the process exits cleanly and the
    /// job is back in the queue with its attempt given back, held by no lease.
    @Test func sigtermReleasesTheRunningJob() async throws {
        let directory = try TemporaryDirectory()
        let server = try Self.server(in: directory, log: "sigterm", extra: ["STENO_SHUTDOWN_GRACE": "0"])
        try await server.waitUntilHealthy()
        // About 50 s of speech: two 30-second windows, so the engine reaches a window boundary and stops there.
        let long = directory.url.appendingPathComponent("long.wav")
        let sox = Process()
        sox.executableURL = URL(fileURLWithPath: "/usr/bin/sox")
        sox.arguments = ["0870", "0880", "0890", "0920", "0930", "0870", "0880", "0890", "0920", "0930"].map { Fixtures.recording($0).path } + [long.path]
        try sox.run()
        sox.waitUntilExit()
        let id = try await Self.submit(long, to: server.base)
        for _ in 0..<3000 {
            if try await Self.jobs(at: server.base).first?.status == .processing { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let started = Date()
        server.terminate()
        #expect(server.process.terminationReason == .exit)
        #expect(server.process.terminationStatus == 0)
        #expect(Date().timeIntervalSince(started) < 30)
        let store = try SQLiteJobStore(path: Self.data(in: directory).appendingPathComponent("steno.sqlite"))
        let job = try #require(try await store.job(id: UUID(uuidString: id)!))
        #expect(job.state == .pending)
        #expect(job.attempts == 0)
        #expect(job.leaseToken == nil)
    }

    /// Runs the `steno` binary; returns its exit status and standard output.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = ServeProcess.binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
