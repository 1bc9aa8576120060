import ArgumentParser
import Foundation
import KBIngest
#if canImport(Glibc)
import Glibc
#endif

/// `kbindex-bench remote`: the cost of embedding through an HTTP embedding service rather
/// than in the process, measured against `kbindex serve`'s own `/v1/embeddings` on loopback.
///
/// In one run, on the same (staged) corpus:
///   1. `kbindex build --precision f32` with the in-process encoder, timed (the baseline);
///   2. `kbindex serve --index <that index> --port 0 --precision f32`, then, for each --batch-sizes ×
///      --concurrency pair, `kbindex build --embedder openai --embed-url http://HOST:PORT/v1
///      --embed-model MODEL` into an index of its own, timed; remote chunks/s ÷ in-process
///      chunks/s is the HTTP path's overhead (1.0: none);
///   3. with --questions, `kbindex eval --json` on the in-process index and on the first
///      remote one (its questions embedded through the server too, as the index recorded):
///      both metrics side by side, and how many of each question's top 5 are the same.
///
/// The server's encoder and the client build run on the same machine: on a small one they
/// share its cores, so the remote build pays for both and the ratio is a floor for what a
/// separate embedding machine would give.
struct RemoteBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Build a folder through 'kbindex serve''s /v1/embeddings and with the in-process encoder: the HTTP path's overhead.",
        discussion: """
            Needs the release kbindex (swift build -c release in the repository root) and the default model (all-MiniLM-L6-v2).

            The corpus is staged first: with --max-files N (default 40; 0: the whole folder, untouched) the first N files are copied into a temporary folder, the documents a --questions file names first (smallest first, so that as many questions as possible can be answered), then the others in path order; --include and --exclude select what is eligible and are passed to every kbindex build as well.

            Then, in one run: 'kbindex build --precision f32' with the in-process encoder (the baseline); 'kbindex serve --index <that index> --port 0 --precision f32' on loopback (the same encoder, behind HTTP); for each --batch-sizes × --concurrency pair, 'kbindex build --embedder openai --embed-url http://127.0.0.1:PORT/v1 --embed-model all-MiniLM-L6-v2 --embed-batch-size B --embed-concurrency C' into an index of its own. Each build is one process, timed from start to exit (model load and start-up included). The ratio 'vs in-process' is remote chunks/s ÷ in-process chunks/s: the HTTP path's overhead (texts up and 384 floats per chunk back as JSON, request round trips, the server's scheduling).

            With --questions, 'kbindex eval --json' runs on the in-process index and on the first remote one while the server is up (the remote index embeds its questions through the server, as it recorded), and both metrics are shown side by side (they should agree to float noise), with each index's p50 latency per question (the remote one's includes a request to the server). 'top-5 same' is the share of each question's first 5 hits found in the other index's first 5, averaged; 'identical' the share of questions whose top 5 are the same in the same order.

            The server and the client build share this machine's cores: on 2 cores the remote build's encoder (in the server) competes with the client's extraction and chunking, and --embed-concurrency above the core count only queues. --threads is passed to both builds and to the server.

            Example (Debian's python3.11-doc; at the defaults each build embeds about 800 chunks, a few minutes in all on 2 cores):
              swift build -c release   # in the repository root: the kbindex under test
              cd Benchmarks && swift run -c release kbindex-bench remote \\
                --corpus /usr/share/doc/python3.11/html \\
                --exclude '_sources/**' --exclude 'genindex*' \\
                --questions questions/python-docs.tsv
              swift run -c release kbindex-bench remote --corpus DIR \\
                --batch-sizes 16,64 --concurrency 1,4 --json
            """
    )

    @OptionGroup var target: BuildTarget

    @Option(help: "Globs passed to kbindex build --include (repeatable); also what staging may copy.")
    var include: [String] = []

    @Option(help: "Files to stage into a temporary copy of the corpus (0: build the whole folder in place).")
    var maxFiles = 40

    @Option(help: "A question file for 'kbindex eval' (TSV or JSON lines, e.g. questions/python-docs.tsv): metrics of both indexes side by side.")
    var questions: String?

    @Option(help: "Remote: --embed-batch-size values, comma-separated (each combined with each --concurrency).")
    var batchSizes = "64"

    @Option(help: "Remote: --embed-concurrency values, comma-separated.")
    var concurrency = "4"

    @Option(help: "The model name sent to the server (--embed-model); the served model's name.")
    var embedModel = "all-MiniLM-L6-v2"

    @Option(help: "Threads for both builds and the server (default: every core, each).")
    var threads: Int?

    @Option(help: "Seconds to wait for the server to listen.")
    var startTimeout = 120.0

    @Flag(help: "Keep the staged corpus and the indexes (their folder is printed) instead of removing them.")
    var keep = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

    func validate() throws {
        guard maxFiles >= 0 else { throw ValidationError("--max-files must be 0 (the whole folder) or more") }
        guard let b = Self.counts(batchSizes), !b.isEmpty else { throw ValidationError("--batch-sizes needs counts >= 1, e.g. 16,64") }
        guard let c = Self.counts(concurrency), !c.isEmpty else { throw ValidationError("--concurrency needs counts >= 1, e.g. 1,4") }
        _ = (b, c)
        if let threads, threads < 1 { throw ValidationError("--threads must be 1 or more") }
        for g in include + target.exclude { _ = try Self.pattern(g) }
    }

    /// Comma-separated positive counts, each once in the order given; nil when one is not.
    static func counts(_ text: String) -> [Int]? {
        var out: [Int] = []
        for part in text.split(separator: ",") {
            guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 1 else { return nil }
            if !out.contains(n) { out.append(n) }
        }
        return out
    }

    /// One build's result.
    struct Build {
        var label: String
        var batch: Int?
        var inFlight: Int?
        var index: String
        var seconds: Double
        var chunks: Int
        var summary: String
        var chunksPerSecond: Double { Double(chunks) / seconds }
    }

    func run() throws {
        let exe = try target.executable()
        var version = (try? IndexBench.runProcess(exe, ["--version"]).1.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
        if !version.hasPrefix("kbindex") { version = "kbindex " + version }
        let batches = Self.counts(batchSizes)!, inFlights = Self.counts(concurrency)!
        let cores = ProcessInfo.processInfo.activeProcessorCount

        let work = NSTemporaryDirectory() + "kbindex-bench-remote-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: work) } }

        // 1. The corpus: staged (a subset, copied) or the folder itself.
        let relevant = try questions.map { try Self.relevantDocuments(questionFile: $0) } ?? []
        var corpus = target.corpus
        var staged: (files: Int, of: Int, relevant: Int)? = nil
        if maxFiles > 0 {
            let all = try Self.eligibleFiles(in: target.corpus, include: include, exclude: target.exclude)
            let chosen = Self.stagingOrder(all, relevant: relevant, maxFiles: maxFiles)
            corpus = work + "/corpus"
            for f in chosen.map(\.path) {
                let dst = corpus + "/" + f
                try FileManager.default.createDirectory(atPath: (dst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: target.corpus + "/" + f, toPath: dst)
            }
            let relevantSet = Set(relevant)
            staged = (chosen.count, all.count, chosen.filter { relevantSet.contains($0.path) }.count)
            log("staged \(chosen.count) of \(all.count) files (\(fmt(Double(chosen.reduce(0) { $0 + $1.bytes }) / 1e6, 2)) MB) into \(corpus)")
        }
        let selection = include.flatMap { ["--include", $0] } + target.exclude.flatMap { ["--exclude", $0] }
        let threadArgs = threads.map { ["--threads", String($0)] } ?? []

        // Warm: the corpus in the page cache, the model file read once.
        IndexBench.readAll(corpus)
        let (warmStatus, warmOut, _) = try IndexBench.runProcess(exe, ["embed", "--precision", "f32", "warm up"])
        guard warmStatus == 0 else { throw BenchError("kbindex embed failed (\(warmStatus)):\n\(warmOut.suffix(2000))") }

        // 2. In-process build.
        func build(_ label: String, _ dir: String, _ extra: [String], batch: Int? = nil, inFlight: Int? = nil) throws -> Build {
            log("\(label): building...")
            let args = ["build", corpus, "--index", dir, "--quiet"] + selection + threadArgs + extra
            let (status, out, seconds) = try IndexBench.runProcess(exe, args)
            guard status == 0 else {
                throw BenchError("kbindex \(args.joined(separator: " ")) failed (\(status)):\n\(out.suffix(3000))")
            }
            guard let chunks = ServeBench.liveChunks(URL(fileURLWithPath: dir)) ?? Self.chunkCount(summary: out) else {
                throw BenchError("cannot tell how many chunks \(dir) holds (build said: \(out.suffix(500)))")
            }
            let summary = out.split(separator: "\n").last { $0.hasPrefix("indexed ") }.map(String.init) ?? ""
            log("\(label): \(summary)")
            return Build(label: label, batch: batch, inFlight: inFlight, index: dir, seconds: seconds, chunks: chunks, summary: summary)
        }
        // f32: the arithmetic the server's encoder uses too (a remote build takes no --precision).
        let local = try build("in-process", work + "/local.kbindex", ["--precision", "f32"])

        // 3. The server, serving that index (its encoder: the same model, f32 as recorded).
        log("starting kbindex serve...")
        let server = try ServerProcess(exe, ["serve", "--index", local.index, "--port", "0", "--precision", "f32"] + threadArgs)
        defer { if !server.hasExited() { server.terminate(grace: 5) } }
        guard let line = server.waitForLine(timeout: startTimeout, { ServeBench.listeningAddress($0) != nil }),
              let (host, port) = ServeBench.listeningAddress(line) else {
            let exited = server.waitForExit(timeout: 2)
            throw BenchError("kbindex serve did not print an http://127.0.0.1:PORT line "
                             + (exited ? "(it exited)" : "within \(fmt(startTimeout, 0)) s") + ":\n" + server.output.suffix(20).joined(separator: "\n"))
        }
        let url = "http://\(host):\(port)/v1"
        // One request first: the route answers, the model name is the served one, and the
        // server's encoder is warm before the clock starts.
        do {
            let c = try HTTPConnection(host: host, port: port)
            let body = try JSONSerialization.data(withJSONObject: ["model": embedModel, "input": ["warm up", "the server"]])
            let r = try c.request("POST", "/v1/embeddings", body: Array(body))
            guard r.status == 200 else { throw BenchError("POST \(url)/embeddings answered \(r.status): \(r.text.prefix(500))") }
        }
        log("server at \(url)")

        var remotes: [Build] = []
        for b in batches {
            for c in inFlights {
                remotes.append(try build("openai → kbindex serve", work + "/remote-b\(b)-c\(c).kbindex",
                                         ["--embedder", "openai", "--embed-url", url, "--embed-model", embedModel,
                                          "--embed-batch-size", String(b), "--embed-concurrency", String(c)],
                                         batch: b, inFlight: c))
            }
        }

        // 4. Eval on both indexes, while the server is up.
        var evals: (local: [String: Any], remote: [String: Any])? = nil
        if let questions {
            func eval(_ dir: String) throws -> [String: Any] {
                log("eval \(dir)...")
                let (status, out, _) = try IndexBench.runProcess(exe, ["eval", questions, "--index", dir, "--json", "--failures", "0"])
                guard status == 0, let obj = Self.lastJSONObject(out) else {
                    throw BenchError("kbindex eval --index \(dir) failed (\(status)):\n\(out.suffix(3000))")
                }
                return obj
            }
            evals = (try eval(local.index), try eval(remotes[0].index))
        }
        let sigterm = server.terminate(grace: 10)

        // 5. Report.
        let notes = [
            "client and server share this machine's \(cores) cores: the server's encoder competes with the client build's extraction and chunking",
            "each build is one process timed from start to exit (model load included); f32 throughout",
        ] + (remotes.contains { $0.chunks != local.chunks }
            ? ["the remote builds cut a different number of chunks than the in-process one (the remote client counts tokens its own way): compare chunks/s, not times"] : [])
        var comparison: [String: Any]? = nil
        if let evals { comparison = Self.compare(local: evals.local, remote: evals.remote) }

        let result: [String: Any] = [
            "machine": machineDescription(), "kbindex": version,
            "corpus": target.corpus, "built_folder": corpus,
            "staged_files": staged.map { $0.files as Any } ?? NSNull(), "eligible_files": staged.map { $0.of as Any } ?? NSNull(),
            "staged_relevant_documents": staged.map { $0.relevant as Any } ?? NSNull(),
            "threads": threads.map { $0 as Any } ?? "all", "server_url": url, "embed_model": embedModel,
            "in_process": ["build_s": local.seconds, "chunks": local.chunks, "chunks_per_s": local.chunksPerSecond],
            "remote": remotes.map { r in
                ["batch_size": r.batch!, "concurrency": r.inFlight!, "build_s": r.seconds, "chunks": r.chunks,
                 "chunks_per_s": r.chunksPerSecond, "vs_in_process": r.chunksPerSecond / local.chunksPerSecond] as [String: Any]
            },
            "eval": comparison.map { $0 as Any } ?? NSNull(),
            "server_sigterm_exit_status": Int(sigterm),
            "notes": notes,
        ]
        if json { printJSON(ServeBench.jsonSafe(result)); return }

        print("machine: \(machineDescription().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")); \(version)")
        if let staged {
            print("corpus: \(staged.files) of \(staged.of) eligible files of \(target.corpus) (copied to \(corpus))"
                  + (questions == nil ? "" : ", \(staged.relevant) of them named by the questions"))
        } else {
            print("corpus: \(target.corpus)")
        }
        if keep { print("kept: \(work)") }
        printTable("build throughput, f32, threads \(threads.map(String.init) ?? "all (\(cores))") (vs in-process = remote chunks/s ÷ in-process chunks/s)",
                   header: ["embedder", "batch", "in flight", "chunks", "time s", "chunks/s", "vs in-process"],
                   rows: [["in-process encoder", "-", "-", "\(local.chunks)", fmt(local.seconds), fmt(local.chunksPerSecond), "1.00"]]
                       + remotes.map { r in
                           ["openai → \(url)", "\(r.batch!)", "\(r.inFlight!)", "\(r.chunks)", fmt(r.seconds), fmt(r.chunksPerSecond),
                            fmt(r.chunksPerSecond / local.chunksPerSecond, 2)]
                       })
        if let comparison, let modes = comparison["modes"] as? [String: [String: Any]] {
            let metrics = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "hit_rate"]
            var rows: [[String]] = []
            for mode in modes.keys.sorted() {
                let m = modes[mode]!
                let l = m["in_process"] as? [String: Double] ?? [:], r = m["remote"] as? [String: Double] ?? [:]
                let p50 = { (x: [String: Double]) in x["latency_p50_ms"].map { fmt($0) } ?? "-" }
                rows.append([mode, "in-process"] + metrics.map { l[$0].map { fmt($0, 3) } ?? "-" } + [p50(l), "", ""])
                rows.append([mode, "remote"] + metrics.map { r[$0].map { fmt($0, 3) } ?? "-" }
                            + [p50(r), (m["top5_same"] as? Double).map { fmt(100 * $0) + "%" } ?? "-",
                               (m["top5_identical"] as? Double).map { fmt(100 * $0) + "%" } ?? "-"])
            }
            printTable("kbindex eval \(questions!) (\(comparison["questions"] ?? "?") questions; remote = questions embedded through the server too; max |diff| \(fmt(comparison["max_abs_metric_diff"] as? Double ?? .nan, 4)))",
                       header: ["mode", "index"] + metrics + ["p50 ms", "top-5 same", "identical"], rows: rows)
        }
        print("")
        for n in notes { print("note: \(n)") }
    }

    // MARK: - Staging

    /// A file of the corpus: its path relative to the corpus and its size.
    struct CorpusFile: Equatable {
        var path: String
        var bytes: Int
    }

    /// A glob as `kbindex build --include/--exclude` reads one: with '/' (a trailing one
    /// aside) it matches the whole relative path, else a name at any depth. Throws
    /// `ValidationError` for a glob kbindex would refuse.
    static func pattern(_ text: String) throws -> (glob: Glob, anchored: Bool) {
        var p = text
        let anchored: Bool
        if p.hasPrefix("/") { p.removeFirst(); anchored = true } else { anchored = p.contains("/") }
        do { return (try Glob(validating: p), anchored) } catch { throw ValidationError("\(error)") }
    }

    /// Whether `pattern` selects `relativePath` or a folder it is in (as kbindex's exclusion
    /// skips whole folders). O(components · match).
    static func selects(_ pattern: (glob: Glob, anchored: Bool), _ relativePath: String) -> Bool {
        let parts = relativePath.split(separator: "/").map(String.init)
        var prefix = ""
        for (i, part) in parts.enumerated() {
            prefix = i == 0 ? part : prefix + "/" + part
            if pattern.anchored ? pattern.glob.matches(prefix) : pattern.glob.matches(part) { return true }
        }
        return false
    }

    /// The regular files under `folder` that kbindex can read (`DocumentKind.classify`) and
    /// the globs leave eligible (an --include, when any, must select the file; no --exclude
    /// may), by relative path. Hidden files and folders (a leading '.') are left out, as
    /// kbindex leaves them out. O(files · globs).
    static func eligibleFiles(in folder: String, include: [String], exclude: [String]) throws -> [CorpusFile] {
        let inc = try include.map(pattern), exc = try exclude.map(pattern)
        guard let e = FileManager.default.enumerator(atPath: folder) else { throw BenchError("cannot read the folder \(folder)") }
        var out: [CorpusFile] = []
        while let f = e.nextObject() as? String {
            let name = (f as NSString).lastPathComponent
            if name.hasPrefix(".") {
                if e.fileAttributes?[.type] as? FileAttributeType == .typeDirectory { e.skipDescendants() }
                continue
            }
            guard let a = e.fileAttributes, a[.type] as? FileAttributeType == .typeRegular else { continue }
            guard DocumentKind.classify(fileName: name) != nil else { continue }
            if exc.contains(where: { selects($0, f) }) { continue }
            if !inc.isEmpty && !inc.contains(where: { selects($0, f) }) { continue }
            out.append(CorpusFile(path: f, bytes: (a[.size] as? Int) ?? 0))
        }
        return out.sorted { $0.path < $1.path }
    }

    /// The first `maxFiles` of `files` to copy: the ones in `relevant` first, smallest first
    /// (so that as many questions as possible keep their answers), then the others in path
    /// order. O(files log files).
    static func stagingOrder(_ files: [CorpusFile], relevant: [String], maxFiles: Int) -> [CorpusFile] {
        let wanted = Set(relevant)
        let first = files.filter { wanted.contains($0.path) }.sorted { ($0.bytes, $0.path) < ($1.bytes, $1.path) }
        let rest = files.filter { !wanted.contains($0.path) }
        return Array((first + rest).prefix(maxFiles))
    }

    /// The documents a question file names, relative to the indexed folder, each once: its
    /// relevant paths without '#anchor' or a ':L10-L40' / ':P3-P5' range. TSV with a header
    /// or JSON lines (`relevant_paths`: an array, or one comma-separated string), as
    /// `kbindex eval` reads them. O(size).
    static func relevantDocuments(questionFile: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: questionFile, encoding: .utf8) else {
            throw BenchError("cannot read the question file \(questionFile)")
        }
        return relevantDocuments(questionText: text)
    }

    static func relevantDocuments(questionText text: String) -> [String] {
        var out: [String] = [], seen = Set<String>()
        func add(_ raw: String) {
            var p = raw.trimmingCharacters(in: .whitespaces)
            if let hash = p.firstIndex(of: "#") { p = String(p[..<hash]) }
            if let r = p.range(of: #":[LP][0-9]+(-[LP]?[0-9]+)?$"#, options: .regularExpression) { p = String(p[..<r.lowerBound]) }
            if p.hasPrefix("./") { p.removeFirst(2) }
            if !p.isEmpty, seen.insert(p).inserted { out.append(p) }
        }
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.isEmpty { continue }
            if l.hasPrefix("{") {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else { continue }
                if let list = obj["relevant_paths"] as? [String] { list.forEach(add) }
                if let s = obj["relevant_paths"] as? String { s.split(separator: ",").map(String.init).forEach(add) }
            } else {
                let cols = l.split(separator: "\t", omittingEmptySubsequences: false)
                guard cols.count == 3, cols[2] != "relevant_paths" else { continue }
                cols[2].split(separator: ",").map(String.init).forEach(add)
            }
        }
        return out
    }

    // MARK: - Reading kbindex's output

    /// The chunk count in a build summary ("indexed 37 files into 1,325 chunks (…)").
    static func chunkCount(summary: String) -> Int? {
        guard let r = summary.range(of: #"into [0-9,]+ chunks?"#, options: .regularExpression) else { return nil }
        return Int(summary[r].dropFirst("into ".count).split(separator: " ")[0].replacingOccurrences(of: ",", with: ""))
    }

    /// The last line of `output` that parses as a JSON object (`kbindex eval --json` prints
    /// one line; warnings on stderr are mixed into the same output).
    static func lastJSONObject(_ output: String) -> [String: Any]? {
        for line in output.split(separator: "\n").reversed() where line.hasPrefix("{") {
            if let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { return obj }
        }
        return nil
    }

    /// Two `kbindex eval --json` objects side by side: per mode both metrics, and how the
    /// top 5 of each question agree (the mean share of one's first 5 locations in the
    /// other's first 5, and the share of questions whose first 5 are identical, in order);
    /// and the largest metric difference (latencies, also kept, aside). Questions are matched
    /// by id. O(questions).
    static func compare(local: [String: Any], remote: [String: Any]) -> [String: Any] {
        let metricKeys = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "hit_rate"]
        let lm = local["modes"] as? [String: [String: Any]] ?? [:], rm = remote["modes"] as? [String: [String: Any]] ?? [:]
        func questions(_ run: [String: Any]) -> [String: [String: Any]] {
            var out: [String: [String: Any]] = [:]
            for q in run["questions"] as? [[String: Any]] ?? [] { if let id = q["id"] as? String { out[id] = q } }
            return out
        }
        let lq = questions(local), rq = questions(remote)
        var modes: [String: Any] = [:], maxDiff = 0.0
        for mode in Set(lm.keys).intersection(rm.keys).sorted() {
            var l: [String: Double] = [:], r: [String: Double] = [:]
            for k in metricKeys + ["latency_p50_ms"] {
                if let a = lm[mode]![k] as? Double { l[k] = a }
                if let b = rm[mode]![k] as? Double { r[k] = b }
                if metricKeys.contains(k), let a = l[k], let b = r[k] { maxDiff = max(maxDiff, abs(a - b)) }
            }
            var same = 0.0, identical = 0, n = 0
            for (id, q) in lq {
                guard let other = rq[id],
                      let a = ((q["modes"] as? [String: Any])?[mode] as? [String: Any])?["returned"] as? [String],
                      let b = ((other["modes"] as? [String: Any])?[mode] as? [String: Any])?["returned"] as? [String] else { continue }
                let a5 = Array(a.prefix(5)), b5 = Array(b.prefix(5))
                n += 1
                if a5 == b5 { identical += 1 }
                let denominator = max(a5.count, b5.count)
                same += denominator == 0 ? 1 : Double(Set(a5).intersection(b5).count) / Double(denominator)
            }
            var entry: [String: Any] = ["in_process": l, "remote": r, "questions_compared": n]
            if n > 0 {
                entry["top5_same"] = same / Double(n)
                entry["top5_identical"] = Double(identical) / Double(n)
            }
            modes[mode] = entry
        }
        return ["modes": modes, "max_abs_metric_diff": maxDiff, "questions": lq.count]
    }
}
