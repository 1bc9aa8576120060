import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an external tool (an extractor such as `pdftotext`) fenced in: a wall-clock time
/// limit, an address-space limit and a cap on captured standard output. A hostile input that
/// makes the tool hang, allocate without end or print without end costs its limits, nothing
/// more; a crash of the tool is an exit status here, never a crash of kbindex.
///
/// - The tool runs in its own process group; on expiry the whole group gets SIGKILL (a
///   wrapper script's children die with it).
/// - The memory limit is `RLIMIT_AS`, set by exec'ing through `prlimit --as=N --` when
///   util-linux's `prlimit` is installed, else through `/bin/sh -c 'ulimit -v KiB; exec …'`.
///   With `prlimit`, CPU time is limited too (the time limit + 5 s), so a child that left the
///   process group still ends.
/// - The tool has ended when it has been reaped, not when its pipes close: one that closes
///   them and goes on is killed at the deadline all the same.
/// - Standard output and standard error are read together with `poll`, so a tool that fills
///   one pipe while kbindex waits on the other never deadlocks. Standard error is capped at
///   64 KiB (its end is kept: the last lines say what went wrong); standard output beyond
///   `maxOutput` kills the tool and marks the outcome `outputCut`.
/// - Standard input is /dev/null; descriptors are opened close-on-exec, so runs on several
///   threads at once do not leak pipes into each other's children.
struct Subprocess {
    /// How a run ended.
    enum Termination: Equatable {
        /// The tool exited with this status.
        case exited(Int32)
        /// The tool was killed by this signal (a crash, or the kernel over a limit).
        case signaled(Int32)
        /// The tool ran past the time limit and was killed.
        case timedOut
    }

    struct Outcome {
        var termination: Termination
        var stdout: [UInt8]
        /// The last 64 KiB at most.
        var stderr: [UInt8]
        /// Standard output passed `maxOutput`: `stdout` holds its first `maxOutput` bytes and
        /// the tool was killed (`termination` is then `.signaled(SIGKILL)`).
        var outputCut: Bool

        /// Standard error as text, one line per element, blank lines dropped.
        var stderrLines: [String] {
            String(decoding: stderr, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// Whether standard error says the tool ran out of memory (C++ `bad_alloc`, glibc,
        /// bash or Python wording), so a failure can say so.
        var ranOutOfMemory: Bool {
            let text = String(decoding: stderr, as: UTF8.self).lowercased()
            return ["bad_alloc", "out of memory", "cannot allocate", "memoryerror", "memory exhausted"].contains { text.contains($0) }
        }
    }

    struct Limits {
        /// Seconds of wall clock.
        var time: Double
        /// Bytes of address space; nil for none.
        var memory: Int?
        /// Bytes of standard output kept; more kills the tool.
        var maxOutput: Int
    }

    /// Could not start the tool.
    enum LaunchError: Error, Equatable {
        /// No executable of that name (or at that path).
        case toolMissing(String)
        /// Starting it failed (pipes, fork): the detail says why.
        case failed(String)
    }

    static let stderrCap = 64 << 10
    private static let spawnLock = NSLock()

    /// The executable `name` resolves to: `override` (a path, e.g. from an environment
    /// variable such as KBINDEX_PDFTOTEXT) when given, else the first executable `name` in
    /// PATH (default PATH "/usr/local/bin:/usr/bin:/bin"). Nil when there is none. O(PATH).
    static func locate(_ name: String, override: String? = nil) -> String? {
        if let override, !override.isEmpty {
            if override.contains("/") { return access(override, X_OK) == 0 ? override : nil }
            return locate(override)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Where `prlimit` is, looked up once.
    static let prlimit: String? = ["/usr/bin/prlimit", "/bin/prlimit", "/usr/sbin/prlimit"].first { access($0, X_OK) == 0 }

    /// Runs `executable` (a path, see `locate`) with `arguments` (raw bytes: file names need
    /// not be UTF-8) under `limits`, and returns how it ended with what it printed. Blocks the
    /// calling thread for at most about `limits.time` seconds. Memory: O(`maxOutput` + 64 KiB).
    static func run(_ executable: String, _ arguments: [[UInt8]], limits: Limits) -> Result<Outcome, LaunchError> {
        guard access(executable, X_OK) == 0 else { return .failure(.toolMissing(executable)) }
        var argv: [[UInt8]] = [Array(executable.utf8)] + arguments
        // A CPU-time limit a little past the wall-clock one: a child that escaped the group
        // kill (it made its own group) still dies.
        let cpu = limits.time.isFinite ? Int(min(max(0, limits.time), 86_400).rounded(.up)) + 5 : nil
        if let prlimit, (limits.memory ?? 0) > 0 || cpu != nil {
            var options: [[UInt8]] = []
            if let memory = limits.memory, memory > 0 { options.append(Array("--as=\(memory)".utf8)) }
            if let cpu { options.append(Array("--cpu=\(cpu)".utf8)) }
            argv = [Array(prlimit.utf8)] + options + [Array("--".utf8)] + argv
        } else if let memory = limits.memory, memory > 0 {
            // `ulimit -v` counts KiB; "$0" is the tool, "$@" its arguments.
            argv = [Array("/bin/sh".utf8), Array("-c".utf8), Array("ulimit -v \(max(1, memory / 1024)) && exec \"$0\" \"$@\"".utf8)] + argv
        }

        // Pipes made and marked close-on-exec under the lock that every spawn here holds, so
        // no child started by another thread meanwhile inherits them (Glibc's pipe2 is not
        // visible to Swift).
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        spawnLock.lock()
        let piped = pipe(&outPipe) == 0 && pipe(&errPipe) == 0
        for fd in outPipe + errPipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        spawnLock.unlock()
        guard piped else {
            let reason = String(cString: strerror(errno))
            for fd in outPipe + errPipe where fd >= 0 { close(fd) }
            return .failure(.failed("pipe: \(reason)"))
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (so a kill reaches its children), default signal handling
        // (an ignored SIGPIPE in this process must not carry over), nothing blocked.
        var defaults = sigset_t(), none = sigset_t()
        sigemptyset(&defaults); sigaddset(&defaults, SIGPIPE); sigaddset(&defaults, SIGTERM); sigaddset(&defaults, SIGINT)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { bytes in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            return p
        } + [nil]
        defer { for p in cArgs { p?.deallocate() } }

        var pid: pid_t = 0
        spawnLock.lock()
        let spawned = posix_spawn(&pid, cArgs[0]!, &actions, &attributes, cArgs, environ)
        spawnLock.unlock()
        close(outPipe[1]); close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0]); close(errPipe[0])
            if spawned == ENOENT || spawned == EACCES { return .failure(.toolMissing(executable)) }
            return .failure(.failed("cannot start \(executable): \(String(cString: strerror(spawned)))"))
        }

        var stdout: [UInt8] = [], stderr: [UInt8] = []
        var outputCut = false, timedOut = false
        var open = [outPipe[0], errPipe[0]]
        // A NaN or infinite limit is a day: never a trap converting it to milliseconds.
        let deadline = monotonicSeconds() + (limits.time.isFinite ? max(0, limits.time) : 86_400)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while open.contains(where: { $0 >= 0 }) {
            let left = deadline - monotonicSeconds()
            if left <= 0 { timedOut = true; break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(left * 1000 + 1, 60_000)))
            if ready < 0 { if errno == EINTR { continue }; break }
            if ready == 0 { continue }
            for (k, fd) in fds.enumerated() where fd.fd >= 0 && fd.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fd.fd, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 { close(fd.fd); open[k] = -1; continue }
                // Appended from a buffer pointer: a memcpy, even in debug builds.
                if k == 0 {
                    let room = limits.maxOutput - stdout.count
                    let kept = min(n, max(room, 0))
                    buffer.withUnsafeBufferPointer { stdout.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<kept])) }
                    if n > room { outputCut = true }
                } else {
                    buffer.withUnsafeBufferPointer { stderr.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<n])) }
                    if stderr.count > 2 * stderrCap { stderr.removeFirst(stderr.count - stderrCap) }
                }
            }
            if outputCut { break }
        }
        if timedOut || outputCut { kill(-pid, SIGKILL) }
        for fd in open where fd >= 0 { close(fd) }
        if stderr.count > stderrCap { stderr.removeFirst(stderr.count - stderrCap) }

        // Both pipes at end of file is not an exit: a tool that closed them and goes on is
        // waited for only until the deadline, then killed with its group.
        var status: Int32 = 0
        var reaped = false
        while !reaped && !timedOut && !outputCut {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { reaped = true; break }
            if r < 0 && errno != EINTR { break }
            if monotonicSeconds() >= deadline { timedOut = true; kill(-pid, SIGKILL); break }
            usleep(5_000)
        }
        if !reaped { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        let termination: Termination
        if timedOut { termination = .timedOut }
        else if status & 0x7f == 0 { termination = .exited((status >> 8) & 0xff) }
        else { termination = .signaled(status & 0x7f) }
        return .success(Outcome(termination: termination, stdout: stdout, stderr: stderr, outputCut: outputCut))
    }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
