import ArgumentParser
import COpenBLAS
import Dispatch
import Foundation
import KBEmbed

/// `kbindex-bench embed`: encoder throughput against the OpenBLAS floor, query latency,
/// and peak memory.
struct EmbedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embedding throughput, latency and memory, against the sgemm floor.",
        discussion: """
            Embeds --chunks texts of ~256 tokens and --chunks of ~32 tokens with each thread
            count and each --precision, measures OpenBLAS sgemm and the int8 GEMM kernel on the
            encoder's own matrix shapes in the same run, and reports each precision's floor:
            f32, forward-pass FLOPs ÷ measured sgemm rate; int8, the linear layers' ops ÷ the
            int8 GEMM rate (per-token quantization included) plus attention's FLOPs ÷ the sgemm
            rate. 'of floor' is floor time ÷ actual time (100% = the encoder costs no more than
            its matrix products at full speed); 'int8 ÷ f32' compares chunks/s in the same run. Then: a 12-word question's latency in a warm process, and the
            peak memory of a fresh process embedding --memory-chunks texts against one that only
            loads the model.
            """
    )

    @Option(help: "Model folder (default: the installed all-MiniLM-L6-v2).")
    var model: String?
    @Option(help: ArgumentHelp(
        "Benchmark a model with random weights and the configs in this folder (e.g. Tests/Fixtures/minilm-config) instead of real weights: same shapes, same speed, for machines without the model.",
        valueName: "config-folder"))
    var syntheticConfig: String?
    @Option(help: "Texts per length class.")
    var chunks = 1000
    @Option(help: "Comma-separated worker thread counts.")
    var threads = "1,2"
    @Option(help: "Repetitions for the question latency.")
    var queryReps = 200
    @Option(help: "Texts (of ~32 tokens) embedded by the memory probe; 0 skips it.")
    var memoryChunks = 10_000
    @Option(help: "Comma-separated precisions to compare (f32, int8).")
    var precision = "f32,int8"
    @Option(help: "Tokens per encoder batch (default: the Embedder's).")
    var tokenBudget: Int?
    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func run() throws {
        let dir = try syntheticConfig.map { try makeSyntheticModel(configFolder: URL(fileURLWithPath: $0)) } ?? resolveModel(model)
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let probe = try Embedder(modelDirectory: dir, threads: 1)
        let cfg = probe.config
        var rng = SplitMix(seed: 42)
        let words = try vocabularyWords(dir)
        let long = makeTexts(count: chunks, tokens: 256, words: words, tokenizer: probe.tokenizer, rng: &rng)
        let short = makeTexts(count: chunks, tokens: 32, words: words, tokenizer: probe.tokenizer, rng: &rng)
        let question = "How do I rebuild the index after moving the documents to another folder?"

        var report: [String: Any] = ["machine": machineDescription(), "model": syntheticConfig == nil ? cfg.name : "all-MiniLM-L6-v2 shapes, random weights",
                                     "date": ISO8601DateFormatter().string(from: Date())]
        let precisions = try precision.split(separator: ",").map { p in
            guard let v = Precision(rawValue: String(p)) else { throw ValidationError("unknown precision '\(p)' (f32, int8)") }
            return v
        }
        var rows: [[String]] = []
        var results: [[String: Any]] = []
        var ratios: [[String]] = []
        var loadSeconds: [Precision: Double] = [:]  // model load (int8: calibration and quantization too), best of the thread counts
        var ratioResults: [[String: Any]] = []
        for t in threadCounts {
            let budget = tokenBudget ?? probe.tokenBudget
            let rate = sgemmRate(config: cfg.bert, rows: budget, threads: t)
            let int8Rate = precisions.contains(.int8) ? int8GEMMRate(config: cfg.bert, rows: budget, threads: t) : 0
            var chunksPerSecond: [String: [Precision: Double]] = [:]
            for p in precisions {
                var loaded: Embedder?
                let loadTime = try time {
                    loaded = try tokenBudget.map { try Embedder(modelDirectory: dir, threads: t, tokenBudget: $0, precision: p) }
                        ?? Embedder(modelDirectory: dir, threads: t, precision: p)
                }
                let embedder = loaded!
                loadSeconds[p] = min(loadSeconds[p] ?? .infinity, loadTime)
                _ = try embedder.embed(Array(long.prefix(2 * t)))  // warm up pages and states
                for (label, texts) in [("~256 tok", long), ("~32 tok", short)] {
                    var ids: [[Int32]] = []
                    let tokenizeTime = time { ids = embedder.tokenize(texts) }
                    let encodeTime = try time { _ = try embedder.embed(tokenIDs: ids) }
                    let tokens = ids.reduce(0) { $0 + $1.count }
                    let flops = ids.reduce(0.0) { $0 + forwardFLOPs(cfg.bert, length: $1.count) }
                    let dense = ids.reduce(0.0) { $0 + denseFLOPs(cfg.bert, length: $1.count) }
                    let floor = p == .int8 ? dense / int8Rate + (flops - dense) / rate : flops / rate
                    let floorRate = p == .int8 ? int8Rate : rate
                    let total = tokenizeTime + encodeTime
                    chunksPerSecond[label, default: [:]][p] = Double(texts.count) / total
                    rows.append([label, "\(t)", p.rawValue, fmt(Double(texts.count) / total), fmt(Double(tokens) / total, 0),
                                 fmt(floorRate / 1e9), fmt(flops / encodeTime / 1e9), fmt(100 * floor / encodeTime) + "%",
                                 fmt(100 * tokenizeTime / total) + "%"])
                    var result: [String: Any] = [
                        "texts": label, "threads": t, "precision": p.rawValue, "chunks": texts.count, "tokens": tokens,
                        "chunks_per_s": Double(texts.count) / total, "tokens_per_s": Double(tokens) / total,
                        "tokenize_s": tokenizeTime, "encode_s": encodeTime, "forward_gflop": flops / 1e9,
                        "sgemm_gflops": rate / 1e9, "achieved_gflops": flops / encodeTime / 1e9,
                        "fraction_of_floor": floor / encodeTime]
                    if p == .int8 { result["int8_gemm_gops"] = int8Rate / 1e9; result["gemm_kernel"] = Int8GEMM.kernelName }
                    results.append(result)
                }
            }
            for label in ["~256 tok", "~32 tok"] {
                if let f = chunksPerSecond[label]?[.f32], let q = chunksPerSecond[label]?[.int8] {
                    ratios.append([label, "\(t)", fmt(f), fmt(q), fmt(q / f, 2) + "×"])
                    ratioResults.append(["texts": label, "threads": t, "f32_chunks_per_s": f, "int8_chunks_per_s": q, "int8_over_f32": q / f])
                }
            }
        }
        report["gemm_kernel"] = Int8GEMM.kernelName
        report["load_s"] = Dictionary(uniqueKeysWithValues: loadSeconds.map { ($0.key.rawValue, $0.value) })
        if !ratioResults.isEmpty { report["int8_vs_f32"] = ratioResults }
        report["throughput"] = results

        // A question in a warm process, with the default thread count (what `kbindex query` does).
        let warm = try Embedder(modelDirectory: dir)
        for _ in 0..<10 { _ = try warm.embed(question) }
        let qTokens = warm.tokenizer.encode(question).ids.count
        var samples: [Double] = []
        for _ in 0..<queryReps { samples.append(try time { _ = try warm.embed(question) }) }
        let latency: [String: Any] = ["tokens": qTokens, "p50_ms": 1000 * percentile(samples, 50),
                                      "p95_ms": 1000 * percentile(samples, 95), "reps": queryReps]
        report["question_latency"] = latency

        var memory: [String: Any] = [:]
        if memoryChunks > 0 {
            let floor = try memoryProbe(model: dir.path, chunks: 0)
            let peak = try memoryProbe(model: dir.path, chunks: memoryChunks)
            memory = ["chunks": memoryChunks, "model_loaded_bytes": floor, "peak_bytes": peak,
                      "peak_over_floor": Double(peak) / Double(max(floor, 1))]
            report["memory"] = memory
        }

        if json { printJSON(report); return }
        print("kbindex-bench embed — \(report["model"]!), token budget \(tokenBudget ?? probe.tokenBudget), \(machineDescription()["cpu"]!), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        printTable("Throughput (floor: f32 = forward FLOPs ÷ sgemm rate; int8 = linear ops ÷ int8 GEMM rate (kernel \(Int8GEMM.kernelName)) + attention ÷ sgemm rate; encoder's shapes, same threads)",
                   header: ["texts", "threads", "precision", "chunks/s", "tokens/s", "GEMM G/s", "encoder GF/s", "of floor", "tokenize"],
                   rows: rows)
        if !ratios.isEmpty {
            printTable("int8 against f32 (same run)", header: ["texts", "threads", "f32 chunks/s", "int8 chunks/s", "int8 ÷ f32"], rows: ratios)
        }
        printTable("Model load (int8 includes its calibration pass and weight quantization)", header: ["precision", "ms"],
                   rows: precisions.map { [$0.rawValue, fmt(1000 * (loadSeconds[$0] ?? 0))] })
        printTable("Question latency (warm process, default threads)", header: ["question", "tokens", "p50 ms", "p95 ms"],
                   rows: [["12 words", "\(qTokens)", fmt(latency["p50_ms"] as! Double, 2), fmt(latency["p95_ms"] as! Double, 2)]])
        if !memory.isEmpty {
            printTable("Peak memory (fresh process, VmHWM)", header: ["run", "MB"], rows: [
                ["load model only", fmt(Double(memory["model_loaded_bytes"] as! Int) / 1e6)],
                ["embed \(memoryChunks) texts of ~32 tokens", fmt(Double(memory["peak_bytes"] as! Int) / 1e6)],
            ])
        }
    }

    /// Runs `kbindex-bench embed-memory` as a child and returns its peak RSS.
    func memoryProbe(model: String, chunks: Int) throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: p.executableURL!.path) {
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        }
        p.arguments = ["embed-memory", "--model", model, "--chunks", "\(chunks)"] + (tokenBudget.map { ["--token-budget", "\($0)"] } ?? [])
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let n = Int(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("memory probe failed (exit \(p.terminationStatus))")
        }
        return n
    }
}

/// Hidden helper: loads the model, embeds `chunks` texts of ~32 tokens, prints peak RSS in bytes.
struct EmbedMemoryProbe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embed-memory", shouldDisplay: false)
    @Option var model: String
    @Option var chunks: Int
    @Option var tokenBudget: Int?

    func run() throws {
        let dir = URL(fileURLWithPath: model)
        let embedder = try tokenBudget.map { try Embedder(modelDirectory: dir, tokenBudget: $0) } ?? Embedder(modelDirectory: dir)
        var rng = SplitMix(seed: 7)
        if chunks > 0 {
            let texts = makeTexts(count: chunks, tokens: 32, words: try vocabularyWords(dir), tokenizer: embedder.tokenizer, rng: &rng)
            let vectors = try embedder.embed(texts)
            precondition(vectors.count == chunks)
        } else {
            // Touch every weight page the encoder reads, as a real run would.
            _ = try embedder.embed(tokenIDs: [Array(repeating: 1000, count: embedder.config.maxSequenceLength - 2) + [101, 102]])
        }
        print(peakRSS())
    }
}

/// FLOPs of one forward pass over a sequence of `n` tokens (multiply-add = 2).
func forwardFLOPs(_ c: BertConfig, length n: Int) -> Double {
    let h = Double(c.hiddenSize), i = Double(c.intermediateSize), t = Double(n)
    let dense = 2 * t * h * (3 * h + h + 2 * i)  // QKV, attention output, FFN in and out
    let attention = 2 * 2 * t * t * h             // Q·Kᵀ and scores·V over all heads
    return Double(c.layerCount) * (dense + attention)
}

/// FLOPs of the linear layers alone (what int8 runs) in one forward pass over `n` tokens.
func denseFLOPs(_ c: BertConfig, length n: Int) -> Double {
    let h = Double(c.hiddenSize), i = Double(c.intermediateSize), t = Double(n)
    return Double(c.layerCount) * 2 * t * h * (3 * h + h + 2 * i)
}

/// int8 GEMM op/s (quantization included) on the encoder's four linear shapes for a batch of
/// `rows` tokens, `threads` at once (how the encoder runs them).
func int8GEMMRate(config c: BertConfig, rows m: Int, threads: Int) -> Double {
    let h = c.hiddenSize, inter = c.intermediateSize
    return Int8GEMM.rate(shapes: [(m, 3 * h, h), (m, h, h), (m, inter, h), (m, h, inter)], threads: threads)
}

/// sgemm FLOP/s on the encoder's shapes, `threads` single-threaded OpenBLAS calls at once
/// (how the encoder runs): one batch of `rows` tokens through one layer's products, plus
/// attention for sequences of 256.
func sgemmRate(config c: BertConfig, rows m: Int, threads: Int) -> Double {
    openblas_set_num_threads(1)
    let h = c.hiddenSize, inter = c.intermediateSize, d = c.headSize
    let seq = min(256, m)
    let shapes: [(Int, Int, Int, Bool)] = [(m, 3 * h, h, true), (m, h, h, true), (m, inter, h, true), (m, h, inter, true)]
        + Array(repeating: (seq, seq, d, true), count: c.headCount * (m / seq))
        + Array(repeating: (seq, d, seq, false), count: c.headCount * (m / seq))
    let flopsPerPass = shapes.reduce(0.0) { $0 + 2 * Double($1.0) * Double($1.1) * Double($1.2) }
    let maxElems = max(m * inter, m * 3 * h, seq * seq)
    let duration = 1.5
    let total = UnsafeSendableCounter()
    let t0 = now()
    DispatchQueue.concurrentPerform(iterations: threads) { _ in
        let a = UnsafeMutablePointer<Float>.allocate(capacity: maxElems); defer { a.deallocate() }
        let b = UnsafeMutablePointer<Float>.allocate(capacity: maxElems); defer { b.deallocate() }
        let cbuf = UnsafeMutablePointer<Float>.allocate(capacity: maxElems); defer { cbuf.deallocate() }
        for i in 0..<maxElems { a[i] = Float(i % 7) * 0.01; b[i] = Float(i % 5) * 0.01 }
        var passes = 0
        let start = now()
        while now() - start < duration {
            for (mm, n, k, transB) in shapes {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(mm), Int32(n), Int32(k),
                            1, a, Int32(k), b, transB ? Int32(k) : Int32(n), 0, cbuf, Int32(n))
            }
            passes += 1
        }
        total.add(passes)
    }
    return Double(total.value) * flopsPerPass / (now() - t0)
}

final class UnsafeSendableCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) { lock.lock(); n += k; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

/// Whole lower-case words of the vocabulary (no ## pieces, no specials), for synthetic text.
func vocabularyWords(_ dir: URL) throws -> [String] {
    let text = try String(contentsOf: dir.appendingPathComponent("vocab.txt"), encoding: .utf8)
    return text.split(separator: "\n").map(String.init).filter { w in
        w.count >= 3 && w.unicodeScalars.allSatisfy { $0.value >= 97 && $0.value <= 122 }
    }
}

/// `count` texts of random vocabulary words, each as close to `tokens` ids ([CLS] and [SEP]
/// included) as whole words allow.
func makeTexts(count: Int, tokens: Int, words: [String], tokenizer: WordPieceTokenizer, rng: inout SplitMix) -> [String] {
    (0..<count).map { _ in
        var parts: [String] = []
        var n = 2
        while true {
            let w = words[Int(rng.next() % UInt64(words.count))]
            let k = tokenizer.tokenIDs(w).count
            if n + k > tokens { break }
            parts.append(w)
            n += k
        }
        return parts.joined(separator: " ")
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The model folder: --model, else the installed default.
func resolveModel(_ option: String?) throws -> URL {
    if let option { return URL(fileURLWithPath: option) }
    let env = ProcessInfo.processInfo.environment
    let root = env["KBINDEX_MODEL_DIR"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")).appendingPathComponent("kbindex/models")
    return root.appendingPathComponent("all-MiniLM-L6-v2")
}

/// A model folder in a temporary directory: the configs and vocabulary of `configFolder`,
/// plus a model.safetensors of random F32 weights with exactly the shapes config.json asks for.
func makeSyntheticModel(configFolder: URL) throws -> URL {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("kbindex-bench-model-\(getpid())")
    try? fm.removeItem(at: dir)
    try fm.copyItem(at: configFolder, to: dir)
    let c = try ModelConfig.load(directory: dir).bert
    let h = c.hiddenSize, i = c.intermediateSize
    var shapes: [(String, [Int])] = [
        ("embeddings.word_embeddings.weight", [c.vocabSize, h]), ("embeddings.position_embeddings.weight", [c.maxPositions, h]),
        ("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h]), ("embeddings.LayerNorm.weight", [h]), ("embeddings.LayerNorm.bias", [h]),
    ]
    for l in 0..<c.layerCount {
        let p = "encoder.layer.\(l)."
        for m in ["query", "key", "value"] { shapes += [(p + "attention.self.\(m).weight", [h, h]), (p + "attention.self.\(m).bias", [h])] }
        shapes += [(p + "attention.output.dense.weight", [h, h]), (p + "attention.output.dense.bias", [h]),
                   (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                   (p + "intermediate.dense.weight", [i, h]), (p + "intermediate.dense.bias", [i]),
                   (p + "output.dense.weight", [h, i]), (p + "output.dense.bias", [h]),
                   (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h])]
    }
    var header: [String: Any] = [:]
    var offset = 0
    for (name, shape) in shapes {
        let bytes = shape.reduce(4, *)
        header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]]
        offset += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    var rng = SplitMix(seed: 1)
    var values = [Float](repeating: 0, count: offset / 4)
    for k in values.indices { values[k] = Float(Int64(bitPattern: rng.next() % 2001) - 1000) * 5e-5 }
    values.withUnsafeBytes { file.append(contentsOf: $0) }
    try file.write(to: dir.appendingPathComponent("model.safetensors"))
    return dir
}
