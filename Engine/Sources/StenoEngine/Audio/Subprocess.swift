#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Runs a helper program (ffmpeg, ffprobe) with a wall-clock limit, streaming its standard output to the
/// caller as it arrives and keeping the start of its standard error. Both pipes are drained together with
/// `poll`, so a program that writes a lot to either never blocks on a full pipe.
enum Subprocess {
    struct Outcome {
        /// Exit status, or the signal number if the program was killed.
        var status: Int32
        /// The first `stderrLimit` bytes of standard error, decoded leniently.
        var standardError: String
        /// The time limit passed and the program was killed.
        var timedOut: Bool
        /// The program ended by a signal it did not handle (`status` is then the signal number).
        var signaled: Bool = false
    }

    /// Kernel limits (`setrlimit`) applied to the child before it starts: CPU seconds (the kernel sends
    /// SIGKILL once they are used up) and address space in bytes (allocations beyond it fail).
    struct ResourceLimits: Sendable, Hashable {
        var cpuSeconds: Int
        var addressSpaceBytes: Int
    }

    /// Runs `executable` and returns once it has exited, or has been killed after `timeout` seconds.
    /// `onOutput` receives standard output chunk by chunk on the calling thread.
    static func run(
        executable: URL, arguments: [String], timeout: Double, limits: ResourceLimits? = nil,
        stderrLimit: Int = 16384, onOutput: (UnsafeRawBufferPointer) -> Void
    ) throws -> Outcome {
        let process = Process()
        if let limits {
            // Foundation cannot set limits between fork and exec, so a POSIX shell does it and then execs the
            // program in its own place (same pid, so the timeout's SIGKILL still reaches it). `ulimit -t`
            // sets soft and hard limits alike, so the kernel kills with SIGKILL rather than a catchable SIGXCPU.
            let script = "ulimit -t \(max(1, limits.cpuSeconds)) && ulimit -v \(max(1, limits.addressSpaceBytes / 1024)) && exec \"$0\" \"$@\""
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script, executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        let output = Pipe(), errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, timeout) * 1e9)

        var stderrBytes: [UInt8] = []
        var timedOut = false
        var fds = [
            pollfd(fd: output.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: errors.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        // A negative descriptor is ignored by poll: that is how a pipe at end-of-file drops out.
        while fds.contains(where: { $0.fd >= 0 }) {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { timedOut = true; break }
            let waitMilliseconds = Int32(min((deadline - now) / 1_000_000 + 1, 1000))
            if poll(&fds, nfds_t(fds.count), waitMilliseconds) < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
                let count = read(fds[i].fd, buffer.baseAddress, buffer.count)
                if count > 0 {
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                    if i == 0 {
                        onOutput(chunk)
                    } else if stderrBytes.count < stderrLimit {
                        stderrBytes.append(contentsOf: chunk.prefix(stderrLimit - stderrBytes.count))
                    }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    fds[i].fd = -1
                }
            }
        }
        // Both pipes are closed: the program is exiting. Give it until the deadline, then kill it.
        while process.isRunning, !timedOut {
            if DispatchTime.now().uptimeNanoseconds >= deadline { timedOut = true } else { usleep(1000) }
        }
        if timedOut, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus,
            standardError: String(decoding: stderrBytes, as: UTF8.self),
            timedOut: timedOut,
            signaled: process.terminationReason == .uncaughtSignal)
    }

    /// The executable a command name refers to: a path containing `/` as is, otherwise the first executable
    /// file of that name on `PATH`.
    static func resolve(_ command: String) -> URL? {
        if command.contains("/") {
            return FileManager.default.isExecutableFile(atPath: command) ? URL(fileURLWithPath: command) : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(command)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}
