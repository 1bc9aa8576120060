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
struct IndexBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build an index of a folder with kbindex, then measure its size and query latency.",
        discussion: """
            Example (the README's demo corpus, Debian's python3.11-doc):
              swift build -c release   # in the repository root: the kbindex under test
              cd Benchmarks && swift run -c release kbindex-bench index \\
                --corpus /usr/share/doc/python3.11/html --exclude '_sources/**' --exclude 'genindex*'
            """
    )

    @OptionGroup var target: BuildTarget

    @Option(help: "Where to write the index (default: a temporary folder, removed afterwards).")
    var index: String?

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

    func run() throws {
        let exe = try target.executable()
        let corpus = target.corpus, exclude = target.exclude
        let keep = index != nil
        let indexDir = index ?? NSTemporaryDirectory() + "kbindex-bench-\(getpid())"
        defer { if !keep { try? FileManager.default.removeItem(atPath: indexDir) } }

        // 1. Build, as a process.
        var args = ["build", corpus, "--index", indexDir, "--quiet"] + exclude.flatMap { ["--exclude", $0] }
        if let threads { args += ["--threads", String(threads)] }
        if skipBuild && index == nil { throw ValidationError("--skip-build needs --index") }
        let (buildStatus, buildOut, buildTime) = skipBuild ? (0, "(build skipped)", Double.nan) : try Self.runProcess(exe, args)
        guard buildStatus == 0 else { throw ValidationError("kbindex build failed (\(buildStatus)):\n\(buildOut)") }

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

        // 3. Query latency as whole processes, against a process that only starts.
        var startup: [Double] = [], query: [Double] = []
        _ = try Self.runProcess(exe, ["query", "--index", indexDir, "warm up the page cache"])
        for i in 0..<queries {
            startup.append(try Self.runProcess(exe, ["--version"]).2)
            let (st, out, t) = try Self.runProcess(exe, ["query", "--index", indexDir, "-k", "5", Self.questions[i % Self.questions.count]])
            guard st == 0 else { throw ValidationError("kbindex query failed (\(st)):\n\(out)") }
            query.append(t)
        }
        let qp50 = percentile(query, 50), qp90 = percentile(query, 90), sp50 = percentile(startup, 50)

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
        ]
        if json { printJSON(result); return }
        print("machine: \(machineDescription().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        print(buildOut.trimmingCharacters(in: .whitespacesAndNewlines))
        printTable("build (floor = forward FLOPs of the chunks embedded ÷ sgemm rate, \(buildThreads) threads)",
                   header: ["corpus", "documents", "chunks", "tokens", "time s", "chunks/s", "tokens/s", "floor s", "of floor"], rows: [[
            "\(fmt(Double(corpusBytes) / 1e6)) MB", "\(idx.documentCount)", "\(chunks)", "\(tokens)", fmt(buildTime),
            fmt(Double(chunks) / buildTime), fmt(Double(tokens) / buildTime, 0), fmt(floorSeconds), "\(fmt(100 * floorSeconds / buildTime))%",
        ]])
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
            ["kbindex query -k 5", fmt(qp50 * 1000), fmt(qp90 * 1000)],
        ])
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
