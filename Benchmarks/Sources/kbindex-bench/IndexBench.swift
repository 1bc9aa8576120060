import ArgumentParser
import CLZ4
import Foundation
import KBEmbed
import KBFormat
import KBSearch

/// `kbindex-bench index`: the whole build → query path as a user runs it, on a real corpus.
///
/// Runs the release `kbindex` binary as a separate process (so the numbers include process
/// start, model load and the page cache as a user sees them), then opens the index it wrote
/// to measure sizes. Baselines from the same run: the raw text plus float32 vectors the index
/// replaces, LZ4 over the whole text at once, and the start-up cost of a `kbindex` process
/// that does nothing (`kbindex --version`).
///
/// By default it builds the corpus twice, in f32 and in int8 (`kbindex build --precision`),
/// one after the other in the same run, and reports both builds side by side against the
/// same float floor, with int8's speed as a multiple of f32's. Sizes are measured on the first
/// precision's index; query latency on each.
struct IndexBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build an index of a folder with kbindex, then measure its size and query latency.",
        discussion: """
            Builds the corpus in f32 and in int8 (--precision picks one or both) and reports the \
            two builds side by side: time, chunks/s, and each against the float floor (the \
            forward FLOPs of the chunks ÷ this machine's sgemm rate), then int8's chunks/s as a \
            multiple of f32's.

            Example (the README's demo corpus, Debian's python3.11-doc):
              swift build -c release   # in the repository root: the kbindex under test
              cd Benchmarks && swift run -c release kbindex-bench index \\
                --corpus /usr/share/doc/python3.11/html --exclude '_sources/**' --exclude 'genindex*'
            """
    )

    @OptionGroup var target: BuildTarget

    @Option(help: "Where to write the index (default: a temporary folder, removed afterwards); a second precision's goes to DIR-int8 (or DIR-f32).")
    var index: String?

    @Option(help: "The precisions to build, in this order: f32, int8, or both (comma-separated; default both).")
    var precision = "f32,int8"

    @Option(help: "Query processes to time.")
    var queries = 30

    @Option(help: "Worker threads for the build (default: every core).")
    var threads: Int?

    @Flag(help: "Measure the index already in --index instead of building one (no build time).")
    var skipBuild = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    static let questions = [
        "how do I read a file line by line",
        "difference between a list and a tuple",
        "how to sort a dictionary by value",
        "what does the with statement do",
        "start a subprocess and capture its output",
        "parse command line arguments",
        "format a date as a string",
        "regular expression to match an email address",
        "how do decorators work",
        "what is the global interpreter lock",
    ]

    /// `--precision` as a list: each once, in the order given.
    func precisions() throws -> [Precision] {
        var out: [Precision] = []
        for name in precision.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let p = Precision(rawValue: name) else {
                throw ValidationError("--precision takes f32, int8 or both (f32,int8), got '\(name)'")
            }
            if !out.contains(p) { out.append(p) }
        }
        if out.isEmpty { throw ValidationError("--precision: give f32, int8 or both (f32,int8)") }
        return out
    }

    /// One build of the corpus in one precision.
    struct Build {
        var precision: Precision
        var index: String
        var seconds: Double
        var chunks: Int
        var output: String
    }

    func run() throws {
        let exe = try target.executable()
        let corpus = target.corpus, exclude = target.exclude
        let keep = index != nil
        let precisions = try precisions()
        let base = index ?? NSTemporaryDirectory() + "kbindex-bench-\(getpid())"
        // The first precision's index is `base`; another one's, `base-<precision>`.
        let dirs = precisions.enumerated().map { i, p in i == 0 ? base : "\(base)-\(p)" }
        let indexDir = dirs[0]
        defer { if !keep { for d in dirs { try? FileManager.default.removeItem(atPath: d) } } }

        // 1. Build, as a process, once per precision. Before them, the corpus is read once and
        // the model run once in each precision (its file in the page cache, its checksum and
        // any int8 weights cached), so that the first build does not pay for those alone.
        if skipBuild && index == nil { throw ValidationError("--skip-build needs --index") }
        if !skipBuild {
            Self.readAll(corpus)
            for p in precisions {
                let (status, out, _) = try Self.runProcess(exe, ["embed", "--precision", p.rawValue, "warm up"])
                guard status == 0 else { throw ValidationError("kbindex embed --precision \(p) failed (\(status)):\n\(out)") }
            }
        }
        var builds: [Build] = []
        for (p, dir) in zip(precisions, dirs) where !skipBuild {
            var args = ["build", corpus, "--index", dir, "--quiet", "--precision", p.rawValue] + exclude.flatMap { ["--exclude", $0] }
            if let threads { args += ["--threads", String(threads)] }
            let (status, out, seconds) = try Self.runProcess(exe, args)
            guard status == 0 else { throw ValidationError("kbindex build --precision \(p) failed (\(status)):\n\(out)") }
            let chunks = try IndexDirectory(url: URL(fileURLWithPath: dir)).chunkCount
            builds.append(Build(precision: p, index: dir, seconds: seconds, chunks: chunks, output: out))
        }
        let buildOut = builds.first?.output ?? "(build skipped)"
        let buildTime = builds.first?.seconds ?? Double.nan

        // 2. Sizes, from the index itself.
        let idx = try IndexDirectory(url: URL(fileURLWithPath: indexDir))
        let dims = idx.manifest.model.dimensions
        // The build's floor: the forward-pass FLOPs of what it embedded (each chunk's heading
        // path + text, as the real tokenizer cuts it; the chunker shortens very long heading
        // paths, so this can only overcount) at this machine's sgemm rate.
        let embedder = try Embedder(modelDirectory: try resolveModel(nil), threads: 1)
        let buildThreads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        var tokens = 0, flops = 0.0
        var text: [UInt8] = []
        var textSection = 0, vectorBytes = 0, quantBytes = 0, lexicalBytes = 0
        var tokenizeSeconds = 0.0  // what the LEXICAL section costs the build: cutting every chunk into terms
        for seg in idx.segments {
            for c in 0..<seg.chunkCount {
                let chunkText = try seg.text(ofChunk: c)
                text += Array(chunkText.utf8)
                let t0 = now()
                _ = LexicalTokenizer.counts(chunkText)
                tokenizeSeconds += now() - t0
                let path = seg.chunk(c).headingPath.joined(separator: " › ")
                let n = embedder.tokenizer.encode((path.isEmpty ? "" : path + "\n") + chunkText).ids.count
                tokens += n
                flops += forwardFLOPs(embedder.config.bert, length: n)
            }
            textSection += seg.sectionLength(.text) + seg.sectionLength(.textIndex)
            vectorBytes += seg.sectionLength(.vectors)
            quantBytes += seg.sectionLength(.quant)
            lexicalBytes += seg.sectionLength(.lexical)
        }
        let chunks = idx.chunkCount
        let onDisk = idx.bytesOnDisk
        let rawBaseline = text.count + chunks * dims * 4
        let wholeLZ4 = Self.lz4(text)
        let corpusBytes = Self.folderBytes(corpus)

        let floorSeconds = flops / sgemmRate(config: embedder.config.bert, rows: embedder.tokenBudget, threads: buildThreads)

        // 3. Query latency as whole processes, against a process that only starts; on each
        // precision's index (a query embeds its question in the index's precision), in turn.
        let queried = builds.count > 1 ? builds.map(\.index) : [indexDir]
        var startup: [Double] = [], latencies = [[Double]](repeating: [], count: queried.count)
        for dir in queried { _ = try Self.runProcess(exe, ["query", "--index", dir, "warm up the page cache"]) }
        for i in 0..<queries {
            startup.append(try Self.runProcess(exe, ["--version"]).2)
            for (j, dir) in queried.enumerated() {
                let (st, out, t) = try Self.runProcess(exe, ["query", "--index", dir, "-k", "5", Self.questions[i % Self.questions.count]])
                guard st == 0 else { throw ValidationError("kbindex query failed (\(st)):\n\(out)") }
                latencies[j].append(t)
            }
        }
        let query = latencies[0]
        let qp50 = percentile(query, 50), qp90 = percentile(query, 90), sp50 = percentile(startup, 50)

        // Both precisions side by side, against the same float floor.
        var perPrecision: [String: Any] = [:]
        for (j, b) in builds.enumerated() {
            let q = builds.count > 1 ? latencies[j] : query
            perPrecision[b.precision.rawValue] = [
                "build_s": b.seconds, "build_chunks_per_s": Double(b.chunks) / b.seconds, "chunks": b.chunks,
                "of_float_floor": floorSeconds / b.seconds, "query_p50_ms": percentile(q, 50) * 1000,
            ] as [String: Any]
        }
        let f32Build = builds.first { $0.precision == .f32 }, int8Build = builds.first { $0.precision == .int8 }
        // int8's build speed as a multiple of f32's, in chunks/s (the issue's goal: ≥ 2).
        let speedup: Double? = f32Build.flatMap { f in int8Build.map { i in (Double(i.chunks) / i.seconds) / (Double(f.chunks) / f.seconds) } }

        let result: [String: Any] = [
            "machine": machineDescription(),
            "corpus": corpus, "corpus_bytes": corpusBytes,
            "documents": idx.documentCount, "chunks": chunks, "segments": idx.segments.count,
            "tokens": tokens, "build_floor_s": floorSeconds, "build_threads": buildThreads,
            "build_s": skipBuild ? NSNull() : buildTime, "build_chunks_per_s": skipBuild ? NSNull() : Double(chunks) / buildTime,
            "index_bytes": onDisk, "text_bytes": text.count, "float32_vector_bytes": chunks * dims * 4,
            "index_vs_raw_text_plus_f32": Double(onDisk) / Double(rawBaseline),
            "vectors_bytes": vectorBytes, "quant_bytes": quantBytes, "text_section_bytes": textSection,
            "lexical_bytes": lexicalBytes, "lexical_tokenize_s": tokenizeSeconds,
            "text_ratio_blocks": Double(text.count) / Double(textSection),
            "text_ratio_whole_lz4": Double(text.count) / Double(wholeLZ4),
            "query_p50_ms": qp50 * 1000, "query_p90_ms": qp90 * 1000, "process_start_p50_ms": sp50 * 1000,
            // The keys above describe the first precision's build and index; these, each.
            "precision": precisions[0].rawValue, "precisions": perPrecision,
            "int8_vs_f32_chunks_per_s": speedup.map { $0 as Any } ?? NSNull(),
        ]
        if json { printJSON(result); return }
        print("machine: \(machineDescription().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        print(buildOut.trimmingCharacters(in: .whitespacesAndNewlines))
        printTable("build\(builds.isEmpty ? "" : " in \(precisions[0])") (floor = forward FLOPs of the chunks embedded ÷ sgemm rate, \(buildThreads) threads)",
                   header: ["corpus", "documents", "chunks", "tokens", "time s", "chunks/s", "tokens/s", "floor s", "of floor"], rows: [[
            "\(fmt(Double(corpusBytes) / 1e6)) MB", "\(idx.documentCount)", "\(chunks)", "\(tokens)", fmt(buildTime),
            fmt(Double(chunks) / buildTime), fmt(Double(tokens) / buildTime, 0), fmt(floorSeconds), "\(fmt(100 * floorSeconds / buildTime))%",
        ]])
        if builds.count > 1 {
            // One row per precision, then int8 ÷ f32.
            var rows = builds.enumerated().map { j, b -> [String] in
                [b.precision.rawValue, "\(b.chunks)", fmt(b.seconds), fmt(Double(b.chunks) / b.seconds), fmt(Double(tokens) / b.seconds, 0),
                 "\(fmt(100 * floorSeconds / b.seconds))%", fmt(percentile(latencies[j], 50) * 1000)]
            }
            if let speedup, let f = f32Build, let i = int8Build {
                rows.append(["int8 ÷ f32", "", fmt(i.seconds / f.seconds, 2), "\(fmt(speedup, 2))×", "", "", ""])
            }
            printTable("f32 vs int8 in this run (float floor \(fmt(floorSeconds)) s: sgemm rate, \(buildThreads) threads; of floor > 100% beats it)",
                       header: ["precision", "chunks", "build s", "chunks/s", "tokens/s", "of float floor", "query p50 ms"], rows: rows)
        }
        printTable("size on disk", header: ["part", "bytes", "vs raw text + float32"], rows: [
            ["raw text + float32 vectors", "\(rawBaseline)", "1.00"],
            ["index (segments + manifest)", "\(onDisk)", fmt(Double(onDisk) / Double(rawBaseline), 3)],
            ["  int8 vectors", "\(vectorBytes)", fmt(Double(vectorBytes) / Double(rawBaseline), 3)],
            ["  quantization terms", "\(quantBytes)", fmt(Double(quantBytes) / Double(rawBaseline), 3)],
            ["  text (LZ4 blocks + index)", "\(textSection)", fmt(Double(textSection) / Double(rawBaseline), 3)],
            ["  lexical (BM25 terms, postings)", "\(lexicalBytes)", fmt(Double(lexicalBytes) / Double(rawBaseline), 3)],
        ])
        print("lexical section: \(fmt(100 * Double(lexicalBytes) / Double(onDisk)))% of the index; cutting every chunk into terms took \(fmt(tokenizeSeconds, 2)) s on one thread" + (skipBuild ? "" : ", \(fmt(100 * tokenizeSeconds / buildTime, 2))% of the build's time"))
        printTable("text compression", header: ["scheme", "bytes", "ratio"], rows: [
            ["chunk text, uncompressed", "\(text.count)", "1.00"],
            ["LZ4, whole text at once", "\(wholeLZ4)", fmt(Double(text.count) / Double(wholeLZ4), 2)],
            ["LZ4, segment blocks", "\(textSection)", fmt(Double(text.count) / Double(textSection), 2)],
        ])
        printTable("kbindex query, whole process (\(queries) runs)", header: ["", "p50 ms", "p90 ms"], rows: [
            ["kbindex --version (process start)", fmt(sp50 * 1000), fmt(percentile(startup, 90) * 1000)],
            ["kbindex query -k 5" + (builds.count > 1 ? " (\(precisions[0]) index)" : ""), fmt(qp50 * 1000), fmt(qp90 * 1000)],
        ] + (builds.count > 1 ? builds.indices.dropFirst().map { j in
            ["kbindex query -k 5 (\(builds[j].precision) index)", fmt(percentile(latencies[j], 50) * 1000), fmt(percentile(latencies[j], 90) * 1000)]
        } : []))
    }

    /// Runs `exe args` with posix_spawn (Foundation's `Process` adds ~50 ms per launch on
    /// Linux, more than the query itself), output to a temporary file; returns its exit status,
    /// stdout+stderr and wall time in seconds, measured from spawn to reaped exit.
    static func runProcess(_ exe: String, _ args: [String]) throws -> (Int32, String, Double) {
        let outPath = NSTemporaryDirectory() + "kbindex-bench-out-\(getpid())"
        defer { unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let t0 = now()
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, environ)
        guard rc == 0 else { throw ValidationError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let elapsed = now() - t0
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), out, elapsed)
    }

    /// Reads every regular file under `path` once (into the page cache), discarding it.
    static func readAll(_ path: String) {
        guard let e = FileManager.default.enumerator(atPath: path) else { return }
        while let f = e.nextObject() as? String {
            guard let a = e.fileAttributes, a[.type] as? FileAttributeType == .typeRegular else { continue }
            let fd = open((path as NSString).appendingPathComponent(f), O_RDONLY)
            guard fd >= 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)
        }
    }

    /// LZ4 (default level, block format) of all of `bytes` at once.
    static func lz4(_ bytes: [UInt8]) -> Int {
        let bound = Int(LZ4_compressBound(Int32(bytes.count)))
        var dst = [UInt8](repeating: 0, count: bound)
        let n = bytes.withUnsafeBytes { s in
            dst.withUnsafeMutableBytes { d in
                LZ4_compress_default(s.baseAddress!.assumingMemoryBound(to: CChar.self), d.baseAddress!.assumingMemoryBound(to: CChar.self),
                                     Int32(bytes.count), Int32(bound))
            }
        }
        return Int(n)
    }

    /// Bytes of every regular file under `path`.
    static func folderBytes(_ path: String) -> Int {
        guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        while let f = e.nextObject() as? String {
            if let a = e.fileAttributes, a[.type] as? FileAttributeType == .typeRegular { total += (a[.size] as? Int) ?? 0 }
            _ = f
        }
        return total
    }
}
