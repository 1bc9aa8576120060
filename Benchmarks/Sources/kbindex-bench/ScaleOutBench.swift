import ArgumentParser
import Foundation

/// `kbindex-bench scaleout`: a sharded build against a single build of the same corpus on the
/// same machine, the merge's cost, and (with an S3-compatible store) upload, download and
/// cold-start times against a local index, in one run.
///
/// Every build, merge and query is the release `kbindex` as a separate process, as a user or
/// a Kubernetes pod runs it; the shards run at once, each with `JOB_COMPLETION_INDEX` and
/// `KBINDEX_SHARDS` in its environment, exactly as deploy/kubernetes/shard-build-job.yaml
/// starts them.
struct ScaleOutBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaleout",
        abstract: "Time a sharded build + merge against one build, and an S3 index against a local one.",
        discussion: """
            The baseline is a single `kbindex build` of the corpus with every core; then N shard
            builds run at once (each with cores/N threads, at least 1), then `kbindex merge`
            (into the same file system: hard links; and into /dev/shm when that is another
            file system: copies). The merged index's answers are compared with the single
            build's for a few questions in every mode (they must be identical).

            With --s3 (or AWS_ENDPOINT_URL etc. set and --s3 naming a bucket), the merged index
            is also pushed to s3://BUCKET/PREFIX with `kbindex merge`, and a cold `kbindex
            query` and a cold `kbindex serve` (empty cache) are timed against the local index.
            Without an endpoint, --s3-server starts the test suite's S3-compatible server
            (moto, Tests/Python/s3_server.py, from .venv-tests) on loopback: its throughput is
            moto's, a Python server, not a real store's.

            Example (the README's demo corpus, Debian's python3.11-doc):
              swift build -c release   # in the repository root: the kbindex under test
              cd Benchmarks && swift run -c release kbindex-bench scaleout \\
                --corpus /usr/share/doc/python3.11/html --shards 4 --precision int8 --s3-server
            """
    )

    @OptionGroup var target: BuildTarget

    @Option(help: "Shards built at once.")
    var shards = 4

    @Option(help: "Passed to every kbindex build (f32 or int8; default: kbindex's).")
    var precision: String?

    @Option(help: "Questions whose answers must agree between the single build and the merged index (repeatable).")
    var question: [String] = ["how do I read a file line by line", "asyncio event loop", "format a date as ISO 8601"]

    @Option(help: "s3://bucket/prefix to push the merged index to and query from (credentials from AWS_* variables).")
    var s3: String?

    @Flag(help: "Start the test suite's S3-compatible server (moto) on loopback for the S3 part.")
    var s3Server = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        if !(1...64).contains(shards) { throw ValidationError("--shards must be between 1 and 64, got \(shards)") }
        if let p = precision, !["f32", "int8"].contains(p) { throw ValidationError("--precision must be f32 or int8, got \(p)") }
    }

    func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    func run() throws {
        let exe = try target.executable()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let work = URL(fileURLWithPath: NSTemporaryDirectory() + "kbindex-bench-scaleout-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let common = ["--quiet"] + target.exclude.flatMap { ["--exclude", $0] } + (precision.map { ["--precision", $0] } ?? [])
        var result: [String: Any] = ["machine": machineDescription(), "corpus": target.corpus, "shards": shards, "precision": precision ?? "default"]

        // 1. The baseline: one build with every core.
        let single = work.appendingPathComponent("single")
        log("single build (\(cores) threads)…")
        let one = try Spawned.run(exe, ["build", target.corpus, "--index", single.path] + common)
        guard one.status == 0 else { throw ValidationError("the single build failed (\(one.status)):\n\(one.output)") }
        let chunks = UpdateBench.chunksIndexed(one.output)

        // 2. N shard builds at once, as the Indexed Job's pods: JOB_COMPLETION_INDEX and KBINDEX_SHARDS.
        let perShard = max(1, cores / shards)
        log("\(shards) shard builds at once (\(perShard) thread\(perShard == 1 ? "" : "s") each)…")
        let shardDirs = (0..<shards).map { work.appendingPathComponent("shard-\($0)") }
        let t0 = now()
        let running = try shardDirs.enumerated().map { i, dir in
            try Spawned(exe, ["build", target.corpus, "--index", dir.path, "--threads", "\(perShard)"] + common,
                        environment: ["JOB_COMPLETION_INDEX": "\(i)", "KBINDEX_SHARDS": "\(shards)"])
        }
        let finished = running.map { $0.wait() }
        let sharded = now() - t0
        for (i, f) in finished.enumerated() where f.status != 0 {
            throw ValidationError("shard \(i) failed (\(f.status)):\n\(f.output)")
        }
        let shardChunks = finished.map { UpdateBench.chunksIndexed($0.output) }

        // 3. Merge: hard links on the same file system, copies onto another (/dev/shm).
        let merged = work.appendingPathComponent("merged")
        log("merge…")
        let m = try Spawned.run(exe, ["merge", merged.path] + shardDirs.map(\.path))
        guard m.status == 0 else { throw ValidationError("the merge failed (\(m.status)):\n\(m.output)") }
        var copyMerge: (seconds: Double, output: String)?
        let shm = URL(fileURLWithPath: "/dev/shm/kbindex-bench-merged-\(getpid())")
        if Self.fileSystem(of: "/dev/shm") != nil, Self.fileSystem(of: "/dev/shm") != Self.fileSystem(of: work.path) {
            defer { try? FileManager.default.removeItem(at: shm) }
            let c = try Spawned.run(exe, ["merge", shm.path] + shardDirs.map(\.path))
            guard c.status == 0 else { throw ValidationError("the merge into /dev/shm failed (\(c.status)):\n\(c.output)") }
            copyMerge = (c.seconds, c.output)
        }

        // 4. The merged index must answer exactly as the single build.
        var identical = true
        for q in question {
            for mode in ["vector", "lexical", "hybrid"] {
                let a = try Self.hits(exe, q, mode, single), b = try Self.hits(exe, q, mode, merged)
                if a != b { identical = false; log("different answers for \"\(q)\" (\(mode))") }
            }
        }

        let indexBytes = Self.bytes(in: merged)
        result["single_s"] = one.seconds
        result["chunks"] = chunks
        result["sharded_wall_s"] = sharded
        result["shard_s"] = finished.map(\.seconds)
        result["shard_chunks"] = shardChunks
        result["threads_per_shard"] = perShard
        result["merge_link_s"] = m.seconds
        result["merge_link_summary"] = m.output.trimmingCharacters(in: .whitespacesAndNewlines)
        result["merge_copy_s"] = copyMerge?.seconds as Any
        result["merge_copy_summary"] = copyMerge?.output.trimmingCharacters(in: .whitespacesAndNewlines) as Any
        result["index_bytes"] = indexBytes
        result["answers_identical"] = identical

        if !json {
            print("machine: \(machineDescription().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
            printTable("sharded build: \(target.corpus), \(grouped(chunks)) chunks, \(shards) shards × \(perShard) thread(s) vs 1 build × \(cores)",
                       header: ["step", "seconds", "÷ single build"], rows: [
                ["single build", fmt(one.seconds, 2), "1.000"],
                ["\(shards) shard builds at once (wall)", fmt(sharded, 2), fmt(sharded / one.seconds, 3)],
                ["  slowest / fastest shard", "\(fmt(finished.map(\.seconds).max() ?? 0, 2)) / \(fmt(finished.map(\.seconds).min() ?? 0, 2))", "-"],
                ["merge (hard links)", fmt(m.seconds, 3), fmt(m.seconds / one.seconds, 4)],
                ["merge (copies, /dev/shm)", copyMerge.map { fmt($0.seconds, 3) } ?? "-", copyMerge.map { fmt($0.seconds / one.seconds, 4) } ?? "-"],
                ["shards + merge", fmt(sharded + m.seconds, 2), fmt((sharded + m.seconds) / one.seconds, 3)],
            ])
            print("chunks per shard: \(shardChunks.map(grouped).joined(separator: ", ")); index \(fmt(Double(indexBytes) / 1e6, 1)) MB")
            print("merge: \(m.output.trimmingCharacters(in: .whitespacesAndNewlines))")
            if let copyMerge { print("merge into /dev/shm: \(copyMerge.output.trimmingCharacters(in: .whitespacesAndNewlines))") }
            defer { fflush(nil) }  // the table is out before the S3 part starts
            print("merged index answers identically to the single build (\(question.count) questions × 3 modes, k = 10, tied scores in a canonical order): \(identical ? "yes" : "NO")")
        }

        // 5. Object storage.
        var s3Rows: [[String]] = []
        if let s3Target = try s3Location(work: work) {
            defer { s3Target.server?.stop() }
            let env = s3Target.environment
            let cacheA = work.appendingPathComponent("cache-push"), cacheB = work.appendingPathComponent("cache-cold")
            let url = s3Target.url
            log("push to \(url)…")
            let push = try Spawned.run(exe, ["merge", url] + shardDirs.map(\.path) + ["--replace"], environment: env.merging(["KBINDEX_CACHE_DIR": cacheA.path]) { $1 })
            guard push.status == 0 else { throw ValidationError("the merge into \(url) failed (\(push.status)):\n\(push.output)") }
            let q = question[0]
            let localQuery = try Spawned.run(exe, ["query", q, "--index", merged.path, "--json"])
            log("cold query from \(url)…")
            let coldQuery = try Spawned.run(exe, ["query", q, "--index", url, "--json"], environment: env.merging(["KBINDEX_CACHE_DIR": cacheB.path]) { $1 })
            guard coldQuery.status == 0 else { throw ValidationError("the query from \(url) failed (\(coldQuery.status)):\n\(coldQuery.output)") }
            let warmQuery = try Spawned.run(exe, ["query", q, "--index", url, "--json"], environment: env.merging(["KBINDEX_CACHE_DIR": cacheB.path]) { $1 })
            let localServe = try Self.serveStart(exe, index: merged.path, environment: [:])
            let coldServe = try Self.serveStart(exe, index: url, environment: env.merging(["KBINDEX_CACHE_DIR": work.appendingPathComponent("cache-serve").path]) { $1 })
            result["s3"] = [
                "location": url, "server": s3Target.server == nil ? "given" : "moto on loopback",
                "push_s": push.seconds, "push_mb_s": Double(indexBytes) / push.seconds / 1e6,
                "query_local_s": localQuery.seconds, "query_s3_cold_s": coldQuery.seconds, "query_s3_warm_s": warmQuery.seconds,
                "download_mb_s": Double(indexBytes) / max(coldQuery.seconds - localQuery.seconds, 1e-3) / 1e6,
                "serve_local_start_s": localServe, "serve_s3_cold_start_s": coldServe,
            ] as [String: Any]
            s3Rows = [
                ["merge + push to S3", fmt(push.seconds, 2), fmt(Double(indexBytes) / push.seconds / 1e6, 1) + " MB/s", "-"],
                ["query, local index", fmt(localQuery.seconds, 2), "-", "1.00×"],
                ["query, S3 index, cold cache", fmt(coldQuery.seconds, 2), fmt(Double(indexBytes) / max(coldQuery.seconds - localQuery.seconds, 1e-3) / 1e6, 1) + " MB/s", fmt(coldQuery.seconds / localQuery.seconds, 2) + "×"],
                ["query, S3 index, warm cache", fmt(warmQuery.seconds, 2), "-", fmt(warmQuery.seconds / localQuery.seconds, 2) + "×"],
                ["serve start, local index", fmt(localServe, 2), "-", "1.00×"],
                ["serve start, S3 index, cold cache", fmt(coldServe, 2), "-", fmt(coldServe / localServe, 2) + "×"],
            ]
        }

        if json { printJSON(result); return }
        if !s3Rows.isEmpty {
            printTable("object storage (\(result["s3"].flatMap { ($0 as? [String: Any])?["server"] as? String } ?? ""))",
                       header: ["step", "seconds", "throughput", "÷ local"], rows: s3Rows)
        }
    }

    /// Where the S3 part runs: `--s3` with the environment's credentials, or a bucket on the
    /// test server `--s3-server` starts; nil: no S3 part.
    func s3Location(work: URL) throws -> (url: String, environment: [String: String], server: Spawned?)? {
        if let s3 { return (s3, [:], nil) }
        guard s3Server else { return nil }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardizedFileURL
        let python = ProcessInfo.processInfo.environment["KBINDEX_TEST_PYTHON"] ?? root.appendingPathComponent(".venv-tests/bin/python").path
        let script = root.appendingPathComponent("Tests/Python/s3_server.py").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ValidationError("no \(python): run scripts/python-venv.sh in the repository root (it makes .venv-tests with moto), or pass --s3")
        }
        // Its first line is the port, its second the credentials it made (JSON).
        let server = try Spawned(python, [script], environment: [:], captureLines: 2, holdStdin: true)
        let lines = server.lines
        guard lines.count == 2, let port = Int(lines[0].trimmingCharacters(in: .whitespaces)),
              let creds = (try? JSONSerialization.jsonObject(with: Data(lines[1].utf8))) as? [String: Any],
              let key = creds["access_key"] as? String, let secret = creds["secret_key"] as? String else {
            server.stop()
            throw ValidationError("the S3 test server did not print its port and credentials:\n\(server.wait().output)")
        }
        let endpoint = "http://127.0.0.1:\(port)"
        let env = ["AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1"]
        let made = try Spawned.run("/usr/bin/curl", ["-sf", "-X", "POST", "\(endpoint)/_kbtest/buckets/bench"])
        guard made.status == 0 else { server.stop(); throw ValidationError("cannot create the bucket on the S3 test server: \(made.output)") }
        return ("s3://bench/scaleout", env, server)
    }

    /// A query's hits, without what may differ between two indexes holding the same chunks
    /// (timings, generation, index name and folder).
    static func hits(_ exe: String, _ q: String, _ mode: String, _ index: URL) throws -> String {
        let r = try Spawned.run(exe, ["query", q, "--index", index.path, "--mode", mode, "-k", "10", "--json"])
        // --json prints one object per hit, one per line.
        let hits = r.output.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        guard r.status == 0, !hits.isEmpty else { throw ValidationError("kbindex query --mode \(mode) failed (\(r.status)):\n\(r.output)") }
        // Hits with exactly equal scores are ordered by position in the index (walk order in a
        // single build, shard order in a merged one): compared in a canonical order, and the
        // rank is left out.
        let kept = hits.map { h in h.filter { ["path", "score", "line_start", "line_end", "text", "vector_score", "bm25_score"].contains($0.key) } }
            .sorted { a, b in
                let sa = (a["score"] as? Double) ?? 0, sb = (b["score"] as? Double) ?? 0
                if sa != sb { return sa > sb }
                let pa = (a["path"] as? String) ?? "", pb = (b["path"] as? String) ?? ""
                return pa != pb ? pa < pb : ((a["line_start"] as? Int) ?? 0) < ((b["line_start"] as? Int) ?? 0)
            }
        return String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Seconds from starting `kbindex serve` on `index` to its "serving … on http://…" line.
    static func serveStart(_ exe: String, index: String, environment: [String: String]) throws -> Double {
        let t0 = now()
        let s = try Spawned(exe, ["serve", "--index", index, "--port", "0"], environment: environment, firstLineMatching: "http://")
        let t = now() - t0
        s.stop()
        guard s.firstLine != nil else { throw ValidationError("kbindex serve --index \(index) did not start:\n\(s.wait().output)") }
        return t
    }

    static func bytes(in dir: URL) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).reduce(0) { sum, name in
            sum + (((try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(name).path))?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }

    /// The device number of the file system holding `path`.
    static func fileSystem(of path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_dev) : nil
    }
}

/// A child process with stdout and stderr in one temporary file, optionally waiting for the
/// first line of output that contains a marker (a server's port or listening line).
final class Spawned: @unchecked Sendable {
    let pid: pid_t
    let outPath: String
    let started = now()
    /// The output's first lines, when asked for (`captureLines`), or the first line holding
    /// `marker`.
    private(set) var lines: [String] = []
    var firstLine: String? { lines.first }
    /// The wait status, once the child was reaped while its output was polled.
    private var reaped: Int32?

    /// The write end of the child's stdin when `holdStdin` (the S3 test server exits when its
    /// stdin closes), closed by `stop`.
    private var stdinWriter: Int32 = -1

    init(_ exe: String, _ args: [String], environment: [String: String], captureLines: Int = 0, firstLineMatching marker: String? = nil,
         holdStdin: Bool = false) throws {
        outPath = NSTemporaryDirectory() + "kbindex-bench-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var fds: [Int32] = [-1, -1]
        if holdStdin {
            guard pipe(&fds) == 0 else { throw ValidationError("cannot make a pipe: \(String(cString: strerror(errno)))") }
            posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
            posix_spawn_file_actions_addclose(&actions, fds[1])
        }
        defer { if fds[0] >= 0 { close(fds[0]) } }
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, envp)
        guard rc == 0 else { throw ValidationError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        self.pid = pid
        stdinWriter = fds[1]
        guard captureLines > 0 || marker != nil else { return }
        // Poll the output file (at most 600 s; the child may also exit first).
        while now() - started < 600 {
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            let complete = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            if let marker, let line = complete.first(where: { $0.contains(marker) }) { lines = [line]; break }
            if marker == nil, complete.count >= captureLines { lines = Array(complete.prefix(captureLines)); break }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { reaped = status; break }
            usleep(2_000)
        }
    }

    /// Waits for the process; its exit status (128 + signal when killed), output and seconds.
    @discardableResult
    func wait() -> (status: Int32, output: String, seconds: Double) {
        var status: Int32 = reaped ?? 0
        if reaped == nil { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        let elapsed = now() - started
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        unlink(outPath)
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), out, elapsed)
    }

    /// SIGTERM, then waits.
    func stop() {
        if stdinWriter >= 0 { close(stdinWriter); stdinWriter = -1 }
        if reaped == nil { kill(pid, SIGTERM) }
        wait()
    }

    static func run(_ exe: String, _ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, seconds: Double) {
        try Spawned(exe, args, environment: environment).wait()
    }
}
