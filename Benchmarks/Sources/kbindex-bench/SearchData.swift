import Foundation
import KBCore
import KBEmbed
import KBIngest

/// Vectors for `kbindex-bench search`: float32 base rows and queries, row-major.
struct VectorSet {
    var name: String
    var dims: Int
    var base: [Float]  // rows × dims
    var queries: [Float]  // queryCount × dims
    var rows: Int { base.count / dims }
    var queryCount: Int { queries.count / dims }

    /// Seeded random unit vectors. Random directions are the hard case for exact search (no
    /// cluster structure to exploit) and the case the int8 quantization error matters most.
    static func synthetic(rows: Int, dims: Int, queries: Int, seed: UInt64) -> VectorSet {
        var rng = SplitMix(seed: seed)
        func unit(_ count: Int) -> [Float] {
            var out = [Float](repeating: 0, count: count * dims)
            for r in 0..<count {
                var norm: Float = 0
                for i in 0..<dims {
                    // Sum of 4 uniforms: close enough to Gaussian for random directions.
                    var g: Float = -2
                    for _ in 0..<4 { g += Float(rng.next() >> 40) / Float(1 << 24) }
                    out[r * dims + i] = g
                    norm += g * g
                }
                let inv = 1 / max(norm.squareRoot(), 1e-12)
                for i in 0..<dims { out[r * dims + i] *= inv }
            }
            return out
        }
        return VectorSet(name: "synthetic", dims: dims, base: unit(rows), queries: unit(queries))
    }

    /// Real embeddings: every chunk kbindex would cut from `corpus` (same walker, parsers and
    /// chunker as `kbindex build`), embedded in float32 by the built-in model, and `questions`
    /// embedded as queries. Embedding takes minutes, so the vectors are cached in `cache`
    /// under a hash of the exact texts and model.
    static func real(corpus: String, exclude: [String], questions fixed: [String], queryCount: Int, cache: URL,
                     threads: Int?, log: (String) -> Void) throws -> VectorSet {
        let modelDir = try resolveModel(nil)
        let embedder = try Embedder(modelDirectory: modelDir, threads: threads)
        var options = IngestOptions()
        options.exclude = exclude
        let files = try Walker(root: URL(fileURLWithPath: corpus), options: options).walk { _ in }
        let tokenizer = embedder.tokenizer
        let chunker = Chunker(maxTokens: embedder.config.maxSequenceLength - 2, overlapTokens: 32,
                              countTokens: { tokenizer.tokenIDs($0).count })
        var texts: [String] = [], headings: [String] = [], seen: Set<String> = []
        for f in files {
            guard let data = try? FileReader.read(f.url.path) else { continue }
            let (doc, _) = DocumentParser.parse(data, kind: f.kind, language: f.language, path: f.relativePath)
            for c in chunker.chunks(of: doc) {
                texts.append(c.embeddingText)
                if let h = c.headingPath.last, h.count >= 12, seen.insert(h).inserted { headings.append(h) }
            }
        }
        // Queries: the hand-written questions, then section headings (short, question-like
        // texts that are not any chunk's embedding text) spread evenly over the corpus.
        var questions = fixed
        let more = max(0, queryCount - fixed.count)
        if more > 0, !headings.isEmpty {
            questions += (0..<min(more, headings.count)).map { headings[$0 * headings.count / min(more, headings.count)] }
        }
        // FNV-1a over model folder name, texts and questions: the cache key.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for s in [modelDir.lastPathComponent] + texts + ["\u{0}questions"] + questions {
            for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }
        let dims = embedder.dimensions
        let file = cache.appendingPathComponent(String(format: "real-%016llx-%d-%d.f32", h, texts.count, questions.count))
        let expected = (texts.count + questions.count) * dims * 4
        if let data = try? Data(contentsOf: file), data.count == expected {
            log("real vectors: \(texts.count) chunks from cache \(file.path)")
            let all = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return VectorSet(name: "python-docs", dims: dims, base: Array(all[0..<texts.count * dims]),
                             queries: Array(all[(texts.count * dims)...]))
        }
        log("real vectors: embedding \(texts.count) chunks of \(corpus) (cached afterwards in \(cache.path))")
        var base: [Float] = []
        base.reserveCapacity(texts.count * dims)
        let step = 512
        let t0 = now()
        for start in stride(from: 0, to: texts.count, by: step) {
            for v in try embedder.embed(Array(texts[start..<min(start + step, texts.count)])) { base += v }
            let done = min(start + step, texts.count)
            log("  \(done)/\(texts.count) chunks, \(fmt(Double(done) / (now() - t0))) chunks/s")
        }
        var queries: [Float] = []
        for v in try embedder.embed(questions) { queries += v }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        try (base + queries).withUnsafeBytes { Data($0) }.write(to: file, options: .atomic)
        return VectorSet(name: "python-docs", dims: dims, base: base, queries: queries)
    }
}
