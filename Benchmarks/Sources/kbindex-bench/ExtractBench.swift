import ArgumentParser
import Foundation
import KBCore
import KBEmbed
import KBIngest

/// `kbindex-bench extract`: how fast kbindex reads PDFs, against bare `pdftotext` on the same
/// files in the same run, and what share of a build's work extraction is next to embedding.
///
/// Per repetition, every PDF goes through `pdftotext FILE OUT` (a process, as poppler is run
/// by kbindex) and through `DocumentParser.parse(_:of:limits:)` then the build's `Chunker`
/// (kbindex's own extraction: its processes, page splitting, clean-up and sections). Times
/// are the median over repetitions of each side's total; pages are `pdfinfo`'s count. Then
/// the chunks of the last repetition are embedded by the built-in model, as `kbindex build`
/// would, and extraction (parse + chunk) is compared with that embedding time.
struct ExtractBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "PDF extraction pages/s against bare pdftotext, and its share of build time next to embedding.",
        discussion: """
            Everything runs on one thread (files one after another; embedding with --threads,
            default 1), so the share compares like with like: a build spreads both over its
            workers. The share counts parse + chunk against embed only (hashing and writing
            segments are left out; they are small next to both).

            Corpus: the PDF manual of Debian's gnuplot-doc, copied by
              Benchmarks/corpora/pdf-corpus.sh      # installs gnuplot-doc if missing

            Examples:
              cd Benchmarks && swift run -c release kbindex-bench extract
              swift run -c release kbindex-bench extract --corpus ~/papers --files 20 --embed-chunks 300 --json
            """
    )

    @Option(help: "A folder of PDFs (searched recursively; default: the corpus pdf-corpus.sh writes).")
    var corpus: String?

    @Option(help: "Measure at most this many PDFs (the first by path); 0 = all.")
    var files = 0

    @Option(help: "Repetitions of the extraction (both sides); the median is reported.")
    var reps = 3

    @Option(help: "Embed at most this many chunks (spread evenly) and scale the time by forward FLOPs to all chunks; 0 = embed all.")
    var embedChunks = 0

    @Option(help: "Worker threads for the embedding.")
    var threads = 1

    @Option(help: "Model folder (default: the installed all-MiniLM-L6-v2).")
    var model: String?

    @Option(help: "Per-file time limit for kbindex's extractor, seconds (ExtractionLimits.timeLimit).")
    var timeLimit: Double = 60

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    /// Where `Benchmarks/corpora/pdf-corpus.sh` puts the corpus by default.
    static var defaultCorpus: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.cache/corpora/gnuplot-pdf").standardizedFileURL.path
    }

    func validate() throws {
        guard reps >= 1 else { throw ValidationError("--reps must be at least 1") }
        guard files >= 0, embedChunks >= 0 else { throw ValidationError("--files and --embed-chunks must be 0 or more") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard timeLimit > 0 else { throw ValidationError("--time-limit must be positive") }
    }

    func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    func run() throws {
        let root = corpus ?? Self.defaultCorpus
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError(corpus == nil
                ? "no corpus at \(root): run Benchmarks/corpora/pdf-corpus.sh first, or pass --corpus"
                : "\(root) is not a folder")
        }
        guard let pdftotext = Self.which("pdftotext"), let pdfinfo = Self.which("pdfinfo") else {
            throw ValidationError("pdftotext or pdfinfo is not installed: install poppler-utils (apt-get install poppler-utils)")
        }
        // The same walk as `kbindex build`, keeping only the PDFs.
        var pdfs = try Walker(root: URL(fileURLWithPath: root), options: IngestOptions()).walk { _ in }
            .filter { $0.kind == .pdf }.sorted { $0.relativePath < $1.relativePath }
        if files > 0 { pdfs = Array(pdfs.prefix(files)) }
        guard !pdfs.isEmpty else { throw ValidationError("no PDF files under \(root)") }

        let pageCounts = try pdfs.map { try Self.pdfinfoPages($0.url.path, pdfinfo: pdfinfo) }
        let pages = pageCounts.reduce(0, +)
        let bytes = pdfs.reduce(0) { $0 + $1.size }
        log("extract: \(pdfs.count) PDF(s), \(pages) pages, \(reps) repetition(s)")

        // Extraction: both sides in each repetition, interleaved so noise hits both.
        let modelDir = try resolveModel(model)
        let embedder = try Embedder(modelDirectory: modelDir, threads: threads)
        let tokenizer = embedder.tokenizer
        let chunker = Chunker(maxTokens: embedder.config.maxSequenceLength - 2, overlapTokens: 32,
                              countTokens: { tokenizer.tokenIDs($0).count })
        var limits = ExtractionLimits()
        limits.timeLimit = timeLimit
        let tmp = NSTemporaryDirectory() + "kbindex-bench-extract-\(getpid()).txt"
        defer { unlink(tmp) }
        var baseline: [Double] = [], parse: [Double] = [], chunk: [Double] = []
        var baselineBytes = 0
        var chunks: [Chunk] = []
        var failures: [(String, String)] = []
        var warnings: [String] = []
        var extractedBytes = 0, pagesSeen = 0, sections = 0
        for rep in 0..<reps {
            var b = 0.0, p = 0.0, c = 0.0
            baselineBytes = 0
            for f in pdfs {
                let (status, out, t) = try IndexBench.runProcess(pdftotext, ["-enc", "UTF-8", f.url.path, tmp])
                guard status == 0 else { throw ValidationError("pdftotext failed on \(f.relativePath) (\(status)): \(out.trimmingCharacters(in: .whitespacesAndNewlines))") }
                b += t
                baselineBytes += (try? FileManager.default.attributesOfItem(atPath: tmp)[.size] as? Int) ?? 0
            }
            var repChunks: [Chunk] = []
            failures = []; warnings = []; extractedBytes = 0; pagesSeen = 0; sections = 0
            for f in pdfs {
                let data = try FileReader.read(f.location)
                var result: Result<ParseResult, ExtractionError>!
                p += time { result = DocumentParser.parse(data, of: f, limits: limits) }
                switch result! {
                case .failure(let e):
                    failures.append((f.relativePath, e.description))
                case .success(let parsed):
                    let doc = parsed.document
                    warnings += parsed.warnings.map { "\(f.relativePath): \($0)" }
                    sections += doc.sections.count
                    extractedBytes += doc.sections.reduce(0) { $0 + $1.text.utf8.count }
                    if doc.unit == .pages { pagesSeen += doc.sections.map(\.lineEnd).max() ?? 0 }
                    var cut: [Chunk] = []
                    c += time { cut = chunker.chunks(of: doc) }
                    repChunks += cut
                }
            }
            baseline.append(b); parse.append(p); chunk.append(c)
            chunks = repChunks
            log("  repetition \(rep + 1): pdftotext \(fmt(b, 2)) s, kbindex parse \(fmt(p, 2)) s + chunk \(fmt(c, 2)) s")
        }
        let baseS = percentile(baseline, 50), parseS = percentile(parse, 50), chunkS = percentile(chunk, 50)
        let extractS = parseS + chunkS
        let extractedFiles = pdfs.count - failures.count

        var report: [String: Any] = [
            "machine": machineDescription(), "date": ISO8601DateFormatter().string(from: Date()),
            "corpus": root, "files": pdfs.count, "pages": pages, "pdf_bytes": bytes, "reps": reps,
            "pdftotext_s": baseS, "pdftotext_pages_per_s": Double(pages) / baseS, "pdftotext_text_bytes": baselineBytes,
            "files_extracted": extractedFiles,
            "not_extracted": failures.map { ["path": $0.0, "reason": $0.1] },
            "warnings": Array(warnings.prefix(100)), "warning_count": warnings.count,
        ]
        guard extractedFiles > 0 else {
            // Nothing to compare: print the baseline and why kbindex extracted nothing.
            if json { printJSON(report) } else {
                printTable("pdftotext baseline (\(pdfs.count) PDF\(pdfs.count == 1 ? "" : "s"), \(pages) pages, median of \(reps))",
                           header: ["extractor", "seconds", "pages/s"], rows: [["pdftotext", fmt(baseS, 3), fmt(Double(pages) / baseS)]])
            }
            log("error: kbindex extracted none of the \(pdfs.count) PDF(s): " + failures.prefix(3).map { "\($0.0): \($0.1)" }.joined(separator: "; "))
            throw ExitCode.failure
        }
        // Pages of the files kbindex did extract, for its rate.
        let okPages = zip(pdfs, pageCounts).filter { f, _ in !failures.contains { $0.0 == f.relativePath } }.reduce(0) { $0 + $1.1 }

        // Embedding: the chunks as `kbindex build` embeds them (heading path + text).
        let texts = chunks.map(\.embeddingText)
        let sample = Self.evenSample(embedChunks, of: texts.count)
        let ids = embedder.tokenize(texts)
        let allFlops = ids.reduce(0.0) { $0 + forwardFLOPs(embedder.config.bert, length: $1.count) }
        let sampleIDs = sample.map { ids[$0] }
        let sampleFlops = sampleIDs.reduce(0.0) { $0 + forwardFLOPs(embedder.config.bert, length: $1.count) }
        log("embedding \(sample.count) of \(texts.count) chunks on \(threads) thread(s)")
        _ = try embedder.embed(Array(texts.prefix(2)))  // warm up pages and states
        let tokenizeS = time { _ = embedder.tokenize(sample.map { texts[$0] }) }
        let encodeS = try time { _ = try embedder.embed(tokenIDs: sampleIDs) }
        let measuredEmbedS = tokenizeS + encodeS
        let embedS = measuredEmbedS * (sampleFlops > 0 ? allFlops / sampleFlops : 1)
        let estimated = sample.count < texts.count
        let tokens = ids.reduce(0) { $0 + $1.count }

        report["kbindex_pages"] = okPages
        report["kbindex_pages_seen"] = pagesSeen
        report["kbindex_parse_s"] = parseS
        report["kbindex_chunk_s"] = chunkS
        report["kbindex_pages_per_s"] = Double(okPages) / extractS
        report["kbindex_text_bytes"] = extractedBytes
        report["sections"] = sections
        report["chunks"] = chunks.count
        report["tokens"] = tokens
        report["kbindex_vs_pdftotext_time"] = extractS / baseS
        report["embed_threads"] = threads
        report["embed_chunks_measured"] = sample.count
        report["embed_s"] = embedS
        report["embed_estimated"] = estimated
        report["extraction_share"] = extractS / (extractS + embedS)
        report["pdftotext_share"] = baseS / (baseS + embedS)

        if json { printJSON(report); return }
        print("kbindex-bench extract — \(root): \(pdfs.count) PDF\(pdfs.count == 1 ? "" : "s"), \(pages) pages, \(fmt(Double(bytes) / 1e6)) MB; \(machineDescription()["cpu"]!), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        printTable("Extraction, one thread (median of \(reps); pages from pdfinfo)",
                   header: ["extractor", "seconds", "pages/s", "text MB", "÷ pdftotext"], rows: [
            ["pdftotext (bare process)", fmt(baseS, 3), fmt(Double(pages) / baseS), fmt(Double(baselineBytes) / 1e6, 2), "1.00"],
            ["kbindex parse + chunk", fmt(extractS, 3), fmt(Double(okPages) / extractS), fmt(Double(extractedBytes) / 1e6, 2), fmt(extractS / baseS, 2)],
            ["  parse (DocumentParser)", fmt(parseS, 3), fmt(Double(okPages) / parseS), "", fmt(parseS / baseS, 2)],
            ["  chunk (Chunker)", fmt(chunkS, 3), "", "", fmt(chunkS / baseS, 2)],
        ])
        printTable("Share of build work (\(chunks.count) chunks, \(tokens) tokens; embedding on \(threads) thread\(threads == 1 ? "" : "s")\(estimated ? ", estimated from \(sample.count) chunks by forward FLOPs" : ""))",
                   header: ["step", "seconds", "share"], rows: [
            ["extraction (parse + chunk)", fmt(extractS, 2), "\(fmt(100 * extractS / (extractS + embedS)))%"],
            ["embedding", fmt(embedS, 2), "\(fmt(100 * embedS / (extractS + embedS)))%"],
        ])
        print("pages kbindex cited: \(pagesSeen) of \(okPages); \(sections) sections; bare pdftotext would be \(fmt(100 * baseS / (baseS + embedS)))% next to the same embedding")
        if !failures.isEmpty {
            print("not extracted (\(failures.count)): " + failures.map { "\($0.0): \($0.1)" }.joined(separator: "; "))
        }
        if !warnings.isEmpty {
            print("warnings (\(warnings.count)): " + warnings.prefix(5).joined(separator: "; ") + (warnings.count > 5 ? "; …" : ""))
        }
    }

    /// `pdfinfo`'s page count of `path`.
    static func pdfinfoPages(_ path: String, pdfinfo: String) throws -> Int {
        let (status, out, _) = try IndexBench.runProcess(pdfinfo, [path])
        guard status == 0, let n = pageCount(pdfinfoOutput: out) else {
            throw ValidationError("pdfinfo cannot read \(path) (\(status)): \(out.prefix(200))")
        }
        return n
    }

    /// The number on `pdfinfo`'s "Pages:" line, or nil when there is none. O(output).
    static func pageCount(pdfinfoOutput out: String) -> Int? {
        guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("Pages:") }) else { return nil }
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
    }

    /// `n` indices spread evenly over `0..<total`, first included, in order, no repeats; all of
    /// them when `n` is 0 or at least `total`. O(n).
    static func evenSample(_ n: Int, of total: Int) -> [Int] {
        n == 0 || n >= total ? Array(0..<total) : (0..<n).map { $0 * total / n }
    }

    /// The full path of `tool` on PATH, or nil.
    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
