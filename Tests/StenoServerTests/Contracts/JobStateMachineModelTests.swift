import Foundation
import Logging
import StenoEngine
import StenoServer
import Testing

/// A model-based test of the job state machine. Random (seeded) sequences of submit, claim, heartbeat,
/// complete, fail, release, cancel, crash (a worker dies and its lease is simply abandoned) and clock moves run
/// against a store and, side by side, against `JobModel`, a few lines of plain Swift saying what each operation
/// must do. After every step the two must agree on each operation's answer and on every job's state, attempts,
/// lease and due time; and the invariants hold: a terminal state never changes, attempts never exceed the
/// maximum. Stale leases (of workers that crashed or were taken over) keep being used, so every guarded write
/// is exercised when it must be refused. At the end, workers that never crash drain the queue: every accepted
/// job ends terminal. Reproduce a failure with `STENO_MODEL_SEED=<seed>` (the seed is in every message).
enum JobStateMachineModel {
    /// What the store must hold for one job.
    struct ModelJob: Equatable, CustomStringConvertible {
        var sequence: Int
        var state: JobState
        var attempts: Int
        var maxAttempts: Int
        var runAfter: Date
        var leaseToken: String?
        var leaseExpiresAt: Date?
        var errorCode: String?

        var description: String {
            "\(state) attempts=\(attempts)/\(maxAttempts) lease=\(leaseToken?.prefix(8) ?? "-") until=\(leaseExpiresAt.map { "\($0.timeIntervalSince1970)" } ?? "-") runAfter=\(runAfter.timeIntervalSince1970) error=\(errorCode ?? "-")"
        }
    }

    /// The specification, as simple as it can be: a dictionary of jobs and the rules of each operation.
    struct JobModel {
        var jobs: [UUID: ModelJob] = [:]
        private var nextSequence = 0

        mutating func submit(_ id: UUID, at now: Date, maxAttempts: Int) {
            jobs[id] = ModelJob(sequence: nextSequence, state: .pending, attempts: 0, maxAttempts: maxAttempts, runAfter: now)
            nextSequence += 1
        }

        private func runnable(_ job: ModelJob, _ now: Date) -> Bool {
            (job.state == .pending && job.runAfter <= now)
                || (job.state == .processing && job.leaseExpiresAt! <= now)
        }

        /// Runnable jobs out of attempts fail; then the oldest runnable job is taken. Returns its id.
        mutating func claim(token: String, lease: TimeInterval, now: Date) -> UUID? {
            for (id, job) in jobs where runnable(job, now) && job.attempts >= job.maxAttempts {
                jobs[id] = ModelJob(sequence: job.sequence, state: .failed, attempts: job.attempts, maxAttempts: job.maxAttempts,
                                    runAfter: job.runAfter, errorCode: "attempts_exhausted")
            }
            guard let (id, _) = jobs.filter({ runnable($0.value, now) }).min(by: { $0.value.sequence < $1.value.sequence }) else {
                return nil
            }
            jobs[id]!.state = .processing
            jobs[id]!.attempts += 1
            jobs[id]!.leaseToken = token
            jobs[id]!.leaseExpiresAt = now.addingTimeInterval(lease)
            return id
        }

        func holds(_ id: UUID, _ token: String) -> Bool {
            jobs[id]?.state == .processing && jobs[id]?.leaseToken == token
        }

        mutating func heartbeat(_ id: UUID, _ token: String, lease: TimeInterval, now: Date) -> Bool {
            guard holds(id, token) else { return false }
            jobs[id]!.leaseExpiresAt = now.addingTimeInterval(lease)
            return true
        }

        mutating func finish(_ id: UUID, _ token: String, as state: JobState, code: String?) -> Bool {
            guard holds(id, token) else { return false }
            jobs[id]!.state = state
            jobs[id]!.leaseToken = nil
            jobs[id]!.leaseExpiresAt = nil
            jobs[id]!.errorCode = code
            return true
        }

        mutating func release(_ id: UUID, _ token: String, runAfter: Date, code: String?, countAttempt: Bool) -> Bool {
            guard holds(id, token) else { return false }
            jobs[id]!.state = .pending
            jobs[id]!.runAfter = runAfter
            if !countAttempt { jobs[id]!.attempts -= 1 }
            if let code { jobs[id]!.errorCode = code }
            jobs[id]!.leaseToken = nil
            jobs[id]!.leaseExpiresAt = nil
            return true
        }

        mutating func cancel(_ id: UUID) {
            guard let job = jobs[id], job.state == .pending || job.state == .processing else { return }
            jobs[id]!.state = .cancelled
            jobs[id]!.leaseToken = nil
            jobs[id]!.leaseExpiresAt = nil
            jobs[id]!.errorCode = nil
        }
    }

    static let leaseDuration: TimeInterval = 30

    /// Seeds run by default; `STENO_MODEL_SEED` replaces them with one seed (to reproduce a failure).
    static func seeds(_ defaults: [UInt64]) -> [UInt64] {
        ProcessInfo.processInfo.environment["STENO_MODEL_SEED"].flatMap(UInt64.init).map { [$0] } ?? defaults
    }

    /// Runs `steps` random operations against `store` and the model, then drains the queue.
    static func run(_ store: any JobStore, seed: UInt64, steps: Int) async throws {
        var random = SplitMix64(seed: seed)
        var model = JobModel()
        // Integer seconds only: SQLite keeps times as doubles and PostgreSQL in microseconds, and a lease
        // expiring exactly "now" must compare the same way in both.
        var now = JobStoreContract.t0
        /// Every lease ever handed out, live or stale: (lease, its worker is still alive).
        var leases: [JobLease] = []
        var alive: Set<String> = []
        var everTerminal: [UUID: JobState] = [:]
        var tokenCount = 0
        func where_(_ step: Int, _ operation: String) -> String { "seed \(seed), step \(step), \(operation)" }
        /// Mostly a live worker's lease; sometimes any lease ever issued (a zombie: a worker that stalled past
        /// its lease, or a dead one's), whose writes must be refused once the job moved on.
        func pickLease() -> JobLease? {
            let live = leases.filter { alive.contains($0.token) }
            if !live.isEmpty, Int.random(in: 0..<5, using: &random) > 0 { return live.randomElement(using: &random) }
            return leases.randomElement(using: &random)
        }

        func compare(_ step: Int, _ operation: String) async throws {
            for (id, expected) in model.jobs {
                let job = try #require(try await store.job(id: id), "\(where_(step, operation))")
                let actual = ModelJob(
                    sequence: expected.sequence, state: job.state, attempts: job.attempts, maxAttempts: job.maxAttempts,
                    runAfter: job.runAfter, leaseToken: job.leaseToken, leaseExpiresAt: job.leaseExpiresAt,
                    errorCode: job.errorCode)
                #expect(actual == expected, "\(where_(step, operation)): job \(id.uuidString.prefix(8)) is \(actual), model says \(expected)")
                // Invariants that hold whatever the model says.
                #expect(job.attempts <= job.maxAttempts, "\(where_(step, operation))")
                if let final = everTerminal[id] { #expect(job.state == final, "a terminal state changed; \(where_(step, operation))") }
                if job.state.isTerminal { everTerminal[id] = job.state }
                #expect((job.state == .processing) == (job.leaseToken != nil), "\(where_(step, operation))")
            }
        }

        for step in 0..<steps {
            let operation: String
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<14:
                operation = "submit"
                let maxAttempts = Int.random(in: 1...3, using: &random)
                let job = try await JobStoreContract.newJob(store, at: now, maxAttempts: maxAttempts)
                model.submit(job.id, at: now, maxAttempts: maxAttempts)
            case 14..<30:
                operation = "claim"
                tokenCount += 1
                let lease = try await store.claim(owner: "w\(tokenCount)", leaseDuration: leaseDuration, now: now)
                let expected = model.claim(token: lease?.token ?? "none", lease: leaseDuration, now: now)
                #expect(lease?.job.id == expected, "\(where_(step, operation)): claimed \(String(describing: lease?.job.id)), model says \(String(describing: expected))")
                if let lease {
                    leases.append(lease)
                    alive.insert(lease.token)
                }
            case 30..<42:
                operation = "heartbeat"
                if let lease = pickLease() {
                    let held = try await store.heartbeat(lease, progress: 0.5, leaseDuration: leaseDuration, now: now)
                    #expect(held == model.heartbeat(lease.job.id, lease.token, lease: leaseDuration, now: now), "\(where_(step, operation))")
                }
            case 42..<52:
                operation = "complete"
                if let lease = pickLease() {
                    let done = try await store.complete(lease, resultPath: "results/\(lease.job.id).json", duration: 1, language: "en", now: now)
                    #expect(done == model.finish(lease.job.id, lease.token, as: .completed, code: nil), "\(where_(step, operation))")
                }
            case 52..<58:
                operation = "fail"
                if let lease = pickLease() {
                    let done = try await store.fail(lease, failure: JobFailure(code: "undecodable_audio", message: "m"), now: now)
                    #expect(done == model.finish(lease.job.id, lease.token, as: .failed, code: "undecodable_audio"), "\(where_(step, operation))")
                }
            case 58..<66:
                operation = "release"
                if let lease = pickLease() {
                    let countAttempt = Bool.random(using: &random)
                    let runAfter = now.addingTimeInterval(Double(Int.random(in: 0...20, using: &random)))
                    let code = countAttempt ? "transient_error" : nil
                    let done = try await store.release(
                        lease, runAfter: runAfter, failure: code.map { JobFailure(code: $0, message: "m") }, countAttempt: countAttempt)
                    #expect(done == model.release(lease.job.id, lease.token, runAfter: runAfter, code: code, countAttempt: countAttempt),
                            "\(where_(step, operation))")
                }
            case 66..<72:
                operation = "cancel"
                if let id = model.jobs.keys.sorted(by: { $0.uuidString < $1.uuidString }).randomElement(using: &random) {
                    let job = try await store.cancel(id: id, now: now)
                    model.cancel(id)
                    #expect(job?.state == model.jobs[id]?.state, "\(where_(step, operation))")
                }
            case 72..<80:
                // A worker dies: its lease stays on the row until it expires, then a claim rescues the job.
                operation = "crash"
                if let token = alive.sorted().randomElement(using: &random) { alive.remove(token) }
            default:
                operation = "clock"
                now = now.addingTimeInterval(Double(Int.random(in: 1...40, using: &random)))
            }
            try await compare(step, operation)
        }

        // Workers that never crash drain the queue: claim, then complete, fail or release; time moves on.
        var rounds = 0
        while model.jobs.values.contains(where: { !$0.state.isTerminal }) {
            rounds += 1
            try #require(rounds < 2000, "seed \(seed): the queue does not drain")
            tokenCount += 1
            let lease = try await store.claim(owner: "drain", leaseDuration: leaseDuration, now: now)
            let expected = model.claim(token: lease?.token ?? "none", lease: leaseDuration, now: now)
            #expect(lease?.job.id == expected, "seed \(seed), drain round \(rounds): claim")
            if let lease {
                switch Int.random(in: 0..<4, using: &random) {
                case 0:
                    let done = try await store.release(lease, runAfter: now, failure: JobFailure(code: "transient_error", message: "m"), countAttempt: true)
                    #expect(done == model.release(lease.job.id, lease.token, runAfter: now, code: "transient_error", countAttempt: true))
                default:
                    let done = try await store.complete(lease, resultPath: "r", duration: 1, language: "en", now: now)
                    #expect(done == model.finish(lease.job.id, lease.token, as: .completed, code: nil))
                }
            } else {
                now = now.addingTimeInterval(30)
            }
            try await compare(steps + rounds, "drain")
        }
        for id in model.jobs.keys {
            #expect(try await store.job(id: id)?.state.isTerminal == true, "seed \(seed): job \(id) did not end terminal")
        }
        #expect(try await store.count(state: .pending) == 0)
        #expect(try await store.count(state: .processing) == 0)
    }
}

@Suite struct JobStateMachineModelTests {
    @Test(arguments: JobStateMachineModel.seeds([1, 2, 3, 4, 5, 6]))
    func sqliteFollowsTheModel(seed: UInt64) async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.url.appendingPathComponent("model.sqlite"))
        try await JobStateMachineModel.run(store, seed: seed, steps: 300)
    }
}

@Suite(.requiresPostgres, .postgresServer) struct PostgresJobStateMachineModelTests {
    @Test(arguments: JobStateMachineModel.seeds([11, 12, 13]))
    func postgresFollowsTheModel(seed: UInt64) async throws {
        let server = try #require(PostgresTestServer.current, "the suite's .postgresServer trait starts it")
        var logger = Logger(label: "steno.jobs.postgres")
        logger.logLevel = .warning
        try await server.withDatabase { clients in
            let store = PostgresJobStore(client: clients[0], logger: logger)
            try await store.migrate()
            try await JobStateMachineModel.run(store, seed: seed, steps: 300)
        }
    }
}
