import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StenoEngine
import StenoServer
import Testing

/// The job API in-process, with the real store, files, workers and cleaner, and a scripted engine.
@Suite struct JobAPITests {
    let audio = Data("RIFF-pretend-wave-bytes".utf8)

    @Test func submitProcessRetrieveAndCleanUp() async throws {
        let server = try TestServer { $0.retrievalGrace = 300 }
        try await server.service.app.test(.router) { client in
            let response = try await client.upload(MultipartForm(file: audio, fields: ["language": "en", "word_timestamps": "true"]))
            #expect(response.status == .accepted)
            let created = try TestJSON.decode(Components.Schemas.JobCreated.self, response.body)
            #expect(response.headers[.location] == "/transcribe/\(created.jobId)")
            #expect(UUID(uuidString: created.jobId) != nil)
            #expect(created.status == .pending)
            #expect(created.expiresAt.timeIntervalSince(created.createdAt) == 24 * 3600)

            let job = try await client.wait(for: created.jobId, in: [.completed], store: server.service.store)
            let audioPath = try #require(job.audioPath)
            let resultPath = try #require(job.resultPath)
            #expect(server.service.fileBlobs.exists(audioPath) && server.service.fileBlobs.exists(resultPath))

            let status = try await client.status(created.jobId)
            #expect(status.status == .completed)
            #expect(status.progress == 1)
            #expect(status.attempts == 1)
            #expect(status.retrievedAt != nil)
            #expect(status.startedAt != nil && status.completedAt != nil)
            #expect(status.options.wordTimestamps == true)
            let result = try #require(status.result)
            #expect(result.text == "transcript of \(audio.count) bytes")
            #expect(result.language == "en")
            #expect(result.duration == 2.5)
            #expect(result.segments.first?.words?.first?.word == " transcript")

            // Other representations, still within the grace period.
            let text = try await client.execute(uri: "/transcribe/\(created.jobId)?format=text", method: .get)
            #expect(text.status == .ok)
            #expect(String(buffer: text.body).contains("transcript of"))
            #expect(text.headers[.contentType]?.hasPrefix("text/plain") == true)
            let srt = try await client.execute(uri: "/transcribe/\(created.jobId)?format=srt", method: .get)
            #expect(String(buffer: srt.body).hasPrefix("1\n00:00:00,000 --> 00:00:02,500\n"))
            let vtt = try await client.execute(uri: "/transcribe/\(created.jobId)?format=vtt", method: .get)
            #expect(String(buffer: vtt.body).hasPrefix("WEBVTT"))
            // The first retrieval's time stands.
            #expect(try await client.status(created.jobId).retrievedAt == status.retrievedAt)

            // Grace not over: files stay. Over: files and result go, the id answers 410, then 404 at its deadline.
            server.clock.advance(by: 299)
            try await server.service.cleaner.sweep()
            #expect(server.service.fileBlobs.exists(audioPath) && server.service.fileBlobs.exists(resultPath))
            server.clock.advance(by: 1)
            let report = try await server.service.cleaner.sweep()
            #expect(report.purgedJobs == 1)
            #expect(!server.service.fileBlobs.exists(audioPath) && !server.service.fileBlobs.exists(resultPath))
            let gone = try await client.execute(uri: "/transcribe/\(created.jobId)", method: .get)
            #expect(gone.status == .gone)
            #expect(try client.errorCode(gone) == "result_deleted")

            server.clock.advance(by: 24 * 3600)
            #expect(try await server.service.cleaner.sweep().expiredJobs == 1)
            let missing = try await client.execute(uri: "/transcribe/\(created.jobId)", method: .get)
            #expect(missing.status == .notFound)
            #expect(try client.errorCode(missing) == "job_not_found")
        }
    }

    @Test func zeroGraceDeletesAtOnce() async throws {
        let server = try TestServer { $0.retrievalGrace = 0 }
        try await server.service.app.test(.router) { client in
            let id = try await client.submit(audio)
            let job = try await client.wait(for: id, in: [.completed], store: server.service.store)
            let text = try await client.execute(uri: "/transcribe/\(id)?format=text", method: .get)
            #expect(String(buffer: text.body) == "transcript of \(audio.count) bytes\n")
            #expect(!server.service.fileBlobs.exists(job.audioPath!))
            #expect(!server.service.fileBlobs.exists(job.resultPath!))
            let again = try await client.execute(uri: "/transcribe/\(id)", method: .get)
            #expect(again.status == .gone)
        }
    }

    @Test func unretrievedJobsExpireWithTheirFiles() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let short = try await client.submit(audio, fields: ["delete_after_seconds": "60"])
            let long = try await client.submit(audio)
            let shortJob = try await client.wait(for: short, in: [.completed], store: server.service.store)
            _ = try await client.wait(for: long, in: [.completed], store: server.service.store)
            server.clock.advance(by: 59)
            #expect(try await server.service.cleaner.sweep().expiredJobs == 0)
            server.clock.advance(by: 1)
            // Past the deadline the API answers 404 even before the cleaner runs.
            #expect(try await client.execute(uri: "/transcribe/\(short)", method: .get).status == .notFound)
            #expect(try await server.service.cleaner.sweep().expiredJobs == 1)
            #expect(try await server.service.store.job(id: UUID(uuidString: short)!) == nil)
            #expect(!server.service.fileBlobs.exists(shortJob.audioPath!) && !server.service.fileBlobs.exists(shortJob.resultPath!))
            #expect(try await client.status(long).status == .completed)
        }
    }

    /// Voice-activity detection is on by default with faster-whisper's parameters, tunable by the `vad_*` fields
    /// and off with `vad=false`; what the status shows is what the engine got.
    @Test func voiceActivityDetectionOptions() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            func run(_ fields: [String: String]) async throws -> (Components.Schemas.JobOptions, TranscriptionOptions?) {
                let response = try await client.upload(MultipartForm(file: audio, fields: fields))
                #expect(response.status == .accepted, "\(String(buffer: response.body))")
                let created = try TestJSON.decode(Components.Schemas.JobCreated.self, response.body)
                _ = try await client.wait(for: created.jobId, in: [.completed], store: server.service.store)
                return (try await client.status(created.jobId).options, server.transcriber.latestOptions)
            }
            let (defaults, engineDefaults) = try await run([:])
            #expect(defaults.vad == true)
            #expect(defaults.vadParameters == .init(threshold: 0.5, minSpeechDurationMs: 0, minSilenceDurationMs: 2000, speechPadMs: 400))
            #expect(engineDefaults?.vad == SpeechDetection.fasterWhisper)

            let (tuned, engineTuned) = try await run([
                "vad_threshold": "0.35", "vad_min_silence_duration_ms": "500", "vad_speech_pad_ms": "100",
                "vad_min_speech_duration_ms": "250", "vad_max_speech_duration_s": "20",
            ])
            #expect(tuned.vadParameters == .init(threshold: 0.35, minSpeechDurationMs: 250, maxSpeechDurationS: 20,
                                                 minSilenceDurationMs: 500, speechPadMs: 100))
            let detection = try #require(engineTuned?.vad)
            #expect(detection.threshold == 0.35 && detection.minSilenceSeconds == 0.5 && detection.speechPadSeconds == 0.1)
            #expect(detection.minSpeechSeconds == 0.25 && detection.maxSpeechSeconds == 20)

            let (off, engineOff) = try await run(["vad": "false", "vad_threshold": "0.9"])
            #expect(off.vad == false && off.vadParameters == nil)
            #expect(engineOff != nil && engineOff?.vad == nil)

            for fields in [["vad": "maybe"], ["vad_threshold": "1.5"], ["vad_threshold": "0"], ["vad_threshold": "loud"],
                           ["vad_speech_pad_ms": "-1"], ["vad_max_speech_duration_s": "0.5"], ["vad_min_silence_duration_ms": "nan"]] {
                let response = try await client.upload(MultipartForm(file: audio, fields: fields))
                #expect(response.status == .unprocessableContent, "\(fields)")
                #expect(try client.errorCode(response) == "invalid_option", "\(fields)")
            }
        }
    }

    /// `speaker_labels` with its counts, and `multichannel`: they reach the engine and the status, and counts
    /// without labels, counts out of range, both kinds of count, and bad values are refused.
    @Test func speakerAndChannelOptions() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            func run(_ fields: [String: String]) async throws -> (Components.Schemas.JobOptions, TranscriptionOptions?) {
                let response = try await client.upload(MultipartForm(file: audio, fields: fields))
                #expect(response.status == .accepted, "\(String(buffer: response.body))")
                let created = try TestJSON.decode(Components.Schemas.JobCreated.self, response.body)
                _ = try await client.wait(for: created.jobId, in: [.completed], store: server.service.store)
                return (try await client.status(created.jobId).options, server.transcriber.latestOptions)
            }
            let (defaults, engineDefaults) = try await run([:])
            #expect(defaults.speakerLabels == false && defaults.multichannel == false)
            #expect(engineDefaults?.speakers == nil && engineDefaults?.multichannel == false)

            let (labelled, engineLabelled) = try await run(["speaker_labels": "true", "speakers_expected": "3", "multichannel": "true"])
            #expect(labelled.speakerLabels == true && labelled.speakersExpected == 3 && labelled.multichannel == true)
            #expect(engineLabelled?.speakers == SpeakerOptions(expected: 3) && engineLabelled?.multichannel == true)

            let (bounded, engineBounded) = try await run(["speaker_labels": "yes", "min_speakers": "2", "max_speakers": "4"])
            #expect(bounded.minSpeakers == 2 && bounded.maxSpeakers == 4 && bounded.speakersExpected == nil)
            #expect(engineBounded?.speakers == SpeakerOptions(minimum: 2, maximum: 4))

            for fields in [["speakers_expected": "2"], ["speaker_labels": "true", "speakers_expected": "0"],
                           ["speaker_labels": "true", "max_speakers": "33"], ["speaker_labels": "true", "min_speakers": "3", "max_speakers": "2"],
                           ["speaker_labels": "true", "speakers_expected": "2", "min_speakers": "1"],
                           ["speaker_labels": "true", "speakers_expected": "two"], ["speaker_labels": "maybe"], ["multichannel": "stereo"]] {
                let response = try await client.upload(MultipartForm(file: audio, fields: fields))
                #expect(response.status == .unprocessableContent, "\(fields)")
                #expect(try client.errorCode(response) == "invalid_option", "\(fields)")
            }
        }
    }

    /// `temperature` and `beam_size` reach the engine and the status; 0 is the default fallback, and values out
    /// of range are refused.
    @Test func decodingOptions() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let created = try await client.submit(audio, fields: ["temperature": "0.4", "beam_size": "2"])
            _ = try await client.wait(for: created, in: [.completed], store: server.service.store)
            let options = try await client.status(created).options
            #expect(options.temperature == 0.4 && options.beamSize == 2 && options.model == "tiny.en")
            #expect(server.transcriber.latestOptions?.temperatures == [0.4])
            #expect(server.transcriber.latestOptions?.beamSize == 2)

            let fallback = try await client.submit(audio, fields: ["temperature": "0"])
            _ = try await client.wait(for: fallback, in: [.completed], store: server.service.store)
            #expect(try await client.status(fallback).options.temperature == nil)
            #expect(server.transcriber.latestOptions?.temperatures == TranscriptionOptions().temperatures)
            #expect(server.transcriber.latestOptions?.beamSize == 5)

            for fields in [["temperature": "1.5"], ["temperature": "-0.1"], ["beam_size": "0"], ["beam_size": "17"], ["beam_size": "wide"]] {
                let response = try await client.upload(MultipartForm(file: audio, fields: fields))
                #expect(response.status == .unprocessableContent, "\(fields)")
                #expect(try client.errorCode(response) == "invalid_option", "\(fields)")
            }
        }
    }

    /// `task` and `multilingual` reach the engine and the status on a multilingual model; an English-only model
    /// refuses both at upload (`422 unsupported_task`), and a task that does not exist is `invalid_option`.
    @Test func translationAndCodeSwitchingOptions() async throws {
        let multilingual = try TestServer(languages: ["en", "es", "de"])
        try await multilingual.service.app.test(.router) { client in
            let response = try await client.upload(MultipartForm(file: audio, fields: ["task": "translate", "multilingual": "true", "language": "es"]))
            #expect(response.status == .accepted, "\(String(buffer: response.body))")
            let created = try TestJSON.decode(Components.Schemas.JobCreated.self, response.body)
            _ = try await client.wait(for: created.jobId, in: [.completed], store: multilingual.service.store)
            let status = try await client.status(created.jobId)
            #expect(status.options.task == .translate && status.options.multilingual == true)
            #expect(status.result?.segments.first?.language == "es")
            let engine = try #require(multilingual.transcriber.latestOptions)
            #expect(engine.task == .translate && engine.multilingual && engine.language == "es")

            let plain = try await client.upload(MultipartForm(file: audio))
            let plainJob = try TestJSON.decode(Components.Schemas.JobCreated.self, plain.body)
            #expect(try await client.status(plainJob.jobId).options.task == .transcribe)

            let bogus = try await client.upload(MultipartForm(file: audio, fields: ["task": "summarize"]))
            #expect(bogus.status == .unprocessableContent)
            #expect(try client.errorCode(bogus) == "invalid_option")
        }
        let english = try TestServer()
        try await english.service.app.test(.router) { client in
            for fields in [["task": "translate"], ["multilingual": "true"]] {
                let response = try await client.upload(MultipartForm(file: audio, fields: fields))
                #expect(response.status == .unprocessableContent, "\(fields)")
                #expect(try client.errorCode(response) == "unsupported_task", "\(fields)")
            }
        }
    }

    @Test func badUploadsGetClearErrors() async throws {
        let server = try TestServer { $0.maxUploadBytes = 1000 }
        try await server.service.app.test(.router) { client in
            func expect(_ form: MultipartForm, _ status: HTTPResponse.Status, _ code: String) async throws {
                let response = try await client.upload(form)
                #expect(response.status == status, "\(String(buffer: response.body))")
                #expect(try client.errorCode(response) == code)
            }
            try await expect(MultipartForm(fields: ["language": "en"]), .badRequest, "missing_file")
            try await expect(MultipartForm(file: Data()), .unprocessableContent, "empty_file")
            try await expect(MultipartForm(file: Data(count: 1001)), .contentTooLarge, "upload_too_large")
            try await expect(MultipartForm(file: audio, fields: ["language": "de"]), .unprocessableContent, "unsupported_language")
            try await expect(MultipartForm(file: audio, fields: ["word_timestamps": "maybe"]), .unprocessableContent, "invalid_option")
            try await expect(MultipartForm(file: audio, fields: ["delete_after_seconds": "0"]), .unprocessableContent, "invalid_option")

            let json = try await client.execute(uri: "/transcribe", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}"))
            #expect(json.status == .unsupportedMediaType)
            #expect(try client.errorCode(json) == "unsupported_media_type")

            var truncated = MultipartForm(file: audio).body
            truncated.moveWriterIndex(to: truncated.writerIndex - 30)
            let cut = try await client.execute(uri: "/transcribe", method: .post, headers: [.contentType: MultipartForm().contentType], body: truncated)
            #expect(cut.status == .badRequest)

            // Nothing of the refused uploads is left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.service.fileBlobs.root.appendingPathComponent("tmp").path).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.service.fileBlobs.root.appendingPathComponent("audio").path).isEmpty)

            // Undecodable audio is accepted, then fails with a code; the server keeps serving.
            let id = try await client.submit(Data("GARBAGE, not audio at all".utf8))
            _ = try await client.wait(for: id, in: [.failed], store: server.service.store)
            let failed = try await client.status(id)
            #expect(failed.status == .failed)
            #expect(failed.error?.code == "undecodable_audio")
            #expect(failed.attempts == 1)
            let ok = try await client.submit(audio)
            _ = try await client.wait(for: ok, in: [.completed], store: server.service.store)
        }
    }

    @Test func badRequestsOnOtherRoutes() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let badID = try await client.execute(uri: "/transcribe/not-a-uuid", method: .get)
            #expect(badID.status == .badRequest)
            #expect(try client.errorCode(badID) == "invalid_job_id")
            let unknown = try await client.execute(uri: "/transcribe/\(UUID())", method: .get)
            #expect(unknown.status == .notFound)
            #expect(try client.errorCode(unknown) == "job_not_found")
            let format = try await client.execute(uri: "/transcribe/\(UUID())?format=docx", method: .get)
            #expect(format.status == .badRequest)
            #expect(try client.errorCode(format) == "invalid_parameter")
            let legacy = try await client.execute(uri: "/api/transcribe", method: .post)
            #expect(legacy.status == .gone)
            #expect(try client.errorCode(legacy) == "endpoint_removed")
            #expect(String(buffer: legacy.body).contains("POST /transcribe"))
            let nowhere = try await client.execute(uri: "/nowhere", method: .get)
            #expect(nowhere.status == .notFound)
            #expect(try client.errorCode(nowhere) == "not_found")
            let wrongMethod = try await client.execute(uri: "/transcribe", method: .put)
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "GET, POST")
            #expect(try client.errorCode(wrongMethod) == "method_not_allowed")
            let deleteUnknown = try await client.execute(uri: "/transcribe/\(UUID())", method: .delete)
            #expect(deleteUnknown.status == .notFound)
        }
    }

    @Test func transcriptFormatsWaitForCompletion() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let id = try await client.submit(Data("SLOW recording".utf8))
            _ = try await client.wait(for: id, in: [.processing], store: server.service.store)
            let early = try await client.execute(uri: "/transcribe/\(id)?format=srt", method: .get)
            #expect(early.status == .conflict)
            #expect(try client.errorCode(early) == "job_not_completed")
            let status = try await client.status(id)
            #expect(status.status == .processing)
            #expect(status.result == nil)
        }
    }

    @Test func cancelAndDelete() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            // One worker: the first job runs, the second waits.
            // The running job lasts until it is cancelled (30 s at most), so load cannot finish it first.
            let running = try await client.submit(Data("HANG one".utf8))
            let waiting = try await client.submit(Data("HANG two".utf8))
            _ = try await client.wait(for: running, in: [.processing], store: server.service.store)
            let queued = try await client.status(waiting)
            #expect(queued.status == .pending)
            #expect(queued.queuePosition == 1)

            #expect(try await client.execute(uri: "/transcribe/\(waiting)", method: .delete).status == .noContent)
            #expect(try await client.status(waiting).status == .cancelled)
            #expect(try await client.execute(uri: "/transcribe/\(running)", method: .delete).status == .noContent)
            let cancelled = try await client.status(running)
            #expect(cancelled.status == .cancelled)
            // The worker notices at its next heartbeat and stops at the next window (within a few hundred ms;
            // allowed seconds when the whole suite loads the machine); nothing overwrites the state.
            for _ in 0..<100 where server.transcriber.cancelledRuns == 0 { try await Task.sleep(for: .milliseconds(50)) }
            #expect(server.transcriber.cancelledRuns == 1)
            #expect(try await client.status(running).status == .cancelled)
            let row = try #require(try await server.service.store.job(id: UUID(uuidString: running)!))
            #expect(row.audioPath == nil && row.resultPath == nil)

            // Deleting a finished job: 204, then 410, and DELETE stays idempotent.
            let done = try await client.submit(audio)
            _ = try await client.wait(for: done, in: [.completed], store: server.service.store)
            #expect(try await client.execute(uri: "/transcribe/\(done)", method: .delete).status == .noContent)
            let gone = try await client.execute(uri: "/transcribe/\(done)", method: .get)
            #expect(gone.status == .gone)
            #expect(try client.errorCode(gone) == "job_deleted")
            #expect(try await client.execute(uri: "/transcribe/\(done)", method: .delete).status == .noContent)
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.service.fileBlobs.resultsDirectory.path).isEmpty)
        }
    }

    @Test func transientFailuresAreRetried() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let id = try await client.submit(Data("FLAKY audio".utf8))
            let job = try await client.wait(for: id, in: [.completed, .failed], store: server.service.store)
            #expect(job.state == .completed)
            #expect(job.attempts == 2)
        }
    }

    /// Twenty concurrent uploads with one Idempotency-Key: one job, the same id in every answer, one stored file.
    @Test func idempotentUploads() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let form = MultipartForm(file: Data("SLOW so that the job stays busy".utf8))
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let response = try await client.execute(
                            uri: "/transcribe", method: .post,
                            headers: [.contentType: form.contentType, HTTPField.Name("Idempotency-Key")!: "retry-me"], body: form.body)
                        #expect(response.status == .accepted)
                        return try TestJSON.decode(Components.Schemas.JobCreated.self, response.body).jobId
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            let listed = try TestJSON.decode(Components.Schemas.JobList.self, try await client.execute(uri: "/transcribe", method: .get).body)
            #expect(listed.jobs.map(\.jobId) == Array(ids))
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.service.fileBlobs.audioDirectory.path).count == 1)
            // Another key is another job.
            let other = try await client.execute(
                uri: "/transcribe", method: .post,
                headers: [.contentType: form.contentType, HTTPField.Name("Idempotency-Key")!: "another"], body: form.body)
            #expect(try TestJSON.decode(Components.Schemas.JobCreated.self, other.body).jobId != ids.first)
        }
    }

    @Test func listNewestFirstWithFilterAndCursor() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            var ids: [String] = []
            for _ in 0..<5 { ids.append(try await client.submit(audio)) }
            for id in ids { _ = try await client.wait(for: id, in: [.completed], store: server.service.store) }
            let first = try await client.execute(uri: "/transcribe?limit=2", method: .get)
            let page1 = try TestJSON.decode(Components.Schemas.JobList.self, first.body)
            #expect(page1.jobs.map(\.jobId) == [ids[4], ids[3]])
            let cursor = try #require(page1.nextCursor)
            let page2 = try TestJSON.decode(Components.Schemas.JobList.self, try await client.execute(uri: "/transcribe?limit=2&cursor=\(cursor)", method: .get).body)
            #expect(page2.jobs.map(\.jobId) == [ids[2], ids[1]])
            let page3 = try TestJSON.decode(Components.Schemas.JobList.self, try await client.execute(uri: "/transcribe?limit=2&cursor=\(page2.nextCursor!)", method: .get).body)
            #expect(page3.jobs.map(\.jobId) == [ids[0]])
            #expect(page3.nextCursor == nil)
            // Listing is not retrieval: no result, nothing scheduled for deletion.
            #expect(page1.jobs.allSatisfy { $0.result == nil && $0.retrievedAt == nil })
            let failed = try TestJSON.decode(Components.Schemas.JobList.self, try await client.execute(uri: "/transcribe?status=failed", method: .get).body)
            #expect(failed.jobs.isEmpty)
            let badLimit = try await client.execute(uri: "/transcribe?limit=0", method: .get)
            #expect(badLimit.status == .badRequest)
        }
    }

    @Test func operationsEndpoints() async throws {
        let server = try TestServer()
        try await server.service.app.test(.router) { client in
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(try TestJSON.decode(Components.Schemas.Health.self, health.body).status == .ok)
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .ok)
            let readiness = try TestJSON.decode(Components.Schemas.Readiness.self, ready.body)
            #expect(readiness.checks.database && readiness.checks.disk && readiness.checks.model)

            let id = try await client.submit(audio)
            _ = try await client.wait(for: id, in: [.completed], store: server.service.store)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains(#"steno_jobs{status="completed"} 1"#))
            #expect(metrics.contains("steno_queue_depth 0"))
            #expect(metrics.contains("steno_processing_seconds_count 1"))
            #expect(metrics.contains("steno_audio_seconds_total 2.5"))
            #expect(metrics.contains("steno_real_time_factor_count 1"))
            #expect(metrics.contains(#"steno_http_request_duration_seconds_count{method="POST",route="/transcribe",status="202"} 1"#))

            let document = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(String(buffer: document.body).hasPrefix("openapi: 3.1.0"))
            let docs = String(buffer: try await client.execute(uri: "/docs/reference", method: .get).body)
            #expect(docs.contains("<code>/transcribe/{job_id}</code>"))
            #expect(docs.contains("JobStatus"))
        }
    }
}
