import ArgumentParser
import Foundation
import StenoServer

/// `steno-queue-bench report`: waits until a store holds `jobs` finished jobs, then prints how fast they were
/// transcribed — audio seconds per wall second from the first claim to the last completion. Used by
/// benchmarks/throughput.sh against real `steno serve` processes.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Wait for N finished jobs and print audio seconds per wall second.")

    @Option(help: "SQLite data directory, or postgres://user@host:port/database.") var database: String
    @Option(help: "Finished jobs to wait for.") var jobs: Int
    @Option(help: "Give up after this many seconds.") var timeout = 1800.0

    func run() async throws {
        let (jobs, timeout) = (jobs, timeout)
        let line = try await BenchDatabase(database).withStore { store, _ -> String in
            let deadline = Date().addingTimeInterval(timeout)
            var all: [Job] = []
            while Date() < deadline {
                all = try await store.list(tenant: Tenant.anonymous, state: nil, before: nil, limit: 1_000_000)
                if all.filter(\.state.isTerminal).count >= jobs { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            let completed = all.filter { $0.state == .completed }
            let audio = completed.compactMap(\.duration).reduce(0, +)
            let first = completed.compactMap(\.startedAt).min() ?? Date()
            let last = completed.compactMap(\.completedAt).max() ?? Date()
            let wall = last.timeIntervalSince(first)
            let reruns = all.filter { $0.attempts > 1 }.count
            return String(
                format: "completed=%d failed=%d unfinished=%d reruns=%d audio_seconds=%.2f wall_seconds=%.3f speed=%.3f",
                completed.count, all.filter { $0.state == .failed }.count, all.filter { !$0.state.isTerminal }.count,
                reruns, audio, wall, audio / wall)
        }
        print(line)
    }
}
