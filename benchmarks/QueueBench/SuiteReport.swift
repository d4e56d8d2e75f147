import Foundation

/// The suite's summary: medians [min–max] per configuration, then ratios.
enum SuiteReport {
    static func print(
        configurations: [QueueConfiguration], results: [QueueConfiguration: [QueueRunResult]], resets: [String: Int],
        repeats: Int
    ) {
        Swift.print("\nmedians of \(repeats) runs [min–max]")
        Swift.print(pad("configuration", 24) + pad("claimed+completed/s", 26) + pad("drain/s", 10)
            + pad("add→start p50 ms", 26) + pad("p99 ms", 24) + "reruns")
        for configuration in configurations {
            let runs = results[configuration] ?? []
            Swift.print(pad(configuration.label, 24)
                + pad(spread(runs.map(\.throughput), "%.0f"), 26)
                + pad(String(format: "%.0f", Statistics.median(runs.map(\.drainThroughput))), 10)
                + pad(spread(runs.map(\.latencyP50), "%.1f"), 26)
                + pad(spread(runs.map(\.latencyP99), "%.1f"), 24)
                + "\(runs.map(\.reruns).reduce(0, +)) (unfinished \(runs.map(\.unfinished).reduce(0, +)))")
        }

        Swift.print("\nratios of medians")
        Swift.print(pad("configuration", 24) + pad("throughput / 1 process", 24) + pad("throughput / sqlite", 22) + "p50 / sqlite")
        for configuration in configurations {
            let base = QueueConfiguration(
                store: configuration.store, processes: 1, workersPerProcess: configuration.workersPerProcess,
                driver: configuration.driver)
            // The same layout on SQLite, with the same driver (ratios across drivers would mix two things).
            let sqlite = configurations.first {
                $0.store == "sqlite" && $0.processes == configuration.processes
                    && $0.workersPerProcess == configuration.workersPerProcess && $0.driver == configuration.driver
            }
            Swift.print(pad(configuration.label, 24)
                + pad(ratio(results[configuration], results[base], \.throughput), 24)
                + pad(configuration.store == "sqlite" ? "–" : ratio(results[configuration], sqlite.flatMap { results[$0] }, \.throughput), 22)
                + (configuration.store == "sqlite" ? "–" : ratio(results[configuration], sqlite.flatMap { results[$0] }, \.latencyP50)))
        }
        if !resets.isEmpty {
            Swift.print("\nreset check: one worker process holds jobs (50 ms each) while a second one starts")
            for (label, count) in resets.sorted(by: { $0.key < $1.key }) {
                Swift.print("  \(label): \(count) job(s) claimed again after the second process started"
                    + (count == 0 ? " (none reset)" : " — the new process reset running jobs"))
            }
        }
    }

    static func spread(_ values: [Double], _ format: String) -> String {
        let finite = values.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max() else { return "–" }
        return String(format: format, Statistics.median(finite)) + " [" + String(format: format, low) + "–"
            + String(format: format, high) + "]"
    }

    static func ratio(_ a: [QueueRunResult]?, _ b: [QueueRunResult]?, _ value: KeyPath<QueueRunResult, Double>) -> String {
        guard let a, let b, !a.isEmpty, !b.isEmpty else { return "–" }
        return String(format: "%.2f", Statistics.median(a.map { $0[keyPath: value] }) / Statistics.median(b.map { $0[keyPath: value] }))
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
