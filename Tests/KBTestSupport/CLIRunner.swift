import Foundation

/// Runs the built `kbindex` binary (it sits next to the test bundle in `.build/<triple>/<config>/`)
/// as a user would, capturing status, stdout and stderr.
public enum CLIRunner {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        /// Whether `run(…, killAfter:)` killed the process (SIGKILL) before it ended.
        public var killed = false
        /// stdout split on "\n", without the empty string after the final newline.
        public var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
    }

    struct NotFound: Error, CustomStringConvertible { let description: String }

    /// The `kbindex` executable of this build. Throws when it is not there.
    public static func binary() throws -> URL {
        let candidates = [
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
        ] + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for dir in candidates {
            let url = dir.appendingPathComponent("kbindex")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw NotFound(description: "kbindex binary not found next to the test bundle (looked in \(candidates.map(\.path)))")
    }

    /// Runs `kbindex args…` with `environment` changes applied (nil removes a variable),
    /// standard input from `stdin` (empty when nil). Output goes through files, so a large
    /// output cannot dead-lock on a full pipe. With `killAfter`, a process still running that
    /// many seconds after its start is killed with SIGKILL (`Result.killed`).
    public static func run(_ args: [String], environment: [String: String?] = [:], stdin: Data? = nil,
                           killAfter: Double? = nil) throws -> Result {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kbcli-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let p = Process()
        p.executableURL = try binary()
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let outURL = tmp.appendingPathComponent("out"), errURL = tmp.appendingPathComponent("err"), inURL = tmp.appendingPathComponent("in")
        for u in [outURL, errURL] { FileManager.default.createFile(atPath: u.path, contents: nil) }
        FileManager.default.createFile(atPath: inURL.path, contents: stdin ?? Data())
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let input = try FileHandle(forReadingFrom: inURL)
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let killAfter {
            let deadline = Date().addingTimeInterval(killAfter)
            while p.isRunning && Date() < deadline { usleep(200) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        try out.close(); try err.close(); try input.close()
        var result = Result(status: p.terminationStatus,
                            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
        result.killed = p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL
        return result
    }
}
