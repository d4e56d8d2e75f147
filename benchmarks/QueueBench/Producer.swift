import Foundation
import StenoEngine
import StenoServer

/// Submits jobs the way an upload does: the audio file goes into the blob store under the job's id, then the
/// job row into the store. The audio is a tiny stand-in (the no-op handler never reads it).
struct Producer: Sendable {
    let store: any JobStore
    let blobs: any BlobStore
    static let audio = Data(repeating: 0, count: 1024)

    /// One job; `createdAt` is taken before anything is written, so latency counts the whole submission.
    func submit(runAfter: Date? = nil) async throws -> UUID {
        let id = UUID()
        let now = Date()
        let temporary = blobs.temporaryFile()
        try Self.audio.write(to: temporary)
        let path = try await blobs.commitAudio(temporary, jobID: id)
        var job = Job(
            id: id, options: JobOptions(), createdAt: now, expiresAt: now.addingTimeInterval(24 * 3600),
            maxAttempts: 3, audioPath: path, audioBytes: Int64(Self.audio.count))
        if let runAfter { job.runAfter = runAfter }
        return try await store.insert(job).id
    }

    /// `count` jobs that are not due for a year (the run releases them at once), written by 4 tasks.
    func insertBacklog(count: Int) async throws -> [UUID] {
        let later = Date().addingTimeInterval(365 * 24 * 3600)
        return try await withThrowingTaskGroup(of: [UUID].self) { group in
            for part in 0..<4 {
                let share = count / 4 + (part < count % 4 ? 1 : 0)
                group.addTask {
                    var ids: [UUID] = []
                    for _ in 0..<share { ids.append(try await submit(runAfter: later)) }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// `count` jobs arriving one at a time, `rate` per second on average, at exponentially distributed gaps
    /// (a fixed seed, so every run sees the same arrival pattern). Arrivals are not in step with any polling.
    func insertPaced(count: Int, rate: Double) async throws -> [UUID] {
        var random = SplitMix64(seed: 5)
        let start = ContinuousClock.now
        var offset = 0.0
        var ids: [UUID] = []
        for _ in 0..<count {
            offset += -log(1 - random.nextUnit()) / rate
            let due = start + .seconds(offset)
            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            ids.append(try await submit())
        }
        return ids
    }
}
