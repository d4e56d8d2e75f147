#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import CStenoSystem

/// Runs a helper program (ffmpeg, ffprobe) with a wall-clock limit, streaming its standard output to the
/// caller as it arrives and keeping the start of its standard error. Both pipes are drained together with
/// `poll`, so a program that writes a lot to either never blocks on a full pipe. The caller stops the program
/// early by throwing from `onOutput` (for example once the output passes a size limit).
///
/// Built on `posix_spawn` and `waitpid` rather than Foundation's `Process`: when the process is out of file
/// descriptors, `Process` traps (it cannot create its run-loop socket), where this throws `LaunchFailed` and
/// the caller can try again later.
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

    /// The program could not be started: no descriptors or processes left, or the executable is gone. A fault
    /// of the machine, not of the input.
    struct LaunchFailed: Error, CustomStringConvertible {
        var step: String
        var code: Int32
        var description: String { "\(step) failed: \(String(cString: strerror(code)))" }
    }

    /// Runs `executable` and returns once it has exited, or has been killed after `timeout` seconds.
    /// `onOutput` receives standard output chunk by chunk on the calling thread; when it throws, the program is
    /// killed and waited for, and the error is rethrown.
    static func run(
        executable: URL, arguments: [String], timeout: Double, limits: ResourceLimits? = nil,
        stderrLimit: Int = 16384, onOutput: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Outcome {
        let command: [String]
        if let limits {
            // Limits must be set between fork and exec, so a POSIX shell sets them and then execs the program in
            // its own place (same pid, so the timeout's SIGKILL still reaches it). `ulimit -t` sets soft and hard
            // limits alike, so the kernel kills with SIGKILL rather than a catchable SIGXCPU.
            let script = "ulimit -t \(max(1, limits.cpuSeconds)) && ulimit -v \(max(1, limits.addressSpaceBytes / 1024)) && exec \"$0\" \"$@\""
            command = ["/bin/sh", "-c", script, executable.path] + arguments
        } else {
            command = [executable.path] + arguments
        }
        let output = try Pipe.make()
        defer { output.closeReading() }
        let errors: Pipe
        do { errors = try Pipe.make() } catch { output.closeWriting(); throw error }
        defer { errors.closeReading() }
        let pid: pid_t
        do {
            pid = try spawn(command, standardOutput: output.writing, standardError: errors.writing)
        } catch {
            output.closeWriting(); errors.closeWriting()
            throw error
        }
        // The child holds its own copies; ours must close so that end-of-file comes when the child exits.
        output.closeWriting(); errors.closeWriting()
        var child = Child(pid: pid)
        defer { child.killAndReap() }

        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, timeout) * 1e9)
        var stderrBytes: [UInt8] = []
        var timedOut = false
        var fds = [
            pollfd(fd: output.reading, events: Int16(POLLIN), revents: 0),
            pollfd(fd: errors.reading, events: Int16(POLLIN), revents: 0),
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
                        try onOutput(chunk)
                    } else if stderrBytes.count < stderrLimit {
                        stderrBytes.append(contentsOf: chunk.prefix(stderrLimit - stderrBytes.count))
                    }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    fds[i].fd = -1
                }
            }
        }
        // Both pipes are closed: the program is exiting. Give it until the deadline, then kill it.
        while !timedOut, child.poll() == nil {
            if DispatchTime.now().uptimeNanoseconds >= deadline { timedOut = true } else { usleep(1000) }
        }
        if timedOut { child.killAndReap() }
        let status = child.waitForExit()
        return Outcome(
            status: status.code, standardError: String(decoding: stderrBytes, as: UTF8.self),
            timedOut: timedOut, signaled: status.signaled)
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

    // MARK: - Process plumbing

    /// Starts `command[0]` with `/dev/null` as standard input, the given write ends as standard output and
    /// error, default signal handling, and no other descriptor of this process.
    private static func spawn(_ command: [String], standardOutput: Int32, standardError: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, standardOutput, 1)
        posix_spawn_file_actions_adddup2(&actions, standardError, 2)
        steno_spawn_close_from(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The server ignores SIGPIPE and may block signals on its threads; the child starts with the defaults.
        var noSignals = sigset_t(), defaults = sigset_t()
        sigemptyset(&noSignals)
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXCPU] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let result = posix_spawn(&pid, command[0], &actions, &attributes, argv, environ)
        guard result == 0 else { throw LaunchFailed(step: "posix_spawn", code: result) }
        return pid
    }

    /// One pipe's two ends, both close-on-exec (the child gets its own copies through `dup2`).
    private final class Pipe {
        private(set) var reading: Int32
        private(set) var writing: Int32

        private init(reading: Int32, writing: Int32) {
            self.reading = reading
            self.writing = writing
        }

        static func make() throws -> Pipe {
            var ends: [Int32] = [-1, -1]
            guard steno_make_pipe(&ends) == 0 else { throw LaunchFailed(step: "pipe", code: errno) }
            return Pipe(reading: ends[0], writing: ends[1])
        }

        func closeReading() { if reading >= 0 { close(reading); reading = -1 } }
        func closeWriting() { if writing >= 0 { close(writing); writing = -1 } }
    }

    /// A started child, reaped exactly once.
    private struct Child {
        let pid: pid_t
        private var exit: (code: Int32, signaled: Bool)?

        init(pid: pid_t) { self.pid = pid }

        /// The exit status if the child has exited, without waiting.
        mutating func poll() -> (code: Int32, signaled: Bool)? {
            if exit == nil { reap(options: WNOHANG) }
            return exit
        }

        mutating func waitForExit() -> (code: Int32, signaled: Bool) {
            while exit == nil { reap(options: 0) }
            return exit!
        }

        /// Ends a child still running (an early stop, a timeout, an error); a no-op once it is reaped.
        mutating func killAndReap() {
            guard exit == nil else { return }
            kill(pid, SIGKILL)
            _ = waitForExit()
        }

        private mutating func reap(options: Int32) {
            var status: Int32 = 0
            let result = waitpid(pid, &status, options)
            if result == pid {
                // The wait status as <sys/wait.h> lays it out: the low 7 bits are the signal, 0 for a normal exit.
                let signal = status & 0x7f
                exit = signal == 0 ? ((status >> 8) & 0xff, false) : (signal, true)
            } else if result < 0, errno != EINTR {
                // Reaped elsewhere (or never ours): report it as killed so callers stop waiting.
                exit = (SIGKILL, true)
            }
        }
    }
}
