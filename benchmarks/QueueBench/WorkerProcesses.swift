import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Worker processes of this benchmark binary (`steno-queue-bench worker …`), started together and stopped
/// together. Their standard error goes to `logDirectory`, so a failed run can be explained.
final class WorkerProcesses: @unchecked Sendable {
    private var processes: [Process] = []
    private let lock = NSLock()
    private var readyCount = 0
    private let logDirectory: URL

    init(logDirectory: URL) {
        self.logDirectory = logDirectory
    }

    /// Starts `count` processes with `arguments` after `worker`, and returns once each has printed `ready`.
    func start(count: Int, arguments: [String]) async throws {
        for _ in 0..<count { try launch(arguments: arguments) }
        try await waitUntilReady(total: processes.count)
    }

    func launch(arguments: [String]) throws {
        let process = Process()
        process.executableURL = try Self.ownExecutable()
        process.arguments = ["worker"] + arguments
        let output = Pipe()
        process.standardOutput = output
        let log = logDirectory.appendingPathComponent("worker-\(processes.count).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil; return }
            if String(decoding: data, as: UTF8.self).contains("ready") { self?.lock.withLock { self?.readyCount += 1 } }
        }
        try process.run()
        processes.append(process)
    }

    func waitUntilReady(total: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while lock.withLock({ readyCount }) < total {
            if let dead = processes.first(where: { !$0.isRunning }) {
                throw BenchError("a worker process exited with status \(dead.terminationStatus); see \(logDirectory.path)")
            }
            guard ContinuousClock.now < deadline else { throw BenchError("worker processes not ready within 60 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGTERM to all, then waits for them to exit (SIGKILL after 30 s).
    func stop() async {
        for process in processes where process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + .seconds(30)
        while processes.contains(where: \.isRunning), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        processes.removeAll()
    }

    private static func ownExecutable() throws -> URL {
        URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    }
}
