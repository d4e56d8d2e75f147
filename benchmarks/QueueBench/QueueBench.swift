import ArgumentParser

/// The queue benchmark of issue 5 (see benchmarks/README.md and benchmarks/queue.sh): worker processes that run
/// jobs with a no-op transcriber, a producer, and the measurements around them.
@main
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steno-queue-bench",
        abstract: "Steno's job queue under load: throughput and add-to-start latency.",
        subcommands: [SuiteCommand.self, WorkerCommand.self, ReportCommand.self])
}
