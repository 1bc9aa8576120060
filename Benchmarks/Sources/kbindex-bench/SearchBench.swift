import ArgumentParser
import CBenchStream
import COpenBLAS
import Dispatch
import Foundation
import KBFormat
import KBKernels
import KBSearch

/// `kbindex-bench search`: exact top-k over int8 vectors, against the memory floor and peers.
///
/// For each data set (seeded random unit vectors of each --rows, and the real embeddings of
/// --real-corpus) it writes the vectors as kbindex segments (200,000 rows each, as
/// `kbindex build` rolls them), then for each --threads count measures in the same run:
///   - the memory floor: the best this process streams the segments' vector bytes with the
///     widest loads the CPU has, split across the same number of threads (GB/s, and the
///     milliseconds of the fastest of ≥ 9 passes);
///   - kbindex, for each --kernels variant (a scan kernel, or the baseline: avx2/neon on the
///     generic blocked path): single-query p50 (`Search.topK`, quantization and merge
///     included) and batched queries/s (`Search.topK(batch:)`), plus recall@k against exact
///     float32 search, and the scan path each ran (`QueryBatch.path`);
///   - peers (Benchmarks/peers/run_peers.sh, its own venv from PyPI) on the same vectors:
///     faiss-cpu SQ8 and FlatIP, usearch exact i8, numpy float32.
struct SearchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Exact top-k search: kbindex against the memory floor and faiss, usearch and numpy, in one run.",
        discussion: """
            Examples:
              swift run -c release kbindex-bench search --rows 100000 --threads 1 --no-peers
              swift run -c release kbindex-bench search --rows 1000000 --kernels all
              swift run -c release kbindex-bench search --rows 100000,1000000 --threads 1,2 \\
                --real-corpus /usr/share/doc/python3.11/html --exclude '_sources/**' --exclude 'genindex*' --json
            The real corpus's float32 embeddings take minutes to compute the first time; they
            are cached in Benchmarks/.cache. Peers need python3-venv and PyPI the first time.
            --kernels all measures every scan kernel this CPU runs on the same index,
            and the baseline (avx2, neon on ARM, on the generic blocked path: the scan
            before the per-ISA paths), so one table compares them; each row names the
            scan paths the kernel ran for the single query and for the batch.
            """
    )

    @Option(help: "Synthetic data sets: comma-separated row counts (0 for none).")
    var rows = "100000,1000000"

    @Option(help: "Dimensions of the synthetic vectors.")
    var dims = 384

    @Option(help: "Thread counts to measure, comma-separated.")
    var threads = "1,2"

    @Option(name: .short, help: "Hits per query.")
    var k = 10

    @Option(help: "Queries per batch for the batched rate.")
    var batch = 200

    @Option(help: "Single queries timed for the p50.")
    var single = 50

    @Option(help: ArgumentHelp(
        "Scan kernels to measure, each on the same index: best, all, or a comma-separated list.",
        discussion: """
            best: the kernel search uses on this CPU (the default). all: every kernel this CPU \
            runs except scalar, plus the baseline. A list names kernels (scalar, avx2, \
            avx512vnni, avxvnni, neon: those this CPU runs), best, and baseline (or generic): \
            the avx2 kernel (neon on ARM) on the generic blocked path, the scan before the \
            per-ISA paths, which the batch ratios compare against. \
            Example: --kernels all, or --kernels avx2,avxvnni,baseline.
            """,
        valueName: "list"))
    var kernels = "best"

    @Option(help: "A document folder whose chunks give the real embeddings (e.g. /usr/share/doc/python3.11/html).")
    var realCorpus: String?

    @Option(help: "Globs excluded from --real-corpus (repeatable).")
    var exclude: [String] = []

    @Flag(help: "Skip the peers (no Python needed).")
    var noPeers = false

    @Option(help: "Keep each data set's exported vectors (the peers' input) in DIR/<name>.")
    var export: String?

    @Flag(help: "Only embed (and cache) the real vectors, then stop.")
    var prepareOnly = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(help: "Also write the JSON object to this file (tables still print).")
    var jsonFile: String?

    static let segmentRows = 200_000

    func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

    /// One way to run the scan: a kernel on its own scan paths, or on the generic blocked path
    /// (the baseline).
    struct KernelVariant: Hashable, CustomStringConvertible {
        var kernel: DotKernel
        var genericPath = false
        /// "avx2", or "avx2 generic" for the baseline.
        var description: String { genericPath ? "\(kernel) generic" : "\(kernel)" }
    }

    /// The variants `--kernels` names, in its order, each once. `best` is `active`; `all` is
    /// the baseline then every supported kernel but scalar; `baseline`/`generic` is avx2 (or
    /// neon) on the generic path. Throws a ValidationError listing the supported kernels for
    /// an unknown or unsupported name.
    static func kernelVariants(_ spec: String, supported: [DotKernel], active: DotKernel) throws -> [KernelVariant] {
        let names = supported.map(\.description).joined(separator: ", ")
        let baselineKernel = [DotKernel.avx2, .neon].first(where: supported.contains)
        var out: [KernelVariant] = []
        func add(_ v: KernelVariant) { if !out.contains(v) { out.append(v) } }
        func addBaseline(required: Bool) throws {
            if let baselineKernel { add(KernelVariant(kernel: baselineKernel, genericPath: true)) }
            else if required { throw ValidationError("--kernels: no baseline on this CPU (it runs neither avx2 nor neon); supported kernels: \(names)") }
        }
        let tokens = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        guard !tokens.isEmpty else { throw ValidationError("--kernels: empty list; give best, all, or kernel names (this CPU runs \(names))") }
        for token in tokens {
            switch token {
            case "best": add(KernelVariant(kernel: active))
            case "all":
                try addBaseline(required: false)
                let fast = supported.filter { $0 != .scalar }
                for k in fast.isEmpty ? [DotKernel.scalar] : fast { add(KernelVariant(kernel: k)) }
            case "baseline", "generic": try addBaseline(required: true)
            default:
                guard let k = DotKernel.allCases.first(where: { $0.description == token }) else {
                    throw ValidationError("--kernels: unknown kernel '\(token)'; this CPU runs \(names) (or give best, all, baseline)")
                }
                guard supported.contains(k) else {
                    throw ValidationError("--kernels: this CPU cannot run '\(token)'; it runs \(names) (or give best, all, baseline)")
                }
                add(KernelVariant(kernel: k))
            }
        }
        return out
    }

    func validate() throws {
        _ = try Self.kernelVariants(kernels, supported: DotKernel.supported, active: DotKernel.active)
        guard single >= 1, batch >= 1, k >= 1 else { throw ValidationError("--single, --batch and -k need at least 1") }
    }

    /// One variant's measurements on one data set at one thread count.
    struct KernelRun {
        var variant: KernelVariant
        var singlePath: String, batchPath: String
        var latencies: [Double]
        var qps: Double, recall: Double
        var p50: Double { percentile(latencies, 50) }
    }

    func run() throws {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let cache = here.appendingPathComponent("../../.cache").standardizedFileURL
        let peersScript = here.appendingPathComponent("../../peers/run_peers.sh").standardizedFileURL.path
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let nQueries = max(batch, single)
        var sets: [() throws -> VectorSet] = rows.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }.map { n in
            { VectorSet.synthetic(rows: n, dims: dims, queries: nQueries, seed: UInt64(n)) }
        }
        if let realCorpus {
            let load = { [self] in
                try VectorSet.real(corpus: realCorpus, exclude: exclude, questions: IndexBench.questions, queryCount: nQueries,
                                   cache: cache, threads: nil, log: log)
            }
            if prepareOnly { _ = try load(); return }
            sets.append(load)
        }

        let variants = try Self.kernelVariants(kernels, supported: DotKernel.supported, active: DotKernel.active)
        var results: [[String: Any]] = []
        var table: [[String]] = [], peerTable: [[String]] = []
        for make in sets {
            let data = try make()
            log("\(data.name): \(data.rows) rows × \(data.dims), \(data.queryCount) queries")
            let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kbindex-bench-search-\(getpid())")
            try? FileManager.default.removeItem(at: work)
            defer { try? FileManager.default.removeItem(at: work) }
            let idx = try Self.writeIndex(data, to: work.appendingPathComponent("index"))
            let queries = (0..<data.queryCount).map { Array(data.queries[$0 * data.dims..<($0 + 1) * data.dims]) }
            let batchQueries = Array(queries.prefix(batch))
            let truth = Self.exactTopK(data, queries: batchQueries, k: k)
            var exportDir: URL? = nil
            if !noPeers || export != nil {
                let dir = export.map { URL(fileURLWithPath: $0).appendingPathComponent(data.name == "synthetic" ? "synthetic-\(data.rows)" : data.name) }
                    ?? work.appendingPathComponent("export")
                try Self.export(data, index: idx, to: dir)
                exportDir = dir
            }

            for t in threadCounts {
                // The floor: the vector bytes streamed by t threads.
                let regions = idx.segments.map { (UnsafeRawPointer($0.vectorBase), $0.chunkCount * $0.rowStride) }
                let bytes = regions.reduce(0) { $0 + $1.1 }
                var floorTimes: [Double] = []
                for _ in 0..<max(9, single / 5) { floorTimes.append(Self.streamRead(regions, threads: t)) }
                // The fastest pass: a strict floor (its p50 carries thread wake-up jitter that
                // would flatter kbindex on small data).
                let floorS = floorTimes.min()!
                let floorMs = floorS * 1000, gbps = Double(bytes) / floorS / 1e9
                log("  floor, \(t) thread(s): min \(fmt(floorMs, 2)) p50 \(fmt(percentile(floorTimes, 50) * 1000, 2)) ms (\(fmt(gbps, 1)) GB/s)")

                // kbindex, each kernel variant on the same index.
                var runs: [KernelRun] = []
                for v in variants {
                    let opts = Search.Options(threads: t, kernel: v.kernel, genericPath: v.genericPath)
                    // The paths this variant runs, read from batches like the ones Search builds.
                    let (singlePath, batchPath) = v.kernel.scanPaths(dimensions: data.dims, batch: batchQueries.count,
                                                                     genericPath: v.genericPath)

                    // One query at a time.
                    for q in queries.prefix(3) { _ = Search.topK(q, k: k, in: idx, options: opts) }
                    var lat: [Double] = []
                    for q in queries.prefix(single) { lat.append(time { _ = Search.topK(q, k: k, in: idx, options: opts) }) }

                    // Batches.
                    var found: [[Hit]] = []
                    _ = Search.topK(batch: batchQueries, k: k, in: idx, options: opts)
                    var reps = 0
                    let t0 = now()
                    repeat {
                        found = Search.topK(batch: batchQueries, k: k, in: idx, options: opts)
                        reps += 1
                    } while now() - t0 < 1.0 || reps < 2
                    let qps = Double(reps * batchQueries.count) / (now() - t0)
                    let run = KernelRun(variant: v, singlePath: singlePath, batchPath: batchPath, latencies: lat, qps: qps,
                                        recall: Self.recall(found, idx: idx, truth: truth, k: k))
                    runs.append(run)
                    log("  \(v), \(t) thread(s): single [\(singlePath)] min \(fmt(lat.min()! * 1000, 2)) p50 \(fmt(run.p50 * 1000, 2)) p90 \(fmt(percentile(lat, 90) * 1000, 2)) ms (\(fmt(run.p50 * 1000 / floorMs, 2))× floor); batch [\(batchPath)] \(fmt(qps, 0)) q/s; recall \(fmt(run.recall, 4))")
                }

                // Peers, on the same vectors.
                var peers: [String: [String: Double]] = [:]
                if !noPeers, let exportDir {
                    log("  peers, \(t) thread(s)...")
                    let (status, out) = try Self.runPeers(peersScript, [exportDir.path, "--threads", "\(t)", "-k", "\(k)",
                                                                       "--batch", "\(batch)", "--single", "\(single)"])
                    guard status == 0, let line = out.split(separator: "\n").last,
                          let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                          let p = obj["peers"] as? [String: [String: Double]]
                    else { throw ValidationError("peers failed (\(status)):\n\(out)") }
                    peers = p
                }
                let peerCell = { (name: String) -> String in
                    guard let p = peers[name], let a = p["p50_ms"], let b = p["batch_qps"] else { return "-" }
                    return "\(fmt(a, 2)) / \(fmt(b, 0))"
                }
                if !peers.isEmpty {
                    peerTable.append(["\(data.name) \(data.rows)", "\(t)", peerCell("faiss_sq8"), peerCell("faiss_flatip"),
                                      peerCell("usearch_i8"), peerCell("numpy_f32")])
                }

                let baseline = runs.first { $0.variant.genericPath }
                for run in runs {
                    let p50ms = run.p50 * 1000
                    var entry: [String: Any] = [
                        "dataset": data.name, "rows": data.rows, "dims": data.dims, "threads": t, "k": k, "batch": batchQueries.count,
                        "kernel": run.variant.kernel.description, "variant": run.variant.description,
                        "generic_path": run.variant.genericPath, "single_path": run.singlePath, "batch_path": run.batchPath,
                        "bytes_scanned": bytes, "floor_gbps": gbps, "floor_ms": floorMs,
                        "kbindex_p50_ms": p50ms, "kbindex_min_ms": run.latencies.min()! * 1000,
                        "kbindex_p90_ms": percentile(run.latencies, 90) * 1000,
                        "kbindex_batch_qps": run.qps, "kbindex_recall_at_k": run.recall,
                        "kbindex_gbps": Double(bytes) / run.p50 / 1e9,
                        "ratio_p50_to_floor": p50ms / floorMs,
                        "peers": peers,
                    ]
                    var sq8Cells = ["-", "-"], baselineCell = "-"
                    if let sq8 = peers["faiss_sq8"], let sp = sq8["p50_ms"], let sq = sq8["batch_qps"] {
                        entry["faiss_sq8_p50_over_kbindex"] = sp / p50ms
                        entry["kbindex_batch_qps_over_faiss_sq8"] = run.qps / sq
                        sq8Cells = [fmt(sp / p50ms, 2) + "×", fmt(run.qps / sq, 2) + "×"]
                    }
                    if let us = peers["usearch_i8"]?["p50_ms"] { entry["usearch_i8_p50_over_kbindex"] = us / p50ms }
                    if let baseline {
                        entry["baseline"] = baseline.variant.description
                        entry["kbindex_batch_qps_over_baseline"] = run.qps / baseline.qps
                        entry["baseline_p50_over_kbindex"] = baseline.p50 / run.p50
                        baselineCell = fmt(run.qps / baseline.qps, 2) + "×"
                    }
                    results.append(entry)
                    table.append([
                        "\(data.name) \(data.rows)", "\(t)", run.variant.description, run.singlePath, run.batchPath,
                        fmt(floorMs, 2) + " (\(fmt(gbps, 1)) GB/s)", fmt(p50ms, 2), fmt(p50ms / floorMs, 2) + "×",
                        fmt(run.qps, 0), fmt(run.recall, 4),
                    ] + sq8Cells + [baselineCell])
                }
            }
        }

        let report: [String: Any] = [
            "machine": machineDescription(), "date": ISO8601DateFormatter().string(from: Date()),
            "kernel": DotKernel.active.description, "kernels": variants.map(\.description),
            "floor_loads": String(cString: bench_stream_isa()),
            "command": CommandLine.arguments.joined(separator: " "), "results": results,
        ]
        if let jsonFile {
            try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: jsonFile))
        }
        if json { printJSON(report); return }
        let m = machineDescription()
        print("kbindex-bench search: \(m["cpu"]!), \(m["cores"]!) cores, flags \(m["flags"]!.replacingOccurrences(of: ",", with: " ")); "
              + "default kernel \(DotKernel.active), floor loads \(String(cString: bench_stream_isa()))")
        // The ratio columns only where they have numbers: faiss SQ8's when peers ran, the
        // baseline's when it ran.
        var header = ["data set", "threads", "kernel", "single path", "batch path", "floor ms", "p50 ms", "÷ floor", "batch q/s", "recall",
                      "sq8 p50 ÷ p50", "q/s ÷ sq8", "q/s ÷ baseline"]
        var keep = Array(repeating: true, count: header.count)
        keep[10] = !peerTable.isEmpty; keep[11] = !peerTable.isEmpty
        keep[12] = variants.contains { $0.genericPath }
        header = header.indices.filter { keep[$0] }.map { header[$0] }
        let rows = table.map { r in r.indices.filter { keep[$0] }.map { r[$0] } }
        printTable("top-\(k): milliseconds per query (p50) and queries/s in batches of \(batch), per kernel; paths as QueryBatch.path reports them",
                   header: header, rows: rows, left: [0, 2, 3, 4])
        if !peerTable.isEmpty {
            printTable("peers on the same vectors and threads: p50 ms / batch q/s",
                       header: ["data set", "threads", "faiss sq8", "faiss flatip", "usearch i8", "numpy f32"], rows: peerTable)
        }
        let ratios = results.compactMap { r -> String? in
            var parts: [String] = []
            if let a = r["faiss_sq8_p50_over_kbindex"] as? Double, let b = r["kbindex_batch_qps_over_faiss_sq8"] as? Double {
                let u = (r["usearch_i8_p50_over_kbindex"] as? Double).map { ", usearch i8 p50 \(fmt($0, 1))× kbindex's" } ?? ""
                parts.append("faiss SQ8 p50 \(fmt(a, 1))× kbindex's\(u); kbindex batch \(fmt(b, 1))× faiss SQ8's q/s")
            }
            if r["generic_path"] as? Bool == false, let base = r["baseline"] as? String,
               let bq = r["kbindex_batch_qps_over_baseline"] as? Double, let bp = r["baseline_p50_over_kbindex"] as? Double {
                parts.append("batch \(fmt(bq, 1))× \(base)'s q/s, \(base) p50 \(fmt(bp, 1))× this kernel's")
            }
            guard !parts.isEmpty else { return nil }
            return "  \(r["dataset"]!) \(r["rows"]!), \(r["threads"]!) thread(s), \(r["variant"]!): " + parts.joined(separator: "; ")
        }
        if !ratios.isEmpty { print("\nratios (same run):"); ratios.forEach { print($0) } }
    }

    /// Writes `data.base` as kbindex segments (quantized exactly as `kbindex build` does),
    /// one document per 1000 rows, no text.
    static func writeIndex(_ data: VectorSet, to dir: URL) throws -> IndexDirectory {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let model = ModelDescriptor(name: "bench-\(data.name)", dimensions: data.dims, pooling: "mean", normalized: true,
                                    maxTokens: 256, weightsSHA256: String(repeating: "00", count: 32))
        var entries: [Manifest.Segment] = []
        for (s, start) in stride(from: 0, to: data.rows, by: segmentRows).enumerated() {
            let end = min(start + segmentRows, data.rows)
            let w = SegmentWriter(model: model)
            for r in start..<end {
                if (r - start) % 1000 == 0 {
                    w.addDocument(DocumentRecord(path: "doc\(r / 1000)", size: 0, mtimeNanoseconds: 0,
                                                 contentSHA256: [UInt8](repeating: 0, count: 32), title: ""))
                }
                w.addChunk(ChunkRecord(document: UInt32((r - start) / 1000), ordinal: UInt32(r % 1000), lineStart: 1, lineEnd: 1,
                                       byteStart: 0, byteEnd: 0, headingPath: []),
                           text: "", vector: Array(data.base[r * data.dims..<(r + 1) * data.dims]))
            }
            let name = "seg\(s).kbseg"
            let bytes = try w.write(to: dir.appendingPathComponent(name).path)
            entries.append(Manifest.Segment(file: name, chunks: end - start, documents: (end - start + 999) / 1000, bytes: bytes))
        }
        try Manifest(model: model, segments: entries).write(to: dir.path)
        return try IndexDirectory(url: dir)
    }

    /// The peers' input (see Benchmarks/peers/search_peers.py): float32 and kbindex's int8.
    static func export(_ data: VectorSet, index: IndexDirectory, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = data.dims
        var i8 = [Int8](repeating: 0, count: data.rows * d)
        var r = 0
        for seg in index.segments {
            for c in 0..<seg.chunkCount {
                for i in 0..<d { i8[r * d + i] = seg.vectorBase[c * seg.rowStride + i] }
                r += 1
            }
        }
        var qi8 = [Int8](repeating: 0, count: data.queries.count)
        data.queries.withUnsafeBufferPointer { x in
            qi8.withUnsafeMutableBufferPointer { q in
                for j in 0..<data.queryCount {
                    _ = Quantization.quantize(UnsafeBufferPointer(rebasing: x[j * d..<(j + 1) * d]),
                                              into: UnsafeMutableBufferPointer(rebasing: q[j * d..<(j + 1) * d]))
                }
            }
        }
        try data.base.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("base_f32.bin"))
        try i8.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("base_i8.bin"))
        try data.queries.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("queries_f32.bin"))
        try qi8.withUnsafeBytes { Data($0) }.write(to: dir.appendingPathComponent("queries_i8.bin"))
        let meta = try JSONSerialization.data(withJSONObject: ["rows": data.rows, "dims": d, "queries": data.queryCount])
        try meta.write(to: dir.appendingPathComponent("meta.json"))
    }

    /// Seconds for `threads` threads to stream `regions` (split into equal contiguous shares).
    static func streamRead(_ regions: [(UnsafeRawPointer, Int)], threads: Int) -> Double {
        let total = regions.reduce(0) { $0 + $1.1 }
        let sink = UnsafeMutablePointer<UInt64>.allocate(capacity: threads)
        defer { sink.deallocate() }
        let sinkAddress = Int(bitPattern: sink)
        let spans = regions.map { (Int(bitPattern: $0.0), $0.1) }
        let body: @Sendable (Int) -> Void = { p in
            var lo = total * p / threads
            let hi = total * (p + 1) / threads
            var acc: UInt64 = 0, base = 0
            for (address, len) in spans {
                let a = max(lo, base), b = min(hi, base + len)
                if a < b { acc ^= bench_stream_read(UnsafeRawPointer(bitPattern: address)! + (a - base), b - a); lo = b }
                base += len
            }
            UnsafeMutablePointer<UInt64>(bitPattern: sinkAddress)![p] = acc
        }
        return time {
            if threads == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: body) }
        }
    }

    /// Exact float32 top-k of each query over `data.base` (sgemm in blocks of rows): row ids.
    static func exactTopK(_ data: VectorSet, queries: [[Float]], k: Int) -> [Set<Int>] {
        let nq = queries.count, d = data.dims, block = 16_384
        let q = queries.flatMap { $0 }
        var scores = [Float](repeating: 0, count: block * nq)
        var best = [[(Float, Int)]](repeating: [], count: nq)
        for start in stride(from: 0, to: data.rows, by: block) {
            let m = min(block, data.rows - start)
            data.base.withUnsafeBufferPointer { b in
                q.withUnsafeBufferPointer { qp in
                    scores.withUnsafeMutableBufferPointer { c in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(nq), Int32(d), 1,
                                    b.baseAddress! + start * d, Int32(d), qp.baseAddress!, Int32(d), 0, c.baseAddress!, Int32(nq))
                    }
                }
            }
            for j in 0..<nq {
                var top = best[j]
                var floor = top.count < k ? -Float.infinity : top.map(\.0).min()!
                for r in 0..<m where scores[r * nq + j] > floor {
                    top.append((scores[r * nq + j], start + r))
                    if top.count > 4 * k {
                        top.sort { $0.0 > $1.0 }
                        top.removeLast(top.count - k)
                        floor = top[k - 1].0
                    }
                }
                top.sort { $0.0 > $1.0 }
                best[j] = Array(top.prefix(k))
            }
        }
        return best.map { Set($0.map(\.1)) }
    }

    /// Mean |found ∩ truth| / k, with found's (segment, chunk) mapped to global rows.
    static func recall(_ found: [[Hit]], idx: IndexDirectory, truth: [Set<Int>], k: Int) -> Double {
        var offsets: [Int] = [], o = 0
        for s in idx.segments { offsets.append(o); o += s.chunkCount }
        var hit = 0
        for (f, t) in zip(found, truth) { hit += f.filter { t.contains(offsets[$0.segment] + $0.chunk) }.count }
        return Double(hit) / Double(k * truth.count)
    }

    static func runPeers(_ script: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: script)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }
}
