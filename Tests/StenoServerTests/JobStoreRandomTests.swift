import Foundation
import StenoServer
import Testing

/// Random sequences of submit, claim, heartbeat, complete, fail, release, cancel, crash (resume) and clock
/// moves against the store, checking after each step what must always hold: a terminal state never changes,
/// attempts never exceed the maximum, a job is held by at most one live lease, and in the end every job
/// reaches a terminal state once workers keep going.
@Suite struct JobStoreRandomTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func invariantsHoldUnderRandomOperations(seed: UInt64) async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.url.appendingPathComponent("random.sqlite"))
        var random = Generator(state: seed)
        var now = JobStoreContract.t0
        var leases: [JobLease] = []
        var jobs: [UUID] = []
        var terminal: [UUID: JobState] = [:]
        let lease: TimeInterval = 30

        func check() async throws {
            for id in jobs {
                let job = try #require(try await store.job(id: id))
                #expect(job.attempts <= job.maxAttempts)
                if let final = terminal[id] { #expect(job.state == final, "a terminal state changed") }
                if job.state.isTerminal { terminal[id] = job.state }
                if job.state == .processing { #expect(job.leaseToken != nil) }
            }
        }

        for _ in 0..<300 {
            switch Int.random(in: 0..<10, using: &random) {
            case 0, 1:
                jobs.append(try await JobStoreContract.newJob(store, at: now, maxAttempts: 3).id)
            case 2, 3:
                if let claimed = try await store.claim(owner: "w", leaseDuration: lease, now: now) {
                    // No other live lease holds this job.
                    #expect(!leases.contains { $0.job.id == claimed.job.id && $0.token == claimed.token })
                    leases.append(claimed)
                }
            case 4:
                if let held = leases.randomElement(using: &random) {
                    _ = try await store.heartbeat(held, progress: Double.random(in: 0...1, using: &random), leaseDuration: lease, now: now)
                }
            case 5:
                if let index = leases.indices.randomElement(using: &random) {
                    let held = leases.remove(at: index)
                    _ = try await store.complete(held, resultPath: "results/\(held.job.id)", duration: 1, language: "en", now: now)
                }
            case 6:
                if let index = leases.indices.randomElement(using: &random) {
                    let held = leases.remove(at: index)
                    if Bool.random(using: &random) {
                        _ = try await store.fail(held, failure: JobFailure(code: "undecodable_audio", message: "x"), now: now)
                    } else {
                        _ = try await store.release(held, runAfter: now.addingTimeInterval(5), failure: nil, countAttempt: true)
                    }
                }
            case 7:
                if let id = jobs.randomElement(using: &random) { _ = try await store.cancel(id: id, now: now) }
            case 8:
                // A crash: every lease is lost; the restarted server resumes what was processing.
                leases.removeAll()
                _ = try await store.resumeInterrupted(now: now)
            default:
                now = now.addingTimeInterval(Double.random(in: 0...40, using: &random))
            }
            try await check()
        }

        // Workers that never crash drain the queue: every job ends terminal.
        for _ in 0..<10_000 {
            now = now.addingTimeInterval(60)
            guard let held = try await store.claim(owner: "drain", leaseDuration: lease, now: now) else {
                let pending = try await store.count(state: .pending)
                let processing = try await store.count(state: .processing)
                if pending == 0 && processing == 0 { break }
                continue
            }
            _ = try await store.complete(held, resultPath: "results/\(held.job.id)", duration: 1, language: "en", now: now)
        }
        try await check()
        for id in jobs { #expect(try await store.job(id: id)?.state.isTerminal == true) }
    }
}
