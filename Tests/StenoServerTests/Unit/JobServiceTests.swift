import Foundation
import StenoEngine
import StenoServer
import Testing

/// The job service's ordering rules, on a real SQLite file and real files in a temporary data directory:
/// audio before row, row before files, bounds before the body, a stale worker's result dropped, and every
/// terminal state announced once.
@Suite struct JobServiceTests {
    /// A service over fresh storage, with the events it announced.
    final class Fixture: @unchecked Sendable {
        let directory: TemporaryDirectory
        let store: SQLiteJobStore
        let blobs: FileBlobStore
        let clock = ManualClock()
        let service: JobService
        private let lock = NSLock()
        private var announced: [JobEvent] = []
        var events: [JobEvent] { lock.withLock { announced } }

        init(_ settings: JobService.Settings = .init()) throws {
            directory = try TemporaryDirectory()
            store = try SQLiteJobStore(path: directory.url.appendingPathComponent("steno.sqlite"))
            blobs = try FileBlobStore(root: directory.url)
            let events = JobEvents()
            service = JobService(store: store, blobs: blobs, clock: clock, events: events, settings: settings)
            events.subscribe { [unowned self] event in lock.withLock { announced.append(event) } }
        }

        /// Names of the files under `folder` of the data directory.
        func files(_ folder: String) -> [String] {
            (try? FileManager.default.contentsOfDirectory(atPath: directory.url.appendingPathComponent(folder).path)) ?? []
        }

        /// Receives `bytes` as an upload would, then admits and creates the job.
        func submit(tenant: String = "alice", key: String? = nil, bytes: String = "audio") async throws -> Job {
            let admission: JobService.Admission
            switch try await service.admit(tenant: tenant, idempotencyKey: key) {
            case .existing(let job): return job
            case .admitted(let held): admission = held
            }
            let file = blobs.temporaryFile()
            try Data(bytes.utf8).write(to: file)
            return try await service.create(
                JobService.NewJob(options: JobOptions(), audio: file, audioBytes: Int64(bytes.utf8.count)), admission: admission)
        }

        /// Claims the next job and completes it with a one-segment result.
        func claimAndComplete() async throws -> JobLease {
            let lease = try #require(try await service.claim(owner: "worker", leaseDuration: 60))
            let result = TranscriptionResult(text: "hello", language: "en", languageProbability: 1, duration: 1, segments: [])
            let name = try await service.storeResult(result, of: lease)
            #expect(try await service.complete(lease, resultName: name, result: result))
            return lease
        }
    }

    @Test func createStoresTheAudioThenTheRowAndAnnouncesIt() async throws {
        let fixture = try Fixture()
        let job = try await fixture.submit()
        let audio = try #require(job.audioPath)
        #expect(try await fixture.blobs.exists(audio))
        #expect(try await fixture.store.job(id: job.id)?.state == .pending)
        #expect(fixture.events == [.accepted(job.id)])
        // The upload's temporary file became the audio: nothing is left in the spool.
        #expect(fixture.files("tmp").isEmpty)
    }

    @Test func aRetriedUploadGetsTheFirstJobAndStoresNothing() async throws {
        let fixture = try Fixture()
        let first = try await fixture.submit(key: "k1")
        let again = try await fixture.submit(key: "k1")
        #expect(again.id == first.id)
        #expect(fixture.files("audio").count == 1)
        #expect(fixture.events == [.accepted(first.id)])
        // Keys are per tenant.
        #expect(try await fixture.submit(tenant: "bob", key: "k1").id != first.id)
    }

    @Test func aFullQueueIsRefusedBeforeTheBodyAndLeavesNoFile() async throws {
        let fixture = try Fixture(.init(maxQueuedJobs: 1))
        _ = try await fixture.submit()
        await #expect(throws: QueueFull.self) { _ = try await fixture.service.admit(tenant: "alice", idempotencyKey: nil) }

        // Two uploads admitted together: the store's insert refuses the second, whose audio is removed.
        let other = try Fixture(.init(maxQueuedJobs: 1))
        guard case .admitted(let a) = try await other.service.admit(tenant: "alice", idempotencyKey: nil),
              case .admitted(let b) = try await other.service.admit(tenant: "alice", idempotencyKey: nil) else {
            Issue.record("both uploads should pass admission on an empty queue")
            return
        }
        func upload() throws -> URL {
            let file = other.blobs.temporaryFile()
            try Data("audio".utf8).write(to: file)
            return file
        }
        _ = try await other.service.create(.init(options: JobOptions(), audio: try upload(), audioBytes: 5), admission: a)
        await #expect(throws: QueueFull.self) {
            _ = try await other.service.create(.init(options: JobOptions(), audio: try upload(), audioBytes: 5), admission: b)
        }
        #expect(other.files("audio").count == 1)
    }

    @Test func aTenantAtItsBoundIsRefusedUntilAPlaceIsGivenBack() async throws {
        let fixture = try Fixture(.init(maxJobsPerTenant: 1))
        guard case .admitted(let held) = try await fixture.service.admit(tenant: "alice", idempotencyKey: nil) else {
            Issue.record("the first upload should be admitted")
            return
        }
        // The place is held while the first upload's body is read.
        await #expect(throws: TenantJobLimitReached.self) { _ = try await fixture.service.admit(tenant: "alice", idempotencyKey: nil) }
        _ = try await fixture.service.admit(tenant: "bob", idempotencyKey: nil)
        held.release()
        held.release()
        guard case .admitted = try await fixture.service.admit(tenant: "alice", idempotencyKey: nil) else {
            Issue.record("a released place should admit the next upload")
            return
        }
    }

    @Test func aResultOfAWorkerThatLostItsLeaseIsDropped() async throws {
        let fixture = try Fixture()
        let job = try await fixture.submit()
        let lease = try #require(try await fixture.service.claim(owner: "worker", leaseDuration: 60))
        let processing = try #require(try await fixture.store.job(id: job.id))
        #expect(try await fixture.service.remove(processing) == .cancelled(wasState: .processing))
        let result = TranscriptionResult(text: "late", language: "en", languageProbability: 1, duration: 1, segments: [])
        let name = try await fixture.service.storeResult(result, of: lease)
        #expect(try await !fixture.service.complete(lease, resultName: name, result: result))
        #expect(try await !fixture.blobs.exists(name))
        // The cancel took the audio, and the cancel is the one terminal state announced.
        #expect(fixture.files("audio").isEmpty)
        #expect(fixture.events == [.accepted(job.id), .finished(job.id, .cancelled)])
    }

    @Test func theFirstRetrievalStartsTheGraceAndNoGraceDeletesAtOnce() async throws {
        let fixture = try Fixture(.init(retrievalGrace: 0))
        let job = try await fixture.submit()
        _ = try await fixture.claimAndComplete()
        guard case .found(let completed) = try await fixture.service.lookup(id: job.id, tenant: "alice"),
              case .result(let retrieved, let result) = try await fixture.service.retrieve(completed) else {
            Issue.record("a completed job should give its result")
            return
        }
        #expect(result.text == "hello")
        #expect(retrieved.retrievedAt != nil)
        // The answer was read before the files went; now they are gone and the id is a tombstone.
        #expect(fixture.files("audio").isEmpty && fixture.files("results").isEmpty)
        guard case .gone(_, .retrieved) = try await fixture.service.lookup(id: job.id, tenant: "alice") else {
            Issue.record("a purged job should answer as a tombstone")
            return
        }
        #expect(fixture.events == [.accepted(job.id), .finished(job.id, .completed)])
    }

    @Test func deletingAFinishedJobLeavesATombstoneAndExpiryForgetsIt() async throws {
        let fixture = try Fixture()
        let job = try await fixture.submit()
        _ = try await fixture.claimAndComplete()
        #expect(try await fixture.service.remove(try #require(try await fixture.store.job(id: job.id))) == .deleted)
        #expect(fixture.files("audio").isEmpty && fixture.files("results").isEmpty)
        guard case .gone(_, .deleted) = try await fixture.service.lookup(id: job.id, tenant: "alice") else {
            Issue.record("a deleted job should answer as a tombstone")
            return
        }
        // Another tenant never sees it.
        guard case .notFound = try await fixture.service.lookup(id: job.id, tenant: "bob") else {
            Issue.record("another tenant's job must not be found")
            return
        }
        fixture.clock.advance(by: 25 * 3600)
        #expect(try await fixture.service.expireDue(batch: 1) == 1)
        #expect(try await fixture.store.job(id: job.id) == nil)
    }

    @Test func expiryDeletesTheRowAndThenItsFiles() async throws {
        let fixture = try Fixture()
        let job = try await fixture.submit()
        _ = try await fixture.claimAndComplete()
        // Not yet due: nothing goes.
        #expect(try await fixture.service.expireDue(batch: 10) == 0)
        fixture.clock.advance(by: 24 * 3600 + 1)
        #expect(try await fixture.service.expireDue(batch: 10) == 1)
        #expect(try await fixture.store.job(id: job.id) == nil)
        #expect(fixture.files("audio").isEmpty && fixture.files("results").isEmpty)
    }

    @Test func aFailureIsRetriedWithGrowingBackoffThenFailsForGood() async throws {
        let fixture = try Fixture(.init(maxAttempts: 3, retryBackoff: 10))
        var job = try await fixture.submit()
        let error = EngineError.decoderUnavailable("ffmpeg could not start")
        for attempt in 1...2 {
            job.attempts = attempt
            guard case .retry(let delay, let failure) = fixture.service.handBack(job, error: error, code: "transient_error", finalCode: "transcription_failed") else {
                Issue.record("attempt \(attempt) of 3 should be retried")
                return
            }
            let base = 10 * pow(2, Double(attempt - 1))
            #expect((0.75 * base...1.25 * base).contains(delay))
            #expect(failure.code == "transient_error")
        }
        job.attempts = 3
        guard case .fail(let failure) = fixture.service.handBack(job, error: error, code: "transient_error", finalCode: "transcription_failed") else {
            Issue.record("the last attempt should fail for good")
            return
        }
        #expect(failure.code == "transcription_failed")
        #expect(failure.message.hasPrefix("failed 3 times; last error: "))
    }
}
