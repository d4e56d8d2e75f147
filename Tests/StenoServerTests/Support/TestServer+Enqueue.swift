import Foundation
import StenoServer

extension TestServer {
    /// Records a job whose audio says `content` (the scripted transcriber reads it), as an upload would: the
    /// audio goes into the blob store under the job's id, the row into the store, then the workers are woken.
    func enqueue(_ content: String) async throws -> UUID {
        let temporary = service.fileBlobs.temporaryFile()
        try Data(content.utf8).write(to: temporary)
        let id = UUID()
        let path = try service.fileBlobs.commitAudio(temporary, jobID: id)
        let now = clock.now()
        _ = try await service.store.insert(Job(
            id: id, options: JobOptions(), createdAt: now, expiresAt: now.addingTimeInterval(3600), maxAttempts: 3,
            audioPath: path, audioBytes: Int64(content.utf8.count)))
        service.workers.wake.signal()
        return id
    }
}
