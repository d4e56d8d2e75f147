import Foundation

/// Runs blocking, CPU-heavy work on a thread of its own, so that neither the event loops nor Swift's
/// cooperative pool are held while a recording is transcribed (HTTP stays responsive with every worker busy).
enum InferenceThread {
    static func run<Result: Sendable>(name: String, _ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Swift.Result { try work() })
            }
            thread.name = name
            // Whisper's encoder keeps deep stacks of large frames; give the thread room.
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
