import Foundation
package import Logging
public import ServiceLifecycle
import StenoEngine

/// Runs jobs: `workers` loops that each claim a job from the job service, transcribe it on a thread of their
/// own while a heartbeat renews the lease and records progress, then record the outcome through the service. A `Service`: at start
/// (single-node SQLite only) it resumes the jobs a previous run left processing — with several nodes on one
/// PostgreSQL, jobs of a dead node are rescued by `claim` once their lease expires instead; on graceful shutdown
/// it stops claiming, lets running transcriptions finish within `shutdownGrace`, then stops them and gives their
/// jobs back to the queue. Outcomes are written again while the database is briefly unavailable.
public final class WorkerPool: Service {
    package struct Settings: Sendable {
        var workers: Int
        var leaseDuration: TimeInterval
        var heartbeatInterval: TimeInterval
        var pollInterval: TimeInterval
        var shutdownGrace: TimeInterval
        /// Only right when this process is the only one on its database: every processing job is then its own.
        var resumeInterruptedAtStart: Bool
        /// SQLite: the data directory's instance lock, which tells whether another server is running on it.
        var instanceLockPath: URL?
        /// SQLite: space held back on the data directory's disk so that a job can be handed back when the disk
        /// is full (the database shares that disk). Nil with PostgreSQL, whose disk is elsewhere.
        var spaceReserve: SpaceReserve?
        /// Fetches the audio of jobs submitted by `audio_url`.
        var downloader: AudioDownloader

        init(_ configuration: ServerConfiguration) {
            var download = AudioDownloader.Settings(maxBytes: configuration.maxUploadBytes, timeout: configuration.audioURLTimeout)
            download.stallTimeout = configuration.uploadStallTimeout
            // The allowlist was checked when the settings were read.
            downloader = AudioDownloader(policy: (try? CallbackPolicy(allowlist: configuration.audioURLAllow)) ?? CallbackPolicy(), settings: download)
            workers = max(1, configuration.workers)
            leaseDuration = configuration.leaseDuration
            heartbeatInterval = configuration.heartbeatInterval
            pollInterval = configuration.pollInterval
            shutdownGrace = configuration.shutdownGrace
            resumeInterruptedAtStart = configuration.databaseURL == nil
            instanceLockPath = configuration.databaseURL == nil ? configuration.dataDirectory.appendingPathComponent("steno.lock") : nil
            spaceReserve = configuration.databaseURL == nil
                ? SpaceReserve(path: configuration.dataDirectory.appendingPathComponent("space-reserve")) : nil
        }
    }

    private let jobs: JobService
    private let transcriber: any Transcriber
    private let metrics: StenoMetrics
    private let logger: Logger
    private let settings: Settings
    /// The text of the jobs transcribing here, window by window (read by streaming requests).
    package let live = LiveTranscripts()
    /// Wakes idle workers: signalled for every job the service accepts (`JobEvent.accepted`) and by LISTEN.
    package let wake = WakeSignal()
    /// A fresh id per process (the lease owner prefix), so a restarted node never mistakes its predecessor's
    /// leases for its own.
    package let nodeID: String
    /// Opens when the store is usable (the database migrated).
    private let ready: StartGate
    /// Held for the pool's life (SQLite): see `InstanceLock`.
    private let instanceLock = Locked<InstanceLock?>(nil)
    /// Set when graceful shutdown begins: no more claims.
    private let stopping = Locked(false)
    /// Set when the shutdown grace period is over: running transcriptions stop at their next window.
    private let aborting = Locked(false)

    init(
        jobs: JobService, transcriber: any Transcriber, metrics: StenoMetrics, settings: Settings, nodeID: String = StenoNode.newID(), ready: StartGate = StartGate(open: true),
        logger: Logger
    ) {
        self.nodeID = nodeID
        self.ready = ready
        self.jobs = jobs
        self.transcriber = transcriber
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        guard await ready.waitUnlessShuttingDown() else { return }
        if settings.resumeInterruptedAtStart {
            let lock = settings.instanceLockPath.map { InstanceLock(path: $0) }
            instanceLock.withLock { $0 = lock }
            if lock?.isSoleInstance ?? true {
                let resumed = try await jobs.resumeInterrupted()
                if resumed > 0 { logger.notice("resumed jobs interrupted by the previous run", metadata: ["jobs": "\(resumed)"]) }
            } else {
                logger.warning("another steno server is running on this data directory: its processing jobs are left to their leases")
            }
            lock?.share()
        }
        if let reserve = settings.spaceReserve, !reserve.replenish() {
            logger.warning("no room for the space reserve: a job whose result finds the disk full waits for its lease",
                           metadata: ["bytes": "\(reserve.bytes)"])
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<settings.workers {
                    group.addTask { await self.workLoop(worker: "\(self.nodeID)-\(index)") }
                }
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
    }

    private func beginShutdown() {
        stopping.withLock { $0 = true }
        wake.signal()
        let grace = settings.shutdownGrace
        // Detached on purpose: a timer that must fire while the pool's own tasks are busy finishing.
        Task.detached { [aborting, logger] in
            try? await Task.sleep(for: .seconds(grace))
            aborting.withLock { $0 = true }
            logger.info("shutdown grace period over: stopping running transcriptions")
        }
    }

    private var isStopping: Bool { stopping.current }

    private func workLoop(worker: String) async {
        // A cancelled task (not a graceful stop) ends the loop too: its waits return at once, so it would spin.
        while !isStopping && !Task.isCancelled {
            // Taken again once a full disk has room (a no-op while it is held).
            settings.spaceReserve?.replenish()
            do {
                if let lease = try await jobs.claim(owner: worker, leaseDuration: settings.leaseDuration) {
                    if lease.job.attempts > 1 { metrics.reclaimed() }
                    await process(lease)
                } else {
                    await wake.wait(timeout: .seconds(settings.pollInterval))
                }
            } catch is CancellationError where isStopping || Task.isCancelled {
                // A claim interrupted by shutdown: nothing went wrong, the loop ends.
                break
            } catch {
                // The store is unavailable (disk full, locked too long): back off rather than spin.
                logger.error("worker could not claim a job", metadata: ["error": "\(error)"])
                await wake.wait(timeout: .seconds(max(settings.pollInterval, 1)))
            }
        }
    }

    /// Runs one claimed job to its outcome. Every write carries the lease; a rejected write means the job was
    /// cancelled or taken over, and this worker's outcome is dropped.
    private func process(_ lease: JobLease) async {
        let job = lease.job
        var log = logger
        log[metadataKey: "job_id"] = "\(job.id.uuidString.lowercased())"
        log[metadataKey: "attempt"] = "\(job.attempts)"
        log.info("transcription started")

        let audioPath = job.audioPath
        let audioURL = job.options.audioURL
        if audioPath == nil, audioURL == nil {
            _ = try? await jobs.fail(lease, failure: JobFailure(code: "audio_missing", message: "the job's audio is gone"))
            return
        }
        let progress = Locked(job.progress)
        let leaseLost = Locked(false)
        let started = ContinuousClock.now

        let outcome: Result<TranscriptionResult, any Error> = await withTaskGroup(of: Void.self) { group in
            // Heartbeat: renews the lease and stores progress; notices a cancel or a takeover.
            group.addTask { [jobs, settings, metrics, log] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(settings.heartbeatInterval))
                    if Task.isCancelled { break }
                    do {
                        let held = try await jobs.heartbeat(lease, progress: progress.current, leaseDuration: settings.leaseDuration)
                        if !held {
                            metrics.rejectedWrite("heartbeat")
                            leaseLost.withLock { $0 = true }
                            break
                        }
                    } catch {
                        log.warning("heartbeat failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            let options = job.options.transcriptionOptions
            let model = job.options.model ?? transcriber.models.defaultName
            let result: Result<TranscriptionResult, any Error>
            do {
                let transcriber = self.transcriber
                let aborting = self.aborting
                let live = self.live
                let jobID = job.id
                live.start(jobID)
                let run: @Sendable (URL) async throws -> TranscriptionResult = { file in
                    try await InferenceThread.run(name: "steno-inference") {
                        try transcriber.transcribe(
                            file: file, model: model, options: options,
                            progress: { fraction in progress.withLock { $0 = max($0, fraction) } },
                            isCancelled: { leaseLost.current || aborting.current },
                            text: { text in live.append(text, to: jobID) })
                    }
                }
                if let audioPath {
                    // A local file for the decoder: the file itself on one machine, a download from the database otherwise.
                    result = .success(try await jobs.blobs.withLocalFile(audioPath, run))
                } else {
                    // Submitted by URL: fetched by this attempt into a scratch file, gone after it.
                    let scratch = jobs.blobs.temporaryFile()
                    defer { try? FileManager.default.removeItem(at: scratch) }
                    let bytes = try await settings.downloader.download(
                        audioURL ?? "", to: scratch, isCancelled: { leaseLost.current || aborting.current })
                    log.info("audio fetched", metadata: ["bytes": "\(bytes)"])
                    result = .success(try await run(scratch))
                }
            } catch {
                result = .failure(error)
            }
            group.cancelAll()
            return result
        }
        // Kept until the outcome is recorded, so that a streaming request sees the text until the job is final.
        defer { live.finish(job.id) }
        let seconds = started.duration(to: .now).seconds

        do {
            try await record(outcome, of: lease, seconds: seconds, leaseLost: leaseLost.current, log: log)
        } catch {
            // The store failed to take the outcome: the lease will expire and another attempt runs the job.
            log.error("could not record the outcome", metadata: ["error": "\(error)"])
        }
    }

    private func record(
        _ outcome: Result<TranscriptionResult, any Error>, of lease: JobLease, seconds: Double, leaseLost: Bool, log: Logger
    ) async throws {
        switch outcome {
        case .success(let result):
            let name: String
            do {
                name = try await persistently(log) { try await self.jobs.storeResult(result, of: lease) }
            } catch {
                // The result could not be stored (a full disk, most likely; no partial file is left): the job is
                // retried later like any transient failure, and fails with this code when out of attempts.
                let code = ErrorMap.storageFailureCode(error)
                try await handBack(lease, error: error, code: code, finalCode: code, log: log)
                return
            }
            let completed: Bool
            do {
                completed = try await persistently(log) { try await self.jobs.complete(lease, resultName: name, result: result) }
            } catch {
                // The database's disk is full (SQLite beside the results, or PostgreSQL's own): retried like a
                // result that could not be stored.
                guard OutOfSpace.matches(error) else { throw error }
                try await handBack(lease, error: error, code: "storage_full", finalCode: "storage_full", log: log)
                return
            }
            if completed {
                metrics.transcribed(processingSeconds: seconds, audioSeconds: result.duration)
                log.info("transcription completed", metadata: ["seconds": "\(seconds)", "audio_seconds": "\(result.duration)"])
            } else {
                // Cancelled or taken over meanwhile: the newer state stands, and the service dropped this result.
                metrics.rejectedWrite("complete")
                log.notice("result dropped: the job was cancelled or taken over")
            }
        case .failure(let error):
            if leaseLost {
                log.notice("transcription stopped: the job was cancelled or taken over")
                return
            }
            if aborting.current, (error as? EngineError) == .cancelled {
                // Shutdown stopped it: not the job's fault, so the attempt is given back.
                _ = try await persistently(log) { try await self.jobs.requeue(lease, after: 0, failure: nil, countAttempt: false) }
                log.notice("transcription interrupted by shutdown; the job is queued again")
                return
            }
            if error is DatabaseUnavailable {
                // The audio could not be fetched: not the job's fault either, so the attempt is given back.
                _ = try await persistently(log) { try await self.jobs.requeue(lease, after: 1, failure: nil, countAttempt: false) }
                log.warning("the database was unavailable during the job; it is queued again", metadata: ["error": "\(error)"])
                return
            }
            if let failure = ErrorMap.permanentFailure(error) {
                if try await persistently(log, { try await self.jobs.fail(lease, failure: failure) }) {
                    log.notice("transcription failed", metadata: ["code": "\(failure.code)", "message": "\(failure.message)"])
                }
            } else {
                try await handBack(lease, error: error, code: "transient_error", finalCode: "transcription_failed", log: log)
            }
        }
    }

    /// A failure another attempt may fix: the job goes back to the queue with backoff, or fails with
    /// `finalCode` when it has used its attempts (the service's retry rule).
    private func handBack(_ lease: JobLease, error: any Error, code: String, finalCode: String, log: Logger) async throws {
        switch jobs.handBack(lease.job, error: error, code: code, finalCode: finalCode) {
        case .fail(let failure):
            if try await handingBack(log, { try await self.jobs.fail(lease, failure: failure) }) {
                log.error("transcription failed for good", metadata: ["code": "\(finalCode)", "error": "\(error)"])
            } else {
                metrics.rejectedWrite("fail")
            }
        case .retry(let delay, let failure):
            if try await handingBack(log, { try await self.jobs.requeue(lease, after: delay, failure: failure, countAttempt: true) }) {
                metrics.retried()
                log.warning("transcription failed; retrying", metadata: ["code": "\(code)", "error": "\(error)", "delay": "\(delay)"])
            } else {
                metrics.rejectedWrite("release")
            }
        }
    }

    /// Runs a write again while the database is unavailable (restarting, failing over), for up to twice the lease
    /// (at least a minute): a finished transcription is not thrown away for a blip. Other errors pass at once.
    private func persistently<Value: Sendable>(_ log: Logger, _ write: @Sendable () async throws -> Value) async throws -> Value {
        let deadline = ContinuousClock.now + .seconds(max(2 * settings.leaseDuration, 60))
        var delay = 0.2
        while true {
            do {
                return try await write()
            } catch let error as DatabaseUnavailable where ContinuousClock.now < deadline && !aborting.current {
                log.warning("database unavailable; writing the outcome again", metadata: ["error": "\(error)", "retry_in": "\(delay)s"])
                try await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 5)
            }
        }
    }

    /// A write that hands a job back (to the queue, or failed for good) while the disk may be full: when it finds
    /// no space, the space reserve is given back to the filesystem and the write runs once more, so the job is
    /// retried now rather than when its lease runs out.
    private func handingBack<Value: Sendable>(_ log: Logger, _ write: @Sendable () async throws -> Value) async throws -> Value {
        do {
            return try await persistently(log, write)
        } catch where OutOfSpace.matches(error) {
            guard let reserve = settings.spaceReserve, reserve.release() else { throw error }
            log.warning("disk full: space reserve released to hand the job back", metadata: ["bytes": "\(reserve.bytes)"])
            return try await persistently(log, write)
        }
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
