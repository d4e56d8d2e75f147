import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `steno-queue-bench suite`: every configuration, `repeats` times in turn (so the noise of a shared machine
/// falls on all of them alike), then medians and ratios side by side.
struct SuiteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suite", abstract: "Queue throughput and add-to-start latency, every configuration, medians and ratios.")

    @Option(help: "Stores, comma-separated: sqlite, postgres.") var stores = "sqlite,postgres"
    @Option(help: "Worker process counts, comma-separated.") var processes = "1,2,4"
    @Option(help: "Workers per process.") var workers = 1
    @Option(help: "Drivers, comma-separated: pool (the product's WorkerPool), loop (the store's claim/complete loop). A store the pool cannot run on yet falls back to loop.")
    var drivers = "pool"
    @Option(help: "Runs of each configuration.") var repeats = 3
    @Option(help: "Backlog drained in the throughput phase.") var backlog = 2000
    @Option(help: "Jobs of the latency phase.") var latencyJobs = 200
    @Option(help: "Mean arrivals per second in the latency phase.") var rate = 20.0
    @Option(help: "Idle workers' poll interval in seconds (the product's default: 1).") var pollInterval = 1.0
    @Option(help: "PostgreSQL server for the postgres runs: a URL naming an existing database (each run creates its own).")
    var postgres: String?
    @Option(help: "Scratch directory (default: a new one under /tmp).") var workDir: String?
    @Option(help: "Also write every run's figures here as JSON.") var json: String?
    @Flag(help: "Skip the check that a starting worker process leaves the other processes' jobs alone.")
    var skipResetCheck = false

    func run() async throws {
        let work = URL(fileURLWithPath: workDir ?? NSTemporaryDirectory() + "steno-queue-bench-" + UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let workload = QueueWorkload(
            backlog: backlog, latencyJobs: latencyJobs, arrivalRate: rate, pollInterval: pollInterval,
            postgresServer: postgres, workDirectory: work)

        var configurations: [QueueConfiguration] = []
        for store in list(stores) {
            for driver in list(drivers).compactMap(WorkerDriver.init(rawValue:)) {
                // The product's pool runs on SQLite only until the PostgreSQL wiring lands.
                let effective = (store == "postgres" && !Capabilities.poolOnPostgres) ? WorkerDriver.loop : driver
                for count in list(processes).compactMap(Int.init) {
                    let configuration = QueueConfiguration(store: store, processes: count, workersPerProcess: workers, driver: effective)
                    if !configurations.contains(configuration) { configurations.append(configuration) }
                }
            }
        }
        print("queue benchmark: \(configurations.count) configurations × \(repeats) runs; backlog \(backlog) jobs; "
            + "\(latencyJobs) paced arrivals at \(rate)/s; poll interval \(pollInterval) s; \(ProcessInfo.processInfo.activeProcessorCount) cores; "
            + "load average \(LoadAverage.current)")

        var results: [QueueConfiguration: [QueueRunResult]] = [:]
        var runIndex = 0
        for repeatIndex in 1...repeats {
            for configuration in configurations {
                runIndex += 1
                let result = try await QueueRun.run(configuration, workload, index: runIndex)
                results[configuration, default: []].append(result)
                print("run \(repeatIndex)/\(repeats) " + SuiteReport.pad(configuration.label, 22) + String(
                    format: "%8.1f jobs/s (drain %7.1f)  add→start p50 %7.1f ms  p99 %7.1f ms  max %7.1f  reruns %d  unfinished %d",
                    result.throughput, result.drainThroughput, result.latencyP50, result.latencyP99, result.latencyMax,
                    result.reruns, result.unfinished) + "  load " + LoadAverage.current)
                fflush(nil)
            }
        }
        var resets: [String: Int] = [:]
        if !skipResetCheck {
            // Only the pool resumes interrupted jobs at start; the bare claim loop has nothing to check.
            for store in list(stores) where store == "sqlite" || Capabilities.poolOnPostgres {
                runIndex += 1
                resets["\(store) pool"] = try await ResetCheck.run(store: store, driver: .pool, workload, index: runIndex)
            }
        }
        SuiteReport.print(configurations: configurations, results: results, resets: resets, repeats: repeats)
        if let json {
            let rows = configurations.flatMap { results[$0] ?? [] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(rows).write(to: URL(fileURLWithPath: json))
        }
    }

    private func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// What the product can do at this commit (the benchmark adapts instead of failing).
enum Capabilities {
    static let poolOnPostgres = true
}

enum LoadAverage {
    /// The 1-minute load average from /proc/loadavg.
    static var current: String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
        return String(text.split(separator: " ").first ?? "?")
    }
}
