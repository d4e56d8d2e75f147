import Foundation

/// The text of the jobs this process is transcribing, as it grows window by window: the workers append, a
/// streaming request (`stream=true` on the OpenAI route) reads. In this process's memory only: a request
/// answered by another node than the one running its job sees the text when the job completes.
package final class LiveTranscripts: Sendable {
    private struct Entry {
        var text = ""
        /// When the transcription ended; the text is kept a little longer so that a reader polling the job
        /// sees its last window after the job turned final.
        var finishedAt: ContinuousClock.Instant?
    }

    private let entries = Locked<[UUID: Entry]>([:])
    /// How long a finished job's text stays readable.
    private let keepFinished: Duration = .seconds(30)

    package init() {}

    /// An attempt begins: its text starts empty (a retried job's earlier attempt said nothing that counts).
    func start(_ job: UUID) {
        entries.withLock { $0[job] = Entry() }
    }

    func append(_ text: String, to job: UUID) {
        entries.withLock { $0[job, default: Entry()].text += text }
    }

    /// The text so far (or, shortly after the end, all of it), or nil when the job was not transcribed here.
    func text(of job: UUID) -> String? {
        entries.withLock { $0[job]?.text }
    }

    /// The transcription ended (any outcome); also forgets texts finished long enough ago.
    func finish(_ job: UUID) {
        let now = ContinuousClock.now
        entries.withLock { entries in
            entries[job]?.finishedAt = now
            entries = entries.filter { $0.value.finishedAt.map { now - $0 < keepFinished } ?? true }
        }
    }
}
